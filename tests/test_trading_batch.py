"""The age rule of the trading loop's batch (rule 1), on `TradingBatch` alone."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from freqtrade_ratekit.rates.sources import PlannedCall, TickerSource
from freqtrade_ratekit.rates.trading_batch import (
    TradingBatch,
    book_top_from_ticker,
    needs_last_price,
    servable_side,
)
from tests.helpers import FakeClock

MAX_AGE = 2.0
TICKER_PRICING = {"price_side": "same", "use_order_book": False, "price_last_balance": 0.0}


def ticker(pair: str, bid: float = 100.0) -> dict[str, Any]:
    return {"symbol": pair, "bid": bid, "ask": bid + 1, "last": None}


def all_book_tickers(pairs: list[str], need_last: bool) -> TickerSource:
    """What the chooser picks on Binance spot: every book ticker in one call."""
    return TickerSource(
        name="bids_asks_all",
        calls=(PlannedCall("fetch_bids_asks", None, 0.8),),
        pairs=tuple(pairs),
    )


class Exchange:
    """The batch's `fetch`: answers every listed pair, with optional latency and failures."""

    def __init__(self, clock: FakeClock, listed: list[str]) -> None:
        self.clock = clock
        self.listed = list(listed)
        self.latency = 0.0
        self.error: Exception | None = None
        self.gate: threading.Event | None = None
        self.priceless: set[str] = set()
        self.calls: list[tuple[str, list[str] | None]] = []

    def fetch(self, method: str, symbols: list[str] | None) -> Any:
        self.calls.append((method, symbols))
        if self.gate is not None:
            self.gate.wait(10)
        self.clock.advance(self.latency)
        if self.error is not None:
            raise self.error
        wanted = self.listed if symbols is None else [p for p in symbols if p in self.listed]
        answer = {pair: ticker(pair) for pair in wanted}
        for pair in self.priceless:
            answer[pair] = {"symbol": pair, "bid": None, "ask": None, "last": None}
        return answer


PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def exchange(clock: FakeClock) -> Exchange:
    return Exchange(clock, PAIRS)


def make_batch(
    clock: FakeClock,
    exchange: Exchange,
    *,
    enabled: bool = True,
    entry: dict[str, Any] | None = None,
    exit_: dict[str, Any] | None = None,
    choose: Any = all_book_tickers,
    wait_limit: float = 5.0,
    rng: Any = None,
) -> TradingBatch:
    return TradingBatch(
        enabled=enabled,
        max_age=MAX_AGE,
        choose_source=choose,
        fetch=exchange.fetch,
        pricing=lambda: (entry or TICKER_PRICING, exit_ or TICKER_PRICING),
        wait_limit=lambda: wait_limit,
        rng=rng,
        timer=clock,
        wall_clock=clock,
    )


def arrived(batch: TradingBatch) -> None:
    """Wait for the batch in flight (a read waits for it; a served ticker counts nothing)."""
    assert batch.lookup(PAIRS[0]).reason == "batch"


def test_a_fresh_batch_serves_and_its_age_counts_from_the_answers_arrival(clock, exchange):
    exchange.latency = 0.3
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    arrived(batch)
    clock.advance(0.5)
    found = batch.lookup("ETH/USDT")
    assert found.reason == "batch"
    assert found.ticker == ticker("ETH/USDT")
    assert found.age == pytest.approx(0.5)  # not 0.8: the 0.3 s round trip came before it
    assert exchange.calls == [("fetch_bids_asks", None)]


def test_a_stale_batch_is_fetched_again_once_then_reads_go_per_pair(clock, exchange):
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    arrived(batch)
    clock.advance(MAX_AGE)  # exactly the maximum age: no longer younger than it
    first = batch.lookup("BTC/USDT")
    assert first.reason == "batch" and first.age == 0.0
    assert len(exchange.calls) == 2  # the one re-fetch, in the reading thread
    clock.advance(MAX_AGE + 1)
    assert batch.lookup("BTC/USDT").reason == "stale"
    assert len(exchange.calls) == 2  # no second re-fetch in one iteration
    figures = batch.snapshot()
    assert figures["refetches"] == 1
    assert figures["per_pair_by_reason"]["stale"] == 1


def test_a_pair_missing_from_the_batch_goes_per_pair(clock, exchange):
    exchange.listed = PAIRS[:3]
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    assert batch.lookup("XRP/USDT").reason == "missing"
    assert batch.lookup("BTC/USDT").reason == "batch"
    assert batch.snapshot()["per_pair_by_reason"]["missing"] == 1


def test_a_ticker_without_bid_and_ask_is_not_served(clock, exchange):
    exchange.priceless = {"SOL/USDT"}
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    assert batch.lookup("SOL/USDT").reason == "missing"


def test_a_failed_batch_call_sends_every_read_per_pair_and_backs_off(clock, exchange, mocker):
    exchange.error = ConnectionError("reset by peer")
    jitter = mocker.Mock()
    jitter.uniform.side_effect = lambda low, high: high  # the longest draw of full jitter
    batch = make_batch(clock, exchange, rng=jitter)
    batch.begin(PAIRS)
    assert [batch.lookup(pair).reason for pair in PAIRS] == ["failed"] * 4
    batch.end(0.1)
    clock.advance(0.9)  # inside the first failure's backoff (1 s)
    batch.begin(PAIRS)
    assert batch.lookup("BTC/USDT").reason == "backoff"
    assert len(exchange.calls) == 1
    batch.end(0.1)
    exchange.error = None
    clock.advance(0.1)
    batch.begin(PAIRS)
    assert batch.lookup("BTC/USDT").reason == "batch"
    figures = batch.snapshot()
    assert figures["failed_calls"] == 1
    assert figures["consecutive_failures"] == 0
    assert figures["per_pair_by_reason"]["failed"] == 4


def test_an_answer_lacking_most_pairs_is_a_failed_call_not_missing_pairs(clock, exchange):
    exchange.listed = PAIRS[:1]
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    assert batch.lookup("BTC/USDT").reason == "failed"
    assert "lacking 3 of the 4" in (batch.snapshot()["last_call"] or {})["error"]


def test_each_iteration_asks_for_its_own_pairs(clock, exchange):
    """A whitelist change: the next iteration's batch is planned for the new pairs."""
    planned: list[list[str]] = []

    def choose(pairs: list[str], need_last: bool) -> TickerSource:
        planned.append(pairs)
        return TickerSource(
            name="bids_asks_listed",
            calls=(PlannedCall("fetch_bids_asks", tuple(pairs), 0.8),),
            pairs=tuple(pairs),
        )

    batch = make_batch(clock, exchange, choose=choose)
    batch.begin(PAIRS[:2])
    assert batch.lookup("BTC/USDT").reason == "batch"
    batch.end(0.1)
    batch.begin([*PAIRS[1:], "ETH/USDT"])
    assert batch.lookup("BTC/USDT").reason == "missing"  # no longer asked for
    assert planned == [PAIRS[:2], PAIRS[1:]]
    assert exchange.calls[-1] == ("fetch_bids_asks", PAIRS[1:])


def test_a_read_waits_for_the_batch_in_flight(clock, exchange):
    exchange.gate = threading.Event()
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    threading.Timer(0.2, exchange.gate.set).start()
    assert batch.lookup("BTC/USDT").reason == "batch"


def test_a_batch_later_than_the_wait_limit_sends_the_read_per_pair(clock, exchange):
    exchange.gate = threading.Event()
    batch = make_batch(clock, exchange, wait_limit=0.05)
    batch.begin(PAIRS)
    assert batch.lookup("BTC/USDT").reason == "late"
    exchange.gate.set()
    assert batch.stop(5)


def test_off_means_no_call_at_all(clock, exchange):
    batch = make_batch(clock, exchange, enabled=False)
    batch.begin(PAIRS)
    assert batch.lookup("BTC/USDT").reason == "no_batch"
    assert exchange.calls == []


def test_order_books_below_the_top_cannot_be_served(clock, exchange):
    deep = {"price_side": "same", "use_order_book": True, "order_book_top": 3}
    batch = make_batch(clock, exchange, entry=deep, exit_=deep)
    batch.begin(PAIRS)
    assert exchange.calls == []
    assert batch.lookup("BTC/USDT").reason == "no_batch"


def test_the_per_pair_source_is_left_to_stock(clock, exchange):
    def per_pair(pairs: list[str], need_last: bool) -> TickerSource:
        return TickerSource(
            name="per_pair",
            calls=(PlannedCall("fetch_ticker", (pairs[0],), 0.4),),
            pairs=tuple(pairs),
        )

    batch = make_batch(clock, exchange, choose=per_pair)
    batch.begin(PAIRS[:1])
    assert exchange.calls == []


def test_iteration_durations_and_served_ages_are_histograms(clock, exchange):
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    arrived(batch)
    clock.advance(0.3)
    found = batch.lookup("BTC/USDT")
    batch.served(found.age or 0.0)
    batch.end(0.42)
    figures = batch.snapshot()
    assert figures["served"] == 1
    assert figures["served_age"]["count"] == 1
    assert figures["served_age"]["sum"] == pytest.approx(0.3)
    assert ["+Inf", 1] in figures["iterations"]["buckets"]
    assert [0.5, 1] in figures["iterations"]["buckets"] and [0.25, 0] in figures["iterations"][
        "buckets"
    ]
    assert figures["last_call"] is not None and figures["last_call"]["pairs"] == len(PAIRS)


def test_the_iteration_end_drops_its_batch(clock, exchange):
    batch = make_batch(clock, exchange)
    batch.begin(PAIRS)
    arrived(batch)
    batch.end(0.1)
    assert batch.lookup("BTC/USDT").reason == "no_batch"


@pytest.mark.parametrize(
    ("pricing", "servable"),
    [
        ({"use_order_book": False}, True),
        ({"use_order_book": True, "order_book_top": 1}, True),
        ({"use_order_book": True}, True),
        ({"use_order_book": True, "order_book_top": 2}, False),
    ],
)
def test_which_sides_a_batch_of_tickers_can_serve(pricing, servable):
    assert servable_side(pricing) is servable


def test_last_price_is_needed_only_by_a_balanced_ticker_side():
    assert not needs_last_price([TICKER_PRICING, {"use_order_book": True}])
    assert needs_last_price([{"price_last_balance": 0.5}])
    assert not needs_last_price([{"use_order_book": True, "price_last_balance": 0.5}])


def test_the_top_of_the_book_from_a_book_ticker():
    book = book_top_from_ticker(
        {"symbol": "BTC/USDT", "bid": 10.0, "bidVolume": 2.0, "ask": 11.0, "askVolume": 3.0}
    )
    assert book == {"symbol": "BTC/USDT", "bids": [[10.0, 2.0]], "asks": [[11.0, 3.0]]}
    assert book_top_from_ticker({"symbol": "X", "bid": None, "ask": 1.0})["bids"] == []
