"""The rate cache proven end to end: real Freqtrade bots, the exchange emulator's call log.

The bots run with an idle trading loop (`process_throttle_secs` 3600, timeframe 1d): force-entered
trades fill at once, and afterwards only REST readers price the trades. With a running loop,
`handle_trade` prices every open trade with `get_rate(refresh=True)` on each iteration (stock
and ratekit alike, design rule 1), and those calls would hide what the read path does.

The emulator's call log records the endpoint and arrival time, not the symbol, so a read-path
call is recognised by its endpoint: stock `get_rate` fetches one pair with `ticker/24hr?symbol=`
or `depth`, while ratekit's background refresh of many pairs uses the batched `bookTicker`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freqtrade_ratekit.patches.exchange import rate_book_of
from freqtrade_ratekit.sim import (
    ExchangeEmulator,
    RunningEmulator,
    exchange_ccxt_config,
    start_coingecko_emulator,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.harness import (
    IDLE_TRADING_LOOP,
    BotProcess,
    find_free_port,
    make_bot_config,
    wait_for,
)

OPEN_TRADES = 50
SINGLE_PAIR_ENDPOINTS = {"/api/v3/ticker/24hr", "/api/v3/depth"}
HANG_CLIENT_TIMEOUT_S = 20.0  # far below the emulator's 300 s hang: a request-path call fails


def exit_entries(bot: BotProcess) -> dict[str, dict[str, Any]]:
    status, body, _ = bot.get("/api/v1/ratekit/cache")
    assert status == 200, body
    return {row["pair"]: row for row in body["sides"]["exit"]["entries"]}


def cached_rates(bot: BotProcess) -> dict[str, float]:
    return {pair: row["rate"] for pair, row in exit_entries(bot).items()}


def open_rates(bot: BotProcess) -> dict[str, float | None]:
    status, body, _ = bot.get("/api/v1/status")
    assert status == 200, body
    return {trade["pair"]: trade["current_rate"] for trade in body}


def calls_between(
    emulator: RunningEmulator[ExchangeEmulator], start: float, end: float
) -> list[dict[str, Any]]:
    return [call for call in emulator.stats(since=start)["log"] if call["t"] <= end]


def start_bot(
    tmp_path: Path,
    exchange: RunningEmulator[ExchangeEmulator],
    coingecko_url: str,
    pairs: list[str],
    rate_cache: dict[str, Any],
    readers: dict[str, Any] | None = None,
) -> BotProcess:
    config = make_bot_config(
        exchange.url,
        coingecko_url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=len(pairs),
        ratekit={"enabled": True, "rate_cache": rate_cache, "readers": readers or {}},
        extra=IDLE_TRADING_LOOP,
    )
    return BotProcess(config, tmp_path, with_ratekit=True).start()


@pytest.fixture(scope="module")
def fifty_trade_bot(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BotProcess, RunningEmulator[ExchangeEmulator]]]:
    """A ratekit bot with 50 open trades, ttl 3 s, no timed refresh; one spare pair listed.

    /profit snapshots are off: every /profit reads its rates on the request path, as stock does
    (what these tests hold to rules 2 and 4), and no background recomputation reads a rate
    that a test expects nobody to have asked for."""
    with start_exchange_emulator() as exchange, start_coingecko_emulator() as coingecko:
        pairs = exchange.emulator.universe.usdt_pairs()[: OPEN_TRADES + 1]
        rate_cache = {"ttl": 3, "stale_ttl": 600, "negative_ttl": 30, "refresh_interval": 0}
        bot = start_bot(
            tmp_path_factory.mktemp("bot50"),
            exchange,
            coingecko.url,
            pairs,
            rate_cache,
            readers={"snapshot": False},
        )
        try:
            bot.open_trades(OPEN_TRADES)
            open_rates(bot)  # a reader asks for every exit rate once: fetched in the background
            wait_for(
                lambda: len(exit_entries(bot)), lambda n: n >= OPEN_TRADES, 20, "50 cached rates"
            )
            yield bot, exchange
        finally:
            exchange.update(hang=False)
            bot.stop()


@pytest.mark.e2e
def test_readers_after_ttl_make_no_exchange_call_on_the_request_path(fifty_trade_bot):
    bot, exchange = fifty_trade_bot
    exchange.update(latency_ms=200)
    wait_for(
        lambda: {pair: row["state"] for pair, row in exit_entries(bot).items()},
        lambda states: all(state == "stale" for state in states.values()),
        15,
        "every cached exit rate past its 3 s TTL",
    )

    first = time.time()
    for _ in range(5):
        for path in ("/api/v1/profit", "/api/v1/status"):
            status, body, _ = bot.get(path)
            assert status == 200, body
    last = time.time()

    calls = calls_between(exchange, first, last)
    assert not [c for c in calls if c["endpoint"] in SINGLE_PAIR_ENDPOINTS], calls
    # What remains is the background refresh the stale reads asked for: batched, and few.
    assert {c["endpoint"] for c in calls} <= {"/api/v3/ticker/bookTicker"}, calls
    assert len(calls) <= 1 + (last - first) / 3, calls

    # With the exchange hanging, a request-path call would block for 300 s.
    exchange.update(hang=True)
    try:
        for path in ("/api/v1/profit", "/api/v1/status"):
            status, body, _ = bot.get(path, timeout=HANG_CLIENT_TIMEOUT_S)
            assert status == 200, body
        # /status shows exactly what is cached. A refresh sent before the hang may still
        # land, so compare against a cache snapshot that did not change across the read.
        for _ in range(10):
            cached = cached_rates(bot)
            shown = open_rates(bot)
            if cached_rates(bot) == cached:
                break
    finally:
        exchange.update(hang=False, latency_ms=0)
    assert len(shown) == OPEN_TRADES
    for pair, rate in shown.items():
        assert rate is not None and not math.isnan(rate), pair
        assert rate == cached[pair], pair


@pytest.mark.e2e
def test_pair_never_cached_answers_at_once_and_is_fetched_in_background(fifty_trade_bot):
    bot, _ = fifty_trade_bot
    new_pair = bot.config["exchange"]["pair_whitelist"][OPEN_TRADES]
    assert new_pair not in exit_entries(bot)

    bot.force_enter(new_pair)  # caches the entry rate only; nothing asked for the exit rate
    first_read = open_rates(bot)
    assert new_pair in first_read
    assert first_read[new_pair] is None  # Freqtrade's NaN for a pricing error, as JSON

    fetched = wait_for(lambda: open_rates(bot)[new_pair], bool, 10, f"{new_pair} priced")
    assert fetched == exit_entries(bot)[new_pair]["rate"]


@pytest.mark.e2e
def test_delisted_pair_costs_one_call_per_negative_ttl(tmp_path):
    with start_exchange_emulator() as exchange, start_coingecko_emulator() as coingecko:
        # One open trade: when its rate is due, nothing else is, so every call in the log
        # below is a call for this pair (the log does not name symbols).
        pair = exchange.emulator.universe.usdt_pairs()[3]
        rate_cache = {"ttl": 2, "stale_ttl": 600, "negative_ttl": 30, "refresh_interval": 0}
        # /profit reads its rate on each request (no snapshot): the reads below are the ones
        # that would retry the pair
        bot = start_bot(
            tmp_path, exchange, coingecko.url, [pair], rate_cache, readers={"snapshot": False}
        )
        try:
            bot.open_trades(1)
            open_rates(bot)
            wait_for(lambda: exit_entries(bot), lambda rows: pair in rows, 10, f"{pair} cached")
            exchange.update(unknown_symbols=[pair])
            # from here on every call for the pair fails; whether the first read below or an
            # earlier one makes the one failing call, it must be the only one
            first = time.time()
            wait_for(
                lambda: (exit_entries(bot)[pair], bot.log_tail(1500)),
                lambda seen: seen[0]["state"] in ("stale", "failing"),
                10,
                "a stale rate",
            )
            for _ in range(25):
                status, body, _ = bot.get("/api/v1/profit")
                assert status == 200, body
                time.sleep(0.15)
            last = time.time()
            calls = calls_between(exchange, first, last)
            entry = exit_entries(bot)[pair]
        finally:
            bot.stop()
    assert last - first > 3  # the reads span more than one fresh TTL
    assert len(calls) == 1, calls
    assert calls[0]["endpoint"] == "/api/v3/ticker/24hr"
    assert calls[0]["status"] == 400  # Binance's "Invalid symbol."
    assert entry["state"] == "failing"
    assert entry["error"]


@pytest.mark.e2e
def test_profit_snapshot_follows_every_trade_change(tmp_path):
    """/profit comes from a snapshot refreshed in the background. Its max_age here is far
    longer than the test: only the database commit of a force-exit can make it change."""
    with start_exchange_emulator() as exchange, start_coingecko_emulator() as coingecko:
        pairs = exchange.emulator.universe.usdt_pairs()[:3]
        bot = start_bot(tmp_path, exchange, coingecko.url, pairs, {}, {"max_age": 600})
        try:
            # computed once after start-up, before anybody asked
            precomputed = wait_for(lambda: snapshot_rows(bot), bool, 20, "the start-up /profit")
            assert precomputed[0]["misses"] == 1 and precomputed[0]["hits"] == 0, precomputed
            bot.open_trades(3)
            first = wait_for(
                lambda: profit(bot), lambda p: p["trade_count"] == 3, 10, "3 trades in /profit"
            )
            assert first["closed_trade_count"] == 0
            assert profit(bot) == first  # unchanged data: the same answer, from the snapshot
            figures = snapshot_row(bot)
            assert figures["misses"] == 1 and figures["hits"] >= 1, figures  # none computed here

            trade_id = bot.client.status()[0]["trade_id"]
            bot.client.forceexit(trade_id)
            closed = wait_for(
                lambda: profit(bot),
                lambda p: p["closed_trade_count"] == 1,
                10,
                "the force-exit in /profit",
            )
            after = snapshot_row(bot)
        finally:
            bot.stop()
    assert closed["trade_count"] == 3
    assert closed["profit_closed_coin"] != first["profit_closed_coin"]
    assert after["recomputes"] >= 2 and after["misses"] == 1, after  # recomputed behind


def profit(bot: BotProcess) -> dict[str, Any]:
    status, body, _ = bot.get("/api/v1/profit")
    assert status == 200, body
    return dict(body)


def snapshot_rows(bot: BotProcess) -> list[dict[str, Any]]:
    status, body, _ = bot.get("/api/v1/ratekit/status")
    assert status == 200, body
    return list(body["readers"].get("snapshots", []))


def snapshot_row(bot: BotProcess) -> dict[str, Any]:
    rows = snapshot_rows(bot)
    assert len(rows) == 1, rows
    return rows[0]


# --- the formula: a ratekit refresh stores exactly what stock get_rate computes ----------

PRICE_SIDES = ("same", "other", "bid", "ask")
FROZEN_AT = 1_790_000_000.5  # the emulator's clock stands still: both sides see one market


@pytest.fixture(scope="module")
def frozen_market() -> Iterator[RunningEmulator[ExchangeEmulator]]:
    emulator = ExchangeEmulator(seed=7, wall_clock=lambda: FROZEN_AT)
    with RunningEmulator(emulator).start() as running:
        yield running


def exchange_config(url: str, pairs: list[str], with_ratekit: bool) -> dict[str, Any]:
    from freqtrade.enums import RunMode

    config: dict[str, Any] = {
        "exchange": exchange_ccxt_config(url, pairs, spot_only=True),
        "stake_currency": "USDT",
        "dry_run": True,
        "runmode": RunMode.DRY_RUN,
        "trading_mode": "spot",
        "margin_mode": "",
        "entry_pricing": {},
        "exit_pricing": {},
    }
    if with_ratekit:
        config["ratekit"] = {
            "enabled": True,
            "weights": {"mode": "off"},
            "rate_cache": {"refresh_interval": 0, "prewarm": False},
        }
    return config


@pytest.fixture(scope="module")
def stock_and_ratekit_exchanges(frozen_market) -> Iterator[tuple[Any, Any, Any, list[str]]]:
    """A stock Exchange and its original `get_rate`, a ratekit one, against one frozen market."""
    from freqtrade.exchange import Exchange
    from freqtrade.resolvers import ExchangeResolver

    import freqtrade_ratekit
    from freqtrade_ratekit import patches
    from freqtrade_ratekit.config import validate_bot_config

    pairs = frozen_market.emulator.universe.usdt_pairs()[:6]
    stock_get_rate = Exchange.get_rate
    stock = ExchangeResolver.load_exchange(
        exchange_config(frozen_market.url, pairs, False), validate=False
    )
    ratekit = None
    try:
        assert freqtrade_ratekit.install()
        config = exchange_config(frozen_market.url, pairs, True)
        patches.activate(validate_bot_config(config))
        ratekit = ExchangeResolver.load_exchange(config, validate=False)
        assert rate_book_of(ratekit) is not None
        yield stock, stock_get_rate, ratekit, pairs
    finally:
        freqtrade_ratekit.uninstall()
        if ratekit is not None:
            ratekit.close()
        stock.close()


def compare_refresh_with_stock(exchanges: tuple[Any, Any, Any, list[str]], pricing: dict) -> str:
    """Refresh all pairs through ratekit (first half long, second half short) and compare."""
    from freqtrade_ratekit.rates.refresher import PairSpec

    stock, stock_get_rate, ratekit, pairs = exchanges
    for exchange in (stock, ratekit):
        for side in ("entry", "exit"):
            exchange._config[f"{side}_pricing"] = dict(pricing[side])
    book = rate_book_of(ratekit)
    assert book is not None
    for cache in book.caches.values():
        cache.clear()
    specs = [PairSpec(pair, is_short=index >= len(pairs) // 2) for index, pair in enumerate(pairs)]
    report = book.refresher.refresh(specs)
    assert set(report.stored) == set(pairs), report
    for spec in specs:
        for side in ("entry", "exit"):
            expected = stock_get_rate(stock, spec.pair, True, side, spec.is_short)
            assert book.caches[side].get(spec.pair) == expected, (spec, side, report.method)
    return report.method


@pytest.mark.parametrize("balance", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("price_side", PRICE_SIDES)
def test_batched_ticker_refresh_equals_stock_get_rate(
    stock_and_ratekit_exchanges, price_side, balance
):
    ticker = {"price_side": price_side, "use_order_book": False, "price_last_balance": balance}
    # the exit side rotates through the other price sides, so mixed configs are covered too
    exit_side = PRICE_SIDES[(PRICE_SIDES.index(price_side) + 1) % len(PRICE_SIDES)]
    method = compare_refresh_with_stock(
        stock_and_ratekit_exchanges,
        {"entry": ticker, "exit": {**ticker, "price_side": exit_side}},
    )
    assert method != "fetch_ticker"  # a batched source, not stock's per-pair calls
    assert ("fetch_last_prices" in method) == (balance != 0)


@pytest.mark.parametrize("top", [1, 2, 3])
@pytest.mark.parametrize("price_side", PRICE_SIDES)
def test_order_book_refresh_equals_stock_get_rate(stock_and_ratekit_exchanges, price_side, top):
    book = {"price_side": price_side, "use_order_book": True, "order_book_top": top}
    ticker = {"price_side": price_side, "use_order_book": False, "price_last_balance": 0.0}
    compare_refresh_with_stock(stock_and_ratekit_exchanges, {"entry": book, "exit": book})
    # order-book entry pricing next to ticker exit pricing: both kinds in one refresh
    method = compare_refresh_with_stock(
        stock_and_ratekit_exchanges, {"entry": book, "exit": ticker}
    )
    assert "order_books" in method
