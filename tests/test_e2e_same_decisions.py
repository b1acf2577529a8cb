"""Same decisions with the trading batch (and with the price stream) as without it: a stock bot
and a ratekit bot (`trading_batch` on, its default; then `stream` on too) run
`RatekitStepStrategy`, which enters every pair once and exits only on price (ROI +2 %,
stoploss -3 %), each against its own emulator (same seed) whose prices the test pins and steps
identically. Both must open and close the same trades at the same rates for the same reasons,
while the ratekit bot priced its loop from batched calls or the stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freqtrade_ratekit.sim import (
    exchange_ccxt_config,
    start_coingecko_emulator,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SEED = 7
PAIRS = ["ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT"]
UP = PAIRS[:3]  # +3 %: past the ROI of 2 %
DOWN = PAIRS[3:]  # -4 %: past the stoploss of 3 %
TICKER_24HR = "/api/v3/ticker/24hr"


@pytest.fixture
def market() -> Iterator[list[Any]]:
    """Two exchange emulators with the same seed and pins (one per bot, so that each call log
    is one bot's), and one CoinGecko."""
    exchanges = [start_exchange_emulator(seed=SEED, latency_ms=20) for _ in range(2)]
    coingecko = start_coingecko_emulator()
    try:
        yield [*exchanges, coingecko]
    finally:
        for server in (*exchanges, coingecko):
            server.stop()


def pin(exchanges: list[Any], prices: dict[str, float]) -> None:
    for exchange in exchanges:
        exchange.update(pinned_prices=prices)


def closed_trades(bot: BotProcess) -> list[dict[str, Any]]:
    status, body, _ = bot.get("/api/v1/trades?limit=500")  # the closed trades
    assert status == 200, body
    return list(body["trades"])


def open_trades(bot: BotProcess) -> list[dict[str, Any]]:
    status, body, _ = bot.get("/api/v1/status")
    assert status == 200, body
    return list(body)


def decisions(trades: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the strategy decided, per trade: no times, no ids."""
    return sorted(
        (
            t["pair"],
            t["is_open"],
            t["amount"],
            t["open_rate"],
            t["close_rate"],
            t["exit_reason"],
            t["enter_tag"],
        )
        for t in trades
    )


def make_bot(
    tmp_path: Path,
    name: str,
    exchange: Any,
    coingecko: Any,
    ratekit: dict[str, Any] | None,
    *,
    websocket: bool,
) -> BotProcess:
    """The bot, not started: `with bot:` starts and stops it. `websocket`: Freqtrade's
    `enable_ws` and ccxt.pro pointed at the emulator's market streams."""
    workdir = tmp_path / name
    workdir.mkdir()
    config = make_bot_config(
        exchange.url,
        coingecko.url,
        find_free_port(),
        pairs=PAIRS,
        max_open_trades=len(PAIRS),
        ratekit=ratekit,
        db_dir=workdir,
        extra={"exchange": exchange_ccxt_config(exchange.url, PAIRS, websocket=websocket)},
    )
    return BotProcess(
        config, workdir, with_ratekit=ratekit is not None, strategy="RatekitStepStrategy"
    )


@pytest.mark.parametrize(
    ("rate_cache", "websocket"),
    [({"trading_batch": True}, False), ({"trading_batch": True, "stream": True}, True)],
    ids=["batch", "stream"],
)
def test_the_batch_makes_the_same_trades_as_stock(market, tmp_path, rate_cache, websocket):
    *exchanges, coingecko = market
    universe = exchanges[0].emulator.universe
    start_prices = {pair: universe.get(pair.replace("/", "")).base_price for pair in PAIRS}
    pin(exchanges, start_prices)
    stock = make_bot(tmp_path, "stock", exchanges[0], coingecko, None, websocket=websocket)
    batched = make_bot(
        tmp_path,
        "ratekit",
        exchanges[1],
        coingecko,
        {"enabled": True, "rate_cache": rate_cache},
        websocket=websocket,
    )
    with stock, batched:
        bots = {"stock": stock, "ratekit": batched}
        for name, bot in bots.items():
            wait_for(bot.open_trade_count, lambda n: n == len(PAIRS), 120, f"{name} entries")
        entered = decisions(open_trades(stock))
        assert entered == decisions(open_trades(batched))
        assert len(entered) == len(PAIRS) and all(is_open for _, is_open, *_ in entered)

        stepped = {pair: start_prices[pair] * (1.03 if pair in UP else 0.96) for pair in PAIRS}
        pin(exchanges, stepped)
        for name, bot in bots.items():
            wait_for(
                lambda bot=bot: closed_trades(bot),
                lambda closed: len(closed) == len(PAIRS),
                120,
                f"{name} exits",
            )
        closed = decisions(closed_trades(stock))
        assert closed == decisions(closed_trades(batched))
        reasons = {pair: reason for pair, _, _, _, _, reason, _ in closed}
        assert reasons == {**dict.fromkeys(UP, "roi"), **dict.fromkeys(DOWN, "stop_loss")}
        for pair, _, _, open_rate, close_rate, _, _ in closed:
            assert (close_rate > open_rate) is (pair in UP)

        status, cache, _ = batched.get("/api/v1/ratekit/cache")
        assert status == 200
        loop = cache["trading"]
        assert loop["enabled"] and loop["served"] >= 2 * len(PAIRS)  # entries and exits
        assert loop["iterations"]["count"] > 0
        if websocket:  # the stream served the exits (the entries may precede its first data)
            assert loop["served_from_stream"] >= len(PAIRS)
        else:
            assert loop["batch_calls"] > 0
    # the stock bot priced its loop pair by pair, the ratekit bot from its batches
    per_pair = [e.stats()["endpoints"].get(TICKER_24HR, {}).get("calls", 0) for e in exchanges]
    assert per_pair[1] < per_pair[0] / 2, per_pair
