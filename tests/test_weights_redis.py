"""Redis backend against a real redis-server: shared atomic windows, shared pauses,
degraded local share when Redis dies, rejoin when it is back."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
import redis

from freqtrade_ratekit.weights import (
    Charge,
    Ledger,
    PoolSpec,
    Preset,
    Priority,
    RedisBackend,
    WindowSpec,
    preset_for,
    scope_digest,
)
from freqtrade_ratekit.weights.presets import EndpointRule, PoolCharge
from tests.helpers import FakeClock
from tests.redis_fixtures import RedisServer

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]
PASSWORD = "s3cret-redis-pass"
API_KEY = "my-raw-api-key-0123456789"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(password=PASSWORD) as server:
        yield server


def make_backend(
    server: RedisServer, clock: FakeClock | None = None, bots: int = 2
) -> RedisBackend:
    return RedisBackend(
        server.url,
        exchange="binance",
        ip_scope_id=scope_digest("ip", "host-1"),
        account_scope_id=scope_digest("account", "binance", API_KEY),
        expected_bots=bots,
        socket_timeout_s=0.2,
        clock=clock or FakeClock(),
    )


A = WindowSpec("A", "ip", 60.0, 10.0)
B = WindowSpec("B", "account", 60.0, 4.0)


def test_two_bots_share_one_atomic_budget(redis_server):
    bot_1, bot_2 = make_backend(redis_server), make_backend(redis_server)
    admitted = [backend.try_admit([(A, 3.0)]) == 0 for backend in (bot_1, bot_2, bot_1, bot_2)]
    assert admitted == [True, True, True, False]
    assert bot_2.used(A) == pytest.approx(9.0)
    assert bot_1.try_admit([(B, 3.0)]) == 0
    # all or nothing: B has no room for 2, so A must not be charged either
    assert bot_1.try_admit([(A, 1.0), (B, 2.0)]) > 0
    assert bot_2.used(A) == pytest.approx(9.0)
    assert bot_2.try_admit([(A, 1.0), (B, 1.0)]) == 0
    assert (bot_1.used(A), bot_1.used(B)) == (pytest.approx(10.0), pytest.approx(4.0))


def test_header_sync_and_pauses_are_shared(redis_server):
    bot_1, bot_2 = make_backend(redis_server), make_backend(redis_server)
    bot_1.raise_used_to(A, 8.0)
    bot_1.raise_used_to(A, 2.0)  # never lowers
    assert bot_2.used(A) == pytest.approx(8.0)
    bot_2.pause(A, 30.0)
    assert 29.0 < bot_1.pause_remaining(A) <= 30.0
    assert bot_1.try_admit([(A, 1.0)]) >= 29.0


def test_keys_hold_no_secret_and_status_masks_the_password(redis_server):
    backend = make_backend(redis_server)
    backend.try_admit([(A, 1.0), (B, 1.0)])
    keys = [key.decode() for key in redis.Redis.from_url(redis_server.url).keys("ratekit:*")]
    assert keys and all(API_KEY not in key for key in keys)
    assert f"ratekit:binance:{scope_digest('account', 'binance', API_KEY)}:B:log" in keys
    ledger = Ledger(preset_for("binance"), mode="enforce", backend=backend)
    text = repr(ledger.snapshot())
    assert PASSWORD not in text and "***" in text


def test_dead_redis_degrades_to_local_share_then_rejoins(redis_server):
    clock = FakeClock()
    backend = make_backend(redis_server, clock, bots=2)
    preset = Preset(
        "t",
        "binance",
        "spot",
        (PoolSpec("P", 10, 60),),
        (EndpointRule("*", "*", "*", (PoolCharge("P"),)),),
        "binance",
    )
    ledger = Ledger(preset, mode="enforce", backend=backend, clock=clock, sleep=lambda s: None)
    unit = Charge("e", 1, (("P", 1.0),), Priority.MARKET_DATA)
    ledger.acquire(unit)
    assert ledger.snapshot()["backend"]["healthy"] is True

    redis_server.stop()
    started = time.monotonic()
    spec = WindowSpec("P", "ip", 60.0, 10.0)
    admitted = sum(backend.try_admit([(spec, 1.0)]) == 0 for _ in range(8))
    assert time.monotonic() - started < 5  # bounded by the socket timeout, no hang
    assert admitted == 4  # local share 10 / expected_bots, less the call admitted via Redis
    status = ledger.snapshot()["backend"]
    assert status["degraded"] is True and status["healthy"] is False
    assert PASSWORD not in status["detail"]

    redis_server.start()
    assert backend.try_admit([(spec, 1.0)]) > 0  # probe not due yet: still on the local share
    clock.now += 60.0  # past the probe backoff
    assert backend.try_admit([(spec, 1.0)]) == 0
    status = ledger.snapshot()["backend"]
    assert status["healthy"] is True and status["degraded"] is False
    assert "rejoined" in status["detail"]
