"""Weight accounting end to end: real greedy Freqtrade bots against the Binance emulator.

Two bots with the same greedy config run side by side, each against its own emulator whose
REQUEST_WEIGHT window binds within seconds (300 per 10 s): stock Freqtrade and Freqtrade with
ratekit in `enforce` mode. Greedy means: 30 pairs on 1m candles, entry and exit priced from the
order book (Binance depth weight 5 per call), and 12 open trades whose exit price Freqtrade
fetches with `refresh=True` on every loop. That asks for about 60 weight/s, twice the limit.

The trades are opened while the emulators still allow plenty; the limit is lowered (and the
emulators' counters cleared) only for the measured run.
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
    ExchangeEmulator,
    RunningEmulator,
    start_coingecko_emulator,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.harness import (
    GREEDY_TRADING,
    BotProcess,
    enforced_weights,
    find_free_port,
    make_bot_config,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.load, pytest.mark.timeout(240)]

WINDOW_S = 10
WEIGHT_LIMIT = 300
SETUP_WEIGHT_LIMIT = 1_000_000
HEADROOM = 0.9
PAIRS = 30
OPEN_TRADES = 12
RUN_S = 30.0
MIN_BUDGET_SHARE = 0.85
IN_FLIGHT_GRACE_S = 0.3  # a call already on the wire when the 429 came back may still arrive
RESUME_WITHIN_S = 6.0


def greedy_config(
    exchange_url: str, coingecko_url: str, pairs: list[str], db_dir: Path, *, ratekit: bool
) -> dict[str, Any]:
    section = None
    if ratekit:
        section = {
            "enabled": True,
            "weights": enforced_weights(HEADROOM, WEIGHT_LIMIT, WINDOW_S),
        }
    return make_bot_config(
        exchange_url,
        coingecko_url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=OPEN_TRADES,
        ratekit=section,
        db_dir=db_dir,
        extra=GREEDY_TRADING,
    )


@dataclass
class Side:
    name: str
    emulator: RunningEmulator[ExchangeEmulator]
    bot: BotProcess


def start_side(side: Side) -> None:
    side.bot.start()
    side.bot.open_trades(OPEN_TRADES)


@pytest.fixture(scope="module")
def greedy_bots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Side]]:
    """A stock and a ratekit bot, each with its trades open, against its own emulator."""
    coingecko = start_coingecko_emulator()
    sides: dict[str, Side] = {}
    try:
        for name in ("stock", "ratekit"):
            emulator = start_exchange_emulator(weight_limit=SETUP_WEIGHT_LIMIT, window_s=WINDOW_S)
            workdir = tmp_path_factory.mktemp(name)
            pairs = emulator.emulator.universe.usdt_pairs()[:PAIRS]
            config = greedy_config(
                emulator.url, coingecko.url, pairs, workdir, ratekit=name == "ratekit"
            )
            sides[name] = Side(
                name, emulator, BotProcess(config, workdir, with_ratekit=name == "ratekit")
            )
        with ThreadPoolExecutor(len(sides)) as pool:
            for started in [pool.submit(start_side, side) for side in sides.values()]:
                started.result()
        yield sides
    finally:
        for side in sides.values():
            side.bot.stop()
            side.emulator.stop()
        coingecko.stop()


def accepted_weight(log: list[dict[str, Any]], start: float, end: float) -> float:
    return sum(e["weight"] for e in log if start <= e["t"] < end and e["status"] == 200)


def test_stock_is_rate_limited_while_enforce_stays_under_and_uses_the_budget(greedy_bots):
    for side in greedy_bots.values():
        side.emulator.update(weight_limit=WEIGHT_LIMIT)
        side.emulator.reset()
    started = time.time()
    time.sleep(RUN_S)
    ended = time.time()
    stock = greedy_bots["stock"].emulator.stats(since=started)
    ratekit = greedy_bots["ratekit"].emulator.stats(since=started)

    # Demand exceeds the limit: stock Freqtrade runs into it.
    assert stock["totals"]["status_429"] + stock["totals"]["status_418"] > 0, stock["totals"]

    # The same demand with ratekit: never a 429 or 418, and the budget is used.
    assert ratekit["totals"]["status_429"] == 0, ratekit["totals"]
    assert ratekit["totals"]["status_418"] == 0, ratekit["totals"]
    budget = HEADROOM * WEIGHT_LIMIT * (ended - started) / WINDOW_S
    used = accepted_weight(ratekit["log"], started, ended)
    print(
        f"stock: {stock['totals']} | ratekit: {ratekit['totals']}, "
        f"{used:.0f} accepted of a {budget:.0f} budget ({used / budget:.0%})"
    )
    assert used >= MIN_BUDGET_SHARE * budget, f"used {used} of a budget of {budget:.0f}"

    status, weights, _ = greedy_bots["ratekit"].bot.get("/api/v1/ratekit/weights")
    assert status == 200
    assert weights["mode"] == "enforce"
    pool = next(p for p in weights["pools"] if p["name"] == "REQUEST_WEIGHT")
    assert pool["effective_limit"] == pytest.approx(HEADROOM * WEIGHT_LIMIT)
    assert pool["status_429"] == 0 and pool["status_418"] == 0
    assert weights["totals"]["wait_s"] > 0  # calls were held back: demand was above headroom


def test_an_injected_429_pauses_every_call_for_its_retry_after(greedy_bots):
    """A weight limit of 0 makes the emulator answer the next call 429 with Retry-After equal
    to the whole window (the call alone is over the limit); the limit is restored at once, so
    only the pause keeps the bot quiet.

    Freqtrade's candle refresh sends its requests concurrently: those already on the wire when
    the 429 comes back arrive inside the Retry-After, and three such strikes make the emulator
    ban (418), which no client can prevent. The ban threshold is raised for this test: every
    call inside the pause that the bot could have held back is asserted on directly."""
    side = greedy_bots["ratekit"]
    emulator = side.emulator
    injected_at = time.time()
    emulator.update(weight_limit=0, ban_strikes=100)
    try:
        first_429: dict[str, Any] = wait_for(
            lambda: next(
                (e for e in emulator.stats(since=injected_at)["log"] if e["status"] == 429), None
            ),
            bool,
            15,
            "a call while the limit was 0 (a 429)",
            interval=0.01,
        )
    finally:
        emulator.update(weight_limit=WEIGHT_LIMIT)
    retry_after = WINDOW_S  # what the emulator sends when the call alone exceeds the limit
    pause_ends = first_429["t"] + retry_after
    time.sleep(max(0.0, pause_ends + RESUME_WITHIN_S - time.time()))

    log = emulator.stats(since=first_429["t"])["log"]
    inside_pause = [e for e in log if first_429["done"] + IN_FLIGHT_GRACE_S < e["t"] < pause_ends]
    assert inside_pause == [], f"calls inside the Retry-After pause: {inside_pause[:5]}"
    assert all(e["status"] != 418 for e in log), "the bot earned a ban"
    resumed = [e for e in log if e["t"] >= pause_ends and e["status"] == 200]
    assert resumed, "traffic did not resume after the pause"
    assert resumed[0]["t"] - pause_ends < RESUME_WITHIN_S
    print(
        f"429 at +{first_429['t'] - injected_at:.2f}s; last call before the pause ends "
        f"{max((e['t'] for e in log if e['t'] < pause_ends), default=0) - first_429['t']:.2f}s "
        f"after it; resumed {resumed[0]['t'] - pause_ends:+.2f}s after Retry-After"
    )

    status, weights, _ = side.bot.get("/api/v1/ratekit/weights")
    assert status == 200
    pool = next(p for p in weights["pools"] if p["name"] == "REQUEST_WEIGHT")
    assert pool["status_429"] >= 1
    assert math.isclose(pool["limit"], WEIGHT_LIMIT)
