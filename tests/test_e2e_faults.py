"""Fault injection on a busy real bot: whatever the exchange or Redis does, the bot keeps trading.

One ratekit bot (Redis backend, enforce) runs a strategy that enters whenever a slot is free
and exits on price or after 20 s, so entry orders fill and exits are decided all the time.
Orders are market orders: a limit entry filled during a fault would make stock's own fetch
for the fill notification (a `refresh=False` read outside any try) stop the bot, stock and
ratekit alike. That ratekit never answers there with a remembered error, the bug that stopped
bots after a malformed burst, is tested on a real Exchange in `tests/test_get_rate_paths.py`.
The emulator then answers 500s, malformed bodies (ccxt turns them into `{}`), hangs and 429
bursts, and Redis is killed and restarted. Throughout, a poller reads `/profit` and the ratekit
status. Checked: the bot process never exits and trades again after the faults, `/profit`
always answers, no traceback through ratekit's code is logged, counters never go backwards,
and the background refresh resumes (a clean run that stored rates) soon after each fault.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config
from tests.helpers import wait_for
from tests.redis_fixtures import RedisServer, requires_redis

pytestmark = [pytest.mark.e2e, requires_redis, pytest.mark.timeout(480)]

REFRESH_S = 2.0
FAULT_S = 8.0
# A clean refresh must follow within about one period once a fault ends (the refresher's
# backoff is capped at one period); the slack covers a loaded 2-core CI machine, where a run
# waits for the GIL and the bot's own calls.
RESUME_WITHIN_S = 2 * REFRESH_S + 8.0
PAIRS = 12
MAX_OPEN = 5

FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("500s", {"fail_rate": 0.6, "fail_status": 500}),
    ("malformed bodies", {"malformed_rate": 1.0}),
    ("hang", {"hang": True, "hang_timeout_s": 4.0}),
    ("429 burst", {"fail_rate": 0.5, "fail_status": 429}),
]
CLEAR = {"fail_rate": 0.0, "malformed_rate": 0.0, "hang": False}


def counters(status: dict[str, Any]) -> dict[str, float]:
    """Every figure of the ratekit status document that only ever counts up."""
    found: dict[str, float] = {}
    cache = status.get("rate_cache", {})
    for side, figures in cache.get("sides", {}).items():
        for key in ("hits", "misses", "stale_reads", "negative_hits", "evictions"):
            found[f"cache.{side}.{key}"] = figures[key]
    found["refresher.runs"] = cache.get("refresher", {}).get("runs", 0)
    for row in status.get("weights", {}).get("endpoints", []):
        for key in ("calls", "weight", "wait_s", "status_429", "status_418"):
            found[f"weights.{row['endpoint']}.{key}"] = row[key]
    return found


class Poller:
    """Reads /profit and the ratekit status every half second in a thread of its own."""

    def __init__(self, bot: BotProcess) -> None:
        self.bot = bot
        self.profit_statuses: list[int] = []
        self.documents: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-poller", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _, _ = self.bot.get("/api/v1/profit", timeout=15)
                self.profit_statuses.append(status)
                code, document, _ = self.bot.get("/api/v1/ratekit/status", timeout=15)
                if code == 200 and isinstance(document, dict):
                    self.documents.append(document)
            except Exception as exc:  # a hung or dead API is what this test is looking for
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(0.5)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)
        assert not self._thread.is_alive(), "the poller hung on the bot's API"


@pytest.fixture
def busy_bot(tmp_path: Path) -> Iterator[tuple[BotProcess, Any, RedisServer]]:
    with (
        RedisServer() as redis_server,
        start_exchange_emulator() as exchange,
        start_coingecko_emulator() as coingecko,
    ):
        pairs = exchange.emulator.universe.usdt_pairs()[:PAIRS]
        ratekit = {
            "enabled": True,
            "rate_cache": {
                "ttl": 3,
                "refresh_interval": REFRESH_S,
                "prewarm_whitelist": True,
                "negative_ttl": 300,
            },
            "fiat": {"refresh_interval": 5},
            "weights": {
                "mode": "enforce",
                "backend": redis_server.url,
                "scope_id": "faults",
                "redis_timeout": 0.25,
            },
        }
        config = make_bot_config(
            exchange.url,
            coingecko.url,
            find_free_port(),
            pairs=pairs,
            max_open_trades=MAX_OPEN,
            ratekit=ratekit,
            db_dir=tmp_path,
            extra={
                "timeframe": "1m",
                "internals": {"process_throttle_secs": 1},
                # market orders: every order and its notifications run inside Freqtrade's own
                # try (create_trade, handle_trade). A limit entry filled during a fault would
                # send its fill notification's refresh=False read outside any try, where stock's
                # own fetch can fail and stop the bot; ratekit answers there exactly as stock.
            },
        )
        bot = BotProcess(
            config, tmp_path / "bot", with_ratekit=True, strategy="RatekitBusyStrategy"
        )
        with bot:
            yield bot, exchange, redis_server


def closed_trades(bot: BotProcess) -> int:
    status, body, _ = bot.get("/api/v1/profit", timeout=15)
    return int(body["closed_trade_count"]) if status == 200 and body else 0


def last_refresh(bot: BotProcess) -> dict[str, Any]:
    _, body, _ = bot.get("/api/v1/ratekit/status", timeout=15)
    return (body or {}).get("rate_cache", {}).get("last_refresh") or {}


def clean_refresh_after(bot: BotProcess, moment: float) -> Callable[[dict[str, Any]], bool]:
    def done(run: dict[str, Any]) -> bool:
        return run.get("at", 0) > moment and run.get("error") is None and run.get("pairs", 0) > 0

    return done


def ratekit_tracebacks(log: str) -> list[str]:
    """Tracebacks in the bot's log that pass through ratekit's own code."""
    blocks = re.split(r"(?=Traceback \(most recent call last\))", log)
    return [b[:2000] for b in blocks[1:] if "freqtrade_ratekit" in b.split("\n\n")[0]]


def test_a_busy_bot_survives_every_fault_and_keeps_trading(busy_bot):
    bot, exchange, redis_server = busy_bot
    wait_for(lambda: closed_trades(bot), lambda n: n >= 1, 180, "a first trade closed")

    with Poller(bot) as poller:
        for name, fault in FAULTS:
            exchange.update(**fault)
            time.sleep(FAULT_S)
            exchange.update(**CLEAR)
            ended = time.time()
            assert bot.process is not None and bot.process.poll() is None, f"died in {name}"
            wait_for(
                lambda: last_refresh(bot),
                clean_refresh_after(bot, ended),
                RESUME_WITHIN_S,
                f"a clean refresh after the {name} fault",
            )

        redis_server.stop()
        time.sleep(FAULT_S)
        degraded = bot.get("/api/v1/ratekit/status", timeout=15)[1]["weights"]["backend"]
        redis_server.start()
        ended = time.time()
        wait_for(
            lambda: last_refresh(bot),
            clean_refresh_after(bot, ended),
            RESUME_WITHIN_S,
            "a clean refresh after the Redis outage",
        )

        closed_after_faults = closed_trades(bot)
        wait_for(
            lambda: closed_trades(bot),
            lambda n: n >= closed_after_faults + 2,
            180,
            "two more trades closed after the faults",
        )

    assert bot.process is not None and bot.process.poll() is None, bot.log_tail()
    assert degraded["healthy"] is False  # the outage was seen, and survived
    assert poller.errors == [], poller.errors[:5]
    assert poller.profit_statuses and set(poller.profit_statuses) == {200}
    assert len(poller.documents) > 10
    for before, after in zip(poller.documents, poller.documents[1:], strict=False):
        earlier, later = counters(before), counters(after)
        backwards = {k: (v, later[k]) for k, v in earlier.items() if k in later and later[k] < v}
        assert not backwards, backwards
    log = bot.log_text()
    assert ratekit_tracebacks(log) == []
    assert "failed recently" not in log
