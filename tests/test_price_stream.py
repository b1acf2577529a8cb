"""The websocket price stream on its own (a ccxt.pro-shaped double) and behind the trading
batch: rule 1 (streamed data only while younger than the maximum age) and rule 10 (connects
charged, reconnects backed off)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from freqtrade_ratekit.rates.sources import PlannedCall, TickerSource
from freqtrade_ratekit.rates.stream import PriceStream
from freqtrade_ratekit.rates.trading_batch import TradingBatch
from freqtrade_ratekit.workers import Backoff
from tests.helpers import FakeClock, wait_for
from tests.redis_fixtures import RedisServer, requires_redis

PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def book(pair: str, bid: float = 100.0) -> dict[str, Any]:
    return {"symbol": pair, "bid": bid, "ask": bid + 1, "bidVolume": 1.0, "askVolume": 1.0}


class Streams:
    """Clients handed to the stream, each answering `watch_bids_asks` with one update per
    call (every asked pair), optionally failing first."""

    def __init__(self, mocker: Any) -> None:
        self.mocker = mocker
        self.clients: list[Any] = []
        self.asked: list[list[str]] = []
        self.fail_next = 0

    def make(self) -> Any:
        client = self.mocker.Mock()
        client.close = self.mocker.AsyncMock()

        async def watch(symbols: list[str]) -> dict[str, Any]:
            self.asked.append(list(symbols))
            await asyncio.sleep(0.01)
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("connection reset")
            return {pair: book(pair) for pair in symbols}

        client.watch_bids_asks = self.mocker.AsyncMock(side_effect=watch)
        self.clients.append(client)
        return client


@pytest.fixture
def streams(mocker: Any) -> Streams:
    return Streams(mocker)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_stream(streams: Streams, clock: FakeClock, **kwargs: Any) -> PriceStream:
    return PriceStream(make_client=streams.make, timer=clock, **kwargs)


def test_streamed_tickers_serve_only_while_younger_than_the_maximum_age(streams, clock):
    stream = make_stream(streams, clock)
    stream.start()
    try:
        stream.follow(PAIRS)
        wait_for(lambda: stream.ticker("ETH/USDT", 2.0), bool, 10, "a streamed ticker")
        ticker, age = stream.ticker("ETH/USDT", 2.0) or ({}, -1.0)
        assert ticker["bid"] == 100.0 and 0 <= age < 2.0
        assert stream.covers(PAIRS, 2.0)
        assert stream.ticker("XRP/USDT", 2.0) is None  # never followed
    finally:
        assert stream.stop()
    clock.advance(2.0)  # the stream is gone: what it left ages out
    assert stream.ticker("ETH/USDT", 2.0) is None
    assert not stream.covers(PAIRS, 2.0)
    figures = stream.snapshot()
    assert figures["connects"] == 1 and figures["messages"] >= len(PAIRS)
    assert not figures["running"] and not figures["connected"]


def test_new_pairs_are_subscribed_on_the_same_connection(streams, clock):
    stream = make_stream(streams, clock)
    stream.start()
    try:
        stream.follow(PAIRS[:1])
        wait_for(lambda: stream.ticker(PAIRS[0], 5.0), bool, 10, "the first pair")
        stream.follow(PAIRS)
        wait_for(lambda: stream.covers(PAIRS, 5.0), bool, 10, "every pair")
        stream.follow(PAIRS[1:])  # a pair no longer priced stays subscribed: no message
    finally:
        stream.stop()
    assert len(streams.clients) == 1
    assert PAIRS in streams.asked
    assert stream.snapshot()["subscriptions"] == 2


def test_a_failing_connection_is_retried_after_a_jittered_backoff_and_charged_each_time(
    streams, clock, mocker
):
    streams.fail_next = 2
    admitted = mocker.AsyncMock(return_value=0.0)
    jitter = mocker.Mock()
    jitter.uniform.side_effect = lambda low, high: high
    stream = make_stream(
        streams,
        clock,
        admit_connect=admitted,
        backoff=Backoff(base=0.05, cap=0.05),
        rng=jitter,
    )
    stream.start()
    try:
        stream.follow(PAIRS)
        wait_for(lambda: stream.covers(PAIRS, 5.0), bool, 10, "streaming after the failures")
    finally:
        stream.stop()
    figures = stream.snapshot()
    assert figures["connects"] == 3 == admitted.await_count == len(streams.clients)
    assert figures["failures"] == 2 and figures["consecutive_failures"] == 0
    assert figures["last_error"] == "ConnectionError: connection reset"
    assert jitter.uniform.call_count == 2  # one full-jitter draw per failure
    assert all(client.close.await_count == 1 for client in streams.clients)


def rest_source(pairs: list[str], need_last: bool) -> TickerSource:
    return TickerSource(
        name="bids_asks_all", calls=(PlannedCall("fetch_bids_asks", None, 0.8),), pairs=()
    )


def test_the_batch_reads_the_stream_first_and_rest_only_for_what_it_lacks(streams, clock, mocker):
    fetch = mocker.Mock(return_value={pair: book(pair, 50.0) for pair in [*PAIRS, "XRP/USDT"]})
    stream = make_stream(streams, clock)
    batch = TradingBatch(
        enabled=True,
        max_age=2.0,
        choose_source=rest_source,
        fetch=fetch,
        pricing=lambda: ({}, {}),
        stream=stream,
        timer=clock,
    )
    stream.start()
    try:
        stream.follow(PAIRS)
        wait_for(lambda: stream.covers(PAIRS, 2.0), bool, 10, "the stream")
        batch.begin(PAIRS)
        assert fetch.call_count == 0  # the stream covers the iteration: no REST batch
        found = batch.lookup("ETH/USDT")
        assert found.reason == "stream" and found.ticker is not None
        assert found.ticker["bid"] == 100.0
        batch.end(0.1)
        batch.begin([*PAIRS, "XRP/USDT"])  # a pair the stream has no ticker for yet
        missing = batch.lookup("XRP/USDT")
        batch.end(0.1)
    finally:
        batch.stop()
    assert missing.reason == "batch" and missing.ticker is not None
    assert missing.ticker["bid"] == 50.0
    assert fetch.call_count == 1


def test_a_quiet_stream_is_stale_and_rest_takes_over(streams, clock, mocker):
    fetch = mocker.Mock(return_value={pair: book(pair, 50.0) for pair in PAIRS})
    stream = make_stream(streams, clock)
    batch = TradingBatch(
        enabled=True,
        max_age=2.0,
        choose_source=rest_source,
        fetch=fetch,
        pricing=lambda: ({}, {}),
        stream=stream,
        timer=clock,
    )
    stream.start()
    try:
        stream.follow(PAIRS)
        wait_for(lambda: stream.covers(PAIRS, 2.0), bool, 10, "the stream")
    finally:
        stream.stop()  # the stream goes quiet
    clock.advance(2.5)
    batch.begin(PAIRS)
    found = batch.lookup("BTC/USDT")
    assert found.reason == "batch" and found.ticker is not None and found.ticker["bid"] == 50.0
    assert fetch.call_count == 1


def test_book_tickers_do_not_serve_a_side_that_needs_the_last_price(streams, clock, mocker):
    fetch = mocker.Mock(return_value={pair: {**book(pair, 50.0), "last": 50.5} for pair in PAIRS})
    stream = make_stream(streams, clock)  # watch_bids_asks: no `last`
    balanced = {"price_last_balance": 0.5}
    batch = TradingBatch(
        enabled=True,
        max_age=2.0,
        choose_source=rest_source,
        fetch=fetch,
        pricing=lambda: (balanced, balanced),
        stream=stream,
        timer=clock,
    )
    stream.start()
    try:
        stream.follow(PAIRS)
        wait_for(lambda: stream.covers(PAIRS, 2.0), bool, 10, "the stream")
        batch.begin(PAIRS)
        found = batch.lookup("BTC/USDT")
    finally:
        batch.stop()
    assert found.reason == "batch" and found.ticker is not None and found.ticker["last"] == 50.5


# -- connects draw on the exchange's connection pool (rule 10) --------------------------------


STOPPERS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_backends() -> Any:
    yield
    while STOPPERS:
        STOPPERS.pop()()


def connect_admitter(settings: dict[str, Any]) -> Any:
    """The stream's connection admission as the bot wires it, on a real ledger for binance."""
    from freqtrade_ratekit.config import parse_settings
    from freqtrade_ratekit.wiring import build_ledger, connection_admission

    parsed = parse_settings({"enabled": True, **settings})
    ledger = build_ledger(
        parsed,
        exchange_id="binance",
        trading_mode="spot",
        rate_limit_ms=50,
        on_stop=STOPPERS.append,
    )
    admit = connection_admission(ledger)
    assert admit is not None
    return admit, ledger


def admitted_within(admit: Any, attempts: int, seconds: float) -> int:
    """How many of `attempts` connects the budget lets through within `seconds`."""

    async def run() -> int:
        done = 0
        for _ in range(attempts):
            try:
                await asyncio.wait_for(admit(), timeout=seconds)
            except TimeoutError:
                break
            done += 1
        return done

    return asyncio.run(run())


BUDGET = {"WS_CONNECTIONS": {"limit": 3, "interval": 300}}


def test_connects_wait_for_the_connection_pool_under_enforce():
    admit, ledger = connect_admitter(
        {"weights": {"mode": "enforce", "headroom": 1.0, "pools": BUDGET}}
    )
    assert admitted_within(admit, 5, 0.5) == 3
    pool = next(p for p in ledger.snapshot()["pools"] if p["name"] == "WS_CONNECTIONS")
    assert pool["used"] == 3 and pool["limit"] == 3


@requires_redis
def test_bots_of_one_scope_share_the_connection_pool_through_redis():
    with RedisServer() as redis_server:
        shared_connects(redis_server.url)


def shared_connects(url: str) -> None:
    weights = {
        "mode": "enforce",
        "headroom": 1.0,
        "pools": BUDGET,
        "backend": url,
        "scope_id": "host-a",
    }
    first, _ = connect_admitter({"weights": weights})
    second, _ = connect_admitter({"weights": weights})
    assert admitted_within(first, 2, 0.5) == 2
    assert admitted_within(second, 3, 0.5) == 1  # the scope's third connect; then it waits
