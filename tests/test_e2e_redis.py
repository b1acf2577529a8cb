"""Two real ratekit bots sharing one Redis: one weight budget, one fiat refresh per period,
and a Redis outage survived on a local share.

Both bots are greedy (order-book pricing for 8 open trades each, ~40 weight/s per bot) against
one Binance emulator whose window binds (300 per 10 s from the same IP). They share
`weights.backend: redis://...` with the same `scope_id`, so together they may use
headroom x limit.

Why headroom 0.5 and expected_bots 3: when Redis dies, each bot falls back to a local window
of capacity / expected_bots. That window already holds what the bot itself spent through
Redis (and the exchange's usage headers raise it further), so a bot that just spent more than
its local share waits for that to slide out: the outage below lasts longer than one window,
so the bots must be trading again inside it. The emulator may still hold up to one shared
capacity from before the outage, so shared + local shares fit the limit: 150 + 2 x 50 = 250 <=
300. After a restart Redis is empty while the local shares are still in the emulator's window:
the same sum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from freqtrade_ratekit.sim import (
    CoinGeckoEmulator,
    ExchangeEmulator,
    RunningEmulator,
    start_coingecko_emulator,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.harness import (
    ORDER_BOOK_PRICING,
    BotProcess,
    enforced_weights,
    find_free_port,
    make_bot_config,
    wait_for,
)
from tests.redis_fixtures import RedisServer, requires_redis

pytestmark = [pytest.mark.e2e, pytest.mark.load, requires_redis, pytest.mark.timeout(240)]

BOTS = 2
WINDOW_S = 10
WEIGHT_LIMIT = 300
SETUP_WEIGHT_LIMIT = 1_000_000
HEADROOM = 0.5
EXPECTED_BOTS = 3
PAIRS = 20
OPEN_TRADES = 8
FIAT_REFRESH_S = 5.0
SHARED_RUN_S = 20.0
OUTAGE_S = WINDOW_S + 5.0  # longer than a window: pre-outage spending slides out inside it
# Benchmark 3 checks the 85 % target over minutes. This run is two windows long, where one
# late loop iteration moves the share by several percent (a CI run measured exactly 85.0 %):
# the bound here tells a used shared budget from a starved one (two bots each holding back
# for the other would use half of it).
MIN_BUDGET_SHARE = 0.7
REJOIN_TIMEOUT_S = 40.0  # the probe backs off (1, 2, 4, 8 ... s) while Redis is away
SHARED_CAPACITY = HEADROOM * WEIGHT_LIMIT
LOCAL_CAPACITY = SHARED_CAPACITY / EXPECTED_BOTS


def shared_bot_config(
    exchange_url: str, coingecko_url: str, redis_url: str, pairs: list[str], db_dir: Path
) -> dict[str, Any]:
    ratekit = {
        "enabled": True,
        "fiat": {"refresh_interval": FIAT_REFRESH_S},
        "weights": enforced_weights(
            HEADROOM,
            WEIGHT_LIMIT,
            WINDOW_S,
            backend=redis_url,
            scope_id="e2e-host",
            expected_bots=EXPECTED_BOTS,
        ),
    }
    return make_bot_config(
        exchange_url,
        coingecko_url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=OPEN_TRADES,
        ratekit=ratekit,
        db_dir=db_dir,
        extra=ORDER_BOOK_PRICING,
    )


@dataclass
class SharedBots:
    redis: RedisServer
    exchange: RunningEmulator[ExchangeEmulator]
    coingecko: RunningEmulator[CoinGeckoEmulator]
    bots: list[BotProcess]

    def weights(self) -> list[dict[str, Any]]:
        snapshots = []
        for bot in self.bots:
            status, body, _ = bot.get("/api/v1/ratekit/weights", timeout=10)
            assert status == 200, body
            snapshots.append(body)
        return snapshots

    def bind_limit(self) -> None:
        self.exchange.update(weight_limit=WEIGHT_LIMIT)


def start_with_trades(bot: BotProcess) -> None:
    bot.start()
    bot.open_trades(OPEN_TRADES)


@pytest.fixture(scope="module")
def shared_bots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedBots]:
    redis_server = RedisServer().start()
    exchange = start_exchange_emulator(weight_limit=SETUP_WEIGHT_LIMIT, window_s=WINDOW_S)
    coingecko = start_coingecko_emulator()
    pairs = exchange.emulator.universe.usdt_pairs()[:PAIRS]
    bots = []
    for index in range(BOTS):
        workdir = tmp_path_factory.mktemp(f"bot{index}")
        config = shared_bot_config(exchange.url, coingecko.url, redis_server.url, pairs, workdir)
        bots.append(BotProcess(config, workdir, with_ratekit=True))
    try:
        with ThreadPoolExecutor(BOTS) as pool:
            for started in [pool.submit(start_with_trades, bot) for bot in bots]:
                started.result()
        yield SharedBots(redis_server, exchange, coingecko, bots)
    finally:
        for bot in bots:
            bot.stop()
        exchange.stop()
        coingecko.stop()
        redis_server.stop()


def accepted_weight(log: list[dict[str, Any]], start: float, end: float) -> float:
    return sum(e["weight"] for e in log if start <= e["t"] < end and e["status"] == 200)


def test_bots_draw_from_one_budget_and_share_one_fiat_refresh(shared_bots):
    shared_bots.bind_limit()
    shared_bots.exchange.reset()
    calls_before = [w["totals"]["calls"] for w in shared_bots.weights()]
    for bot in shared_bots.bots:  # /profit converts to USD: registers USDT/USD with fiat
        assert bot.get("/api/v1/profit")[0] == 200
    started = time.time()
    time.sleep(SHARED_RUN_S)
    ended = time.time()

    stats = shared_bots.exchange.stats(since=started)
    assert stats["totals"]["status_429"] == 0, stats["totals"]
    assert stats["totals"]["status_418"] == 0, stats["totals"]
    used = accepted_weight(stats["log"], started, ended)
    windows = (ended - started) / WINDOW_S
    # One shared budget, used, and never two budgets' worth.
    assert used >= MIN_BUDGET_SHARE * SHARED_CAPACITY * windows, used
    assert used <= SHARED_CAPACITY * (math.ceil(windows) + 1), used

    for before, snapshot in zip(calls_before, shared_bots.weights(), strict=True):
        assert snapshot["backend"]["kind"] == "redis"
        assert snapshot["backend"]["healthy"] is True
        assert snapshot["backend"]["degraded"] is False
        assert snapshot["totals"]["calls"] > before  # each bot got its share
        assert snapshot["totals"]["status_429"] == 0

    fiat_log = shared_bots.coingecko.stats(since=started)["log"]
    refreshes = sum(1 for e in fiat_log if e["endpoint"] == "/api/v3/simple/price")
    periods = (ended - started) / FIAT_REFRESH_S
    assert 1 <= refreshes <= math.ceil(periods) + 1, f"{refreshes} calls in {periods} periods"
    # The ~17k-entry coin list too: one bot downloads it, the other reads it from Redis.
    endpoints = shared_bots.coingecko.stats()["endpoints"]
    assert endpoints.get("/api/v3/coins/list", {}).get("calls", 0) == 1, endpoints
    fiat = [bot.get("/api/v1/ratekit/fiat")[1] for bot in shared_bots.bots]
    for snapshot in fiat:
        usdt = next(p for p in snapshot["pairs"] if p["pair"] == "usdt/usd")
        assert usdt["price"] and usdt["price"] > 0
        assert snapshot["shared_store"]["healthy"] is True
    assert sum(s["calls"]["shared_hits"] for s in fiat) > 0
    print(
        f"{BOTS} bots on one Redis: {used:.0f} weight accepted in {ended - started:.0f}s "
        f"({used / (SHARED_CAPACITY * windows):.0%} of headroom x limit), "
        f"{refreshes} simple/price calls in {periods:.1f} fiat periods"
    )


def test_bots_keep_trading_on_a_local_share_while_redis_is_down_then_rejoin(shared_bots):
    shared_bots.bind_limit()
    started = time.time()
    calls_before = [w["totals"]["calls"] for w in shared_bots.weights()]

    shared_bots.redis.stop()
    down_at = time.monotonic()
    wait_for(
        shared_bots.weights,
        lambda weights: all(w["backend"]["degraded"] for w in weights),
        OUTAGE_S,
        "both bots degraded",
        interval=0.25,
    )
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    during = shared_bots.weights()
    for before, snapshot in zip(calls_before, during, strict=True):
        assert snapshot["backend"]["degraded"] is True
        assert snapshot["backend"]["healthy"] is False
        assert "local share" in snapshot["backend"]["detail"]
        assert snapshot["totals"]["calls"] > before, "the bot stopped trading without Redis"
        pool = next(p for p in snapshot["pools"] if p["name"] == "REQUEST_WEIGHT")
        assert pool["used"] <= LOCAL_CAPACITY + 1e-6, pool
    assert all(bot.process and bot.process.poll() is None for bot in shared_bots.bots)

    shared_bots.redis.start()  # same port, empty store
    restarted_at = time.monotonic()
    wait_for(
        shared_bots.weights,
        lambda weights: all(
            w["backend"]["healthy"] and not w["backend"]["degraded"] for w in weights
        ),
        REJOIN_TIMEOUT_S,
        "both bots rejoined Redis",
        interval=0.25,
    )
    rejoin_s = time.monotonic() - restarted_at
    calls_rejoined = sum(w["totals"]["calls"] for w in shared_bots.weights())
    # A call that was waiting on the full local share sleeps out its wait (<= one window).
    wait_for(
        lambda: sum(w["totals"]["calls"] for w in shared_bots.weights()),
        lambda calls: calls > calls_rejoined,
        WINDOW_S + 5,
        "traffic after rejoining",
        interval=0.25,
    )

    stats = shared_bots.exchange.stats(since=started)
    assert stats["totals"]["status_429"] == 0, stats["totals"]
    assert stats["totals"]["status_418"] == 0, stats["totals"]
    print(
        f"outage {OUTAGE_S:.0f}s: calls during it "
        f"{[d['totals']['calls'] - b for d, b in zip(during, calls_before, strict=True)]}, "
        f"rejoined {rejoin_s:.1f}s after the restart"
    )
