"""A real ratekit bot with 30 open trades priced by the websocket stream (`rate_cache.stream`)
against the emulator's Binance market streams: its loop spends no pricing REST weight while
the stream is live, every trading read uses data younger than the maximum age, a dropped and
refused stream hands over to the REST batch without a connect storm, and the stream takes
over again once the emulator accepts connections."""

from __future__ import annotations

import time
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

TRADES = 30
MAX_AGE = 2.0
WINDOW_S = 25.0
PRICING = ("/api/v3/ticker/24hr", "/api/v3/ticker/bookTicker", "/api/v3/ticker/price")


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[tuple[BotProcess, Any]]:
    exchange = start_exchange_emulator(latency_ms=20)
    coingecko = start_coingecko_emulator()
    pairs = exchange.emulator.universe.usdt_pairs()[:TRADES]
    config = make_bot_config(
        exchange.url,
        coingecko.url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=TRADES,
        ratekit={
            "enabled": True,
            "rate_cache": {"stream": True, "trading_max_age": MAX_AGE},
        },
        extra={
            "exchange": exchange_ccxt_config(exchange.url, pairs, websocket=True),
            "internals": {"process_throttle_secs": 2, "heartbeat_interval": 0},
        },
        db_dir=tmp_path,
    )
    process = BotProcess(config, tmp_path, with_ratekit=True)
    try:
        with process:
            process.open_trades(TRADES, timeout=180)
            yield process, exchange
    finally:
        exchange.stop()
        coingecko.stop()


def trading(bot: BotProcess) -> dict[str, Any]:
    status, body, _ = bot.get("/api/v1/ratekit/cache")
    assert status == 200, body
    return dict(body["trading"])


def pricing_calls(exchange: Any) -> int:
    endpoints = exchange.stats()["endpoints"]
    return sum(endpoints.get(name, {}).get("calls", 0) for name in PRICING)


def test_a_streamed_bot_prices_its_loop_without_rest_and_survives_losing_the_stream(bot):
    process, exchange = bot
    wait_for(lambda: trading(process)["served_from_stream"], bool, 60, "reads from the stream")
    before, calls_before = trading(process), pricing_calls(exchange)
    time.sleep(WINDOW_S)
    after, calls_after = trading(process), pricing_calls(exchange)

    from_stream = after["served_from_stream"] - before["served_from_stream"]
    served = after["served"] - before["served"]
    per_pair = after["per_pair"] - before["per_pair"]
    iterations = after["iterations"]["count"] - before["iterations"]["count"]
    assert iterations >= 3
    assert from_stream >= TRADES * (iterations - 1)  # the exits of every open trade
    # REST pricing in the window: only the counted fallbacks (a pair gone quiet, one batch)
    assert calls_after - calls_before <= (served - from_stream) + per_pair + 2
    # every served read was younger than the maximum age
    age = after["served_age"]
    assert ["+Inf", age["count"]] in age["buckets"]
    assert [MAX_AGE, age["count"]] in age["buckets"]
    # one connection for all the book tickers (Freqtrade's own websocket candles, when it
    # subscribes them, have their own: tests/test_sim_ws.py runs those end to end)
    websocket = exchange.stats()["websocket"]
    assert websocket["subscriptions"]["active_by_kind"].get("bookTicker", 0) >= TRADES
    assert after["stream"] is not None and after["stream"]["connects"] == 1
    status, rows, _ = process.get("/api/v1/status")
    assert status == 200 and len(rows) == TRADES
    assert all(row["current_rate"] > 0 for row in rows)

    # drop the stream and refuse reconnects: the REST batch takes over, no connect storm
    exchange.update(ws_drop=1.0, ws_refuse=True)
    dropped = trading(process)
    time.sleep(MAX_AGE + 10)
    lost = trading(process)
    assert lost["served"] - dropped["served"] >= TRADES  # priced by the REST batch
    assert lost["stream"] is not None and not lost["stream"]["connected"]
    refused = exchange.stats()["websocket"]["connections"]["refused"]
    assert refused <= 8, refused  # full-jitter backoff from 1 s, doubling, over ~12 s
    late = lost["served_age"]
    assert [MAX_AGE, late["count"]] in late["buckets"]  # still nothing older than the maximum

    # restore: the stream takes over again
    exchange.update(ws_drop=0.0, ws_refuse=False)
    wait_for(
        lambda: trading(process)["served_from_stream"],
        lambda n: n > lost["served_from_stream"],
        120,
        "the stream serving again",
    )
    assert process.process is not None and process.process.poll() is None
