"""Rule 1 in the bot's loop, on a real Freqtrade Exchange (real ccxt binance, the emulator):
the iteration's trading reads come from one batched call while it is younger than
`trading_max_age`, and from stock's per-pair fetch otherwise."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from freqtrade.enums import RunMode
from freqtrade.exceptions import ExchangeError
from freqtrade.exchange import Exchange

from freqtrade_ratekit import patches
from freqtrade_ratekit.config import parse_settings
from freqtrade_ratekit.patches.exchange import rate_book_of, trading_iteration
from freqtrade_ratekit.rates.book import RateBook
from freqtrade_ratekit.sim import exchange_ccxt_config
from tests.helpers import wait_for

BOOK_TICKER = "/api/v3/ticker/bookTicker"
TICKER_24HR = "/api/v3/ticker/24hr"
DEPTH = "/api/v3/depth"
MAX_AGE = 1.0


def pricing(**overrides: Any) -> dict[str, Any]:
    return {"price_side": "same", "use_order_book": False, "price_last_balance": 0.0, **overrides}


@pytest.fixture
def make_exchange(exchange_emulator) -> Iterator[Any]:
    """A dry-run Freqtrade Exchange with ratekit (no background refresh), against the emulator."""
    made: list[Exchange] = []

    def make(
        *, trading_batch: bool = True, entry: dict | None = None, exit_: dict | None = None
    ) -> tuple[Exchange, RateBook, list[str]]:
        pairs = exchange_emulator.emulator.universe.usdt_pairs()[:8]
        section = {
            "enabled": True,
            "rate_cache": {
                "refresh_interval": 0,
                "prewarm": False,
                "trading_batch": trading_batch,
                "trading_max_age": MAX_AGE,
                "negative_ttl": 60,
            },
            "weights": {"mode": "observe"},
        }
        patches.install()
        patches.activate(parse_settings(section))
        config = {
            "runmode": RunMode.DRY_RUN,
            "dry_run": True,
            "stake_currency": "USDT",
            "exchange": exchange_ccxt_config(exchange_emulator.url, pairs, spot_only=True),
            "entry_pricing": entry or pricing(),
            "exit_pricing": exit_ or pricing(),
            "ratekit": section,
        }
        exchange = Exchange(config, validate=False)
        made.append(exchange)
        book = rate_book_of(exchange)
        assert book is not None
        return exchange, book, pairs

    yield make
    for exchange in made:
        exchange.close()
    patches.uninstall()


def calls(emulator, since: float, endpoint: str) -> int:
    return sum(1 for entry in emulator.stats(since=since)["log"] if entry["endpoint"] == endpoint)


def test_one_batched_call_prices_the_whole_iteration(make_exchange, exchange_emulator, mocker):
    exchange, book, pairs = make_exchange()
    spy = mocker.spy(exchange._api, "fetch_bids_asks")
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        rates = {
            (pair, side): exchange.get_rate(pair, refresh=True, side=side, is_short=False)
            for pair in pairs
            for side in ("entry", "exit")
        }
    assert calls(exchange_emulator, since, BOOK_TICKER) == 1
    assert calls(exchange_emulator, since, TICKER_24HR) == 0
    answer = spy.spy_return
    for pair in pairs:  # Freqtrade's formula, price_side "same": entry at bid, exit at ask
        assert rates[pair, "entry"] == answer[pair]["bid"]
        assert rates[pair, "exit"] == answer[pair]["ask"]
    figures = book.trading.snapshot()
    assert figures["served"] == 2 * len(pairs)
    assert figures["per_pair"] == 0
    assert figures["served_age"]["count"] == 2 * len(pairs)
    assert figures["iterations"]["count"] == 1
    # the served rates are stored as stock stores them: a fresh refresh=False read finds them
    cached = exchange.get_rate(pairs[0], refresh=False, side="exit", is_short=False)
    assert cached == rates[pairs[0], "exit"]


def test_outside_the_bot_loop_refresh_true_is_stock(make_exchange, exchange_emulator):
    exchange, book, pairs = make_exchange()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        assert batch.lookup(pairs[0]).reason == "batch"
    since = time.time()
    exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False)
    assert calls(exchange_emulator, since, TICKER_24HR) == 1
    assert calls(exchange_emulator, since, BOOK_TICKER) == 0


def test_a_stale_batch_is_refetched_once_then_reads_go_per_pair(make_exchange, exchange_emulator):
    exchange, book, pairs = make_exchange()
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        assert batch.lookup(pairs[0]).reason == "batch"  # arrived
        time.sleep(MAX_AGE + 0.2)
        exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False)  # re-fetch
        time.sleep(MAX_AGE + 0.2)
        exchange.get_rate(pairs[1], refresh=True, side="exit", is_short=False)  # per pair
    assert calls(exchange_emulator, since, BOOK_TICKER) == 2
    assert calls(exchange_emulator, since, TICKER_24HR) == 1
    figures = book.trading.snapshot()
    assert figures["refetches"] == 1
    assert figures["per_pair_by_reason"]["stale"] == 1
    assert figures["served"] == 1
    assert figures["served_age"]["sum"] < MAX_AGE  # the re-fetched batch, not the stale one


def test_a_failed_batch_loses_nothing(make_exchange, exchange_emulator):
    exchange, book, pairs = make_exchange()
    exchange_emulator.update(fail_rate=1.0, fail_status=503)
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        assert batch.lookup(pairs[0]).reason == "failed"  # waits for the failed call
        exchange_emulator.update(fail_rate=0.0)
        since = time.time()
        rates = [exchange.get_rate(p, refresh=True, side="exit", is_short=False) for p in pairs]
    assert all(rate > 0 for rate in rates)
    assert calls(exchange_emulator, since, TICKER_24HR) == len(pairs)
    figures = book.trading.snapshot()
    assert figures["failed_calls"] == 1
    assert figures["per_pair_by_reason"]["failed"] == len(pairs) + 1


def test_a_pair_missing_from_the_batch_is_fetched_per_pair_and_negative_cached(
    make_exchange, exchange_emulator
):
    exchange, book, pairs = make_exchange()
    delisted = pairs[3]
    exchange_emulator.update(unknown_symbols=[delisted.replace("/", "")])
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        assert exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False) > 0
        with pytest.raises(ExchangeError):  # what stock raises: the exchange's own answer
            exchange.get_rate(delisted, refresh=True, side="exit", is_short=False)
    assert calls(exchange_emulator, since, TICKER_24HR) >= 1  # stock's fetch (and retries)
    assert book.trading.snapshot()["per_pair_by_reason"]["missing"] == 1
    assert book.caches["exit"].failing(delisted) is not None  # readers: rule 4
    assert book.batch_pairs(pairs) == [p for p in pairs if p != delisted]


def test_the_top_of_the_book_is_served_from_book_tickers(make_exchange, exchange_emulator, mocker):
    top = pricing(use_order_book=True, order_book_top=1)
    exchange, book, pairs = make_exchange(entry=top, exit_=top)
    spy = mocker.spy(exchange._api, "fetch_bids_asks")
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        entry = exchange.get_rate(pairs[0], refresh=True, side="entry", is_short=False)
        exit_ = exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False)
    assert calls(exchange_emulator, since, DEPTH) == 0
    assert (entry, exit_) == (spy.spy_return[pairs[0]]["bid"], spy.spy_return[pairs[0]]["ask"])


def test_deeper_order_book_levels_are_fetched_per_pair(make_exchange, exchange_emulator):
    deep = pricing(use_order_book=True, order_book_top=2)
    exchange, book, pairs = make_exchange(entry=pricing(), exit_=deep)
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        exchange.get_rate(pairs[0], refresh=True, side="entry", is_short=False)  # ticker side
        exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False)  # depth 2
    assert calls(exchange_emulator, since, BOOK_TICKER) == 1
    assert calls(exchange_emulator, since, DEPTH) == 1
    assert book.trading.snapshot()["per_pair_by_reason"]["depth"] == 1


def test_position_adjustment_prices_both_sides_from_the_batch(
    make_exchange, exchange_emulator, mocker
):
    exchange, book, pairs = make_exchange()
    spy = mocker.spy(exchange._api, "fetch_bids_asks")
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        entry, exit_ = exchange.get_rates(pairs[2], True, False)
    assert calls(exchange_emulator, since, TICKER_24HR) == 0
    assert (entry, exit_) == (spy.spy_return[pairs[2]]["bid"], spy.spy_return[pairs[2]]["ask"])


def test_switched_off_every_trading_read_is_stock(make_exchange, exchange_emulator):
    exchange, book, pairs = make_exchange(trading_batch=False)
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        for pair in pairs[:3]:
            exchange.get_rate(pair, refresh=True, side="exit", is_short=False)
    assert calls(exchange_emulator, since, BOOK_TICKER) == 0
    assert calls(exchange_emulator, since, TICKER_24HR) == 3


# -- the websocket price stream (rate_cache.stream) ------------------------------------------


@pytest.fixture
def make_streaming_exchange(exchange_emulator) -> Iterator[Any]:
    """As `make_exchange`, with `rate_cache.stream` on and ccxt.pro pointed at the emulator's
    market streams."""
    made: list[Exchange] = []

    def make() -> tuple[Exchange, RateBook, list[str]]:
        pairs = exchange_emulator.emulator.universe.usdt_pairs()[:6]
        section = {
            "enabled": True,
            "rate_cache": {
                "refresh_interval": 0,
                "prewarm": False,
                "trading_max_age": MAX_AGE,
                "stream": True,
            },
            "weights": {"mode": "observe"},
        }
        patches.install()
        patches.activate(parse_settings(section))
        config = {
            "runmode": RunMode.DRY_RUN,
            "dry_run": True,
            "stake_currency": "USDT",
            "exchange": exchange_ccxt_config(
                exchange_emulator.url, pairs, spot_only=True, websocket=True
            ),
            "entry_pricing": pricing(),
            "exit_pricing": pricing(),
            "ratekit": section,
        }
        exchange = Exchange(config, validate=False)
        made.append(exchange)
        book = rate_book_of(exchange)
        assert book is not None and book.trading.stream is not None
        return exchange, book, pairs

    yield make
    for exchange in made:
        exchange.close()
    patches.uninstall()


def streaming(book: RateBook, pairs: list[str]) -> None:
    """Follow `pairs` and wait until the stream has a fresh ticker for each."""
    stream = book.trading.stream
    assert stream is not None
    stream.follow(pairs)
    wait_for(
        lambda: stream.covers(pairs, MAX_AGE) or stream.snapshot(),
        lambda found: found is True,
        30,
        "streamed tickers",
    )


def test_the_stream_prices_the_iteration_without_rest_calls(
    make_streaming_exchange, exchange_emulator
):
    exchange, book, pairs = make_streaming_exchange()
    prices = {pair: 100.0 + index for index, pair in enumerate(pairs)}
    exchange_emulator.update(pinned_prices=prices)
    streaming(book, pairs)
    time.sleep(1.2)  # every streamed ticker is from after the pins
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        rates = [exchange.get_rate(p, refresh=True, side="exit", is_short=False) for p in pairs]
    assert calls(exchange_emulator, since, BOOK_TICKER) == 0
    assert calls(exchange_emulator, since, TICKER_24HR) == 0
    books = exchange._api.fetch_bids_asks(pairs)  # the same prices over REST
    assert rates == [books[pair]["ask"] for pair in pairs]
    figures = book.trading.snapshot()
    assert figures["served_from_stream"] == len(pairs)
    stream = figures["stream"]
    assert stream is not None and stream["connected"] and stream["connects"] == 1
    websocket = exchange_emulator.stats()["websocket"]
    assert websocket["connections"]["total"] == 1
    assert websocket["subscriptions"]["active_by_kind"].get("bookTicker") == len(pairs)


def test_a_quiet_stream_hands_over_to_the_rest_batch(make_streaming_exchange, exchange_emulator):
    exchange, book, pairs = make_streaming_exchange()
    streaming(book, pairs)
    exchange_emulator.update(ws_pause=True)  # connected, but nothing comes
    time.sleep(MAX_AGE + 0.2)
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        for pair in pairs:
            exchange.get_rate(pair, refresh=True, side="exit", is_short=False)
    assert calls(exchange_emulator, since, BOOK_TICKER) == 1  # one batch, no per-pair calls
    assert calls(exchange_emulator, since, TICKER_24HR) == 0
    exchange_emulator.update(ws_pause=False)
    streaming(book, pairs)  # and it takes over again
    since = time.time()
    with trading_iteration(book) as batch:
        batch.begin(pairs)
        exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False)
    assert calls(exchange_emulator, since, BOOK_TICKER) == 0


def test_refused_reconnects_back_off_instead_of_storming(
    make_streaming_exchange, exchange_emulator
):
    _, book, pairs = make_streaming_exchange()
    streaming(book, pairs)
    exchange_emulator.update(ws_refuse=True, ws_drop=1.0)
    stream = book.trading.stream
    assert stream is not None
    wait_for(lambda: stream.snapshot()["consecutive_failures"], lambda n: n >= 2, 30, "failures")
    time.sleep(4)
    refused = exchange_emulator.stats()["websocket"]["connections"]["refused"]
    # full-jitter backoff from 1 s, doubling: a handful of attempts in ~5 s, not a storm
    assert refused <= 8, refused
    exchange_emulator.update(ws_refuse=False, ws_drop=0.0)
    wait_for(lambda: stream.snapshot()["connected"], bool, 90, "reconnected")
    streaming(book, pairs)
