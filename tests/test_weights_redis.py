"""Redis backend against a real redis-server: shared atomic windows, shared pauses,
degraded local share when Redis dies, rejoin when it is back."""

from __future__ import annotations

import logging
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
from tests.helpers import FakeClock, find_free_port
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
    server: RedisServer,
    clock: FakeClock | None = None,
    bots: int = 2,
    client: redis.Redis | None = None,
) -> RedisBackend:
    return _backend_at(server.url, clock, bots, client)


def _backend_at(
    url: str,
    clock: FakeClock | None = None,
    bots: int = 2,
    client: redis.Redis | None = None,
) -> RedisBackend:
    return RedisBackend(
        url,
        exchange="binance",
        ip_scope_id=scope_digest("ip", "host-1"),
        account_scope_id=scope_digest("account", "binance", API_KEY),
        expected_bots=bots,
        socket_timeout_s=0.2,
        clock=clock or FakeClock(),
        client=client,
    )


def redis_client(server: RedisServer) -> redis.Redis:
    """A client configured as the backend configures its own, for a test to pass as
    `client=` and then break (evalsha, ping) through the public handle it holds."""
    return redis.Redis.from_url(
        server.url,
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        retry_on_timeout=False,
        health_check_interval=0,
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


# ---------------------------------------------------------------- secrets, faults, degraded view

SECRET = "pl4nted-query-secret"


def _nothing_listening_url(form: str) -> str:
    port = find_free_port()  # bound and released: nothing listens there
    if form == "query":
        return f"redis://127.0.0.1:{port}/0?password={SECRET}&socket_keepalive=true"
    if form == "userinfo":
        return f"redis://ratekit:{SECRET}@127.0.0.1:{port}/0"
    return f"redis://:{SECRET}@127.0.0.1:{port}/0?password={SECRET}"


def _one_pool_preset(limit: float = 10, interval: float = 60) -> Preset:
    return Preset(
        "t",
        "binance",
        "spot",
        (PoolSpec("P", limit, interval),),
        (EndpointRule("*", "*", "*", (PoolCharge("P"),)),),
        "binance",
    )


@pytest.mark.parametrize("form", ["query", "userinfo", "both"])
def test_a_redis_password_never_shows_when_redis_is_unreachable(form, caplog):
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    backend = _backend_at(_nothing_listening_url(form), clock)
    ledger = Ledger(
        _one_pool_preset(), mode="enforce", backend=backend, clock=clock, sleep=lambda s: None
    )
    unit = Charge("e", 1, (("P", 1.0),), Priority.MARKET_DATA)
    for _ in range(3):
        ledger.acquire(unit)
        ledger.on_response(unit, 429, {"Retry-After": "1"})
        clock.advance(120)  # every probe is due: each one fails and is reported
    snapshot = ledger.snapshot()
    status = backend.status()
    assert status.degraded is True and "unreachable" in status.detail
    assert "***" in status.detail
    for surface in (repr(snapshot), status.detail, status.scope, caplog.text):
        assert SECRET not in surface
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_a_bad_redis_url_is_refused_with_the_secret_masked():
    url = f"redis://:{SECRET}@127.0.0.1:notaport/0?password={SECRET}"
    with pytest.raises(ValueError) as refused:
        _backend_at(url)
    assert SECRET not in str(refused.value) and "Redis URL" in str(refused.value)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -1.0])
def test_the_backend_refuses_a_socket_timeout_that_is_not_finite_and_positive(timeout):
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisBackend(
            _nothing_listening_url("query"),
            exchange="binance",
            ip_scope_id="i",
            account_scope_id="a",
            socket_timeout_s=timeout,
        )


@pytest.mark.parametrize("option", ["socket_timeout=nan", "socket_connect_timeout=inf"])
def test_the_backend_refuses_a_non_finite_timeout_in_the_url(option):
    url = f"redis://127.0.0.1:{find_free_port()}/0?{option}&password={SECRET}"
    with pytest.raises(ValueError, match=option.split("=")[0]) as refused:
        _backend_at(url)
    assert SECRET not in str(refused.value)


def test_the_degraded_snapshot_shows_the_local_share_it_enforces():
    """Issue 11: while degraded the snapshot showed `remaining 4677` of the full 4800 while the
    local share enforced was 1600."""
    clock = FakeClock()
    backend = _backend_at(_nothing_listening_url("query"), clock, bots=3)
    ledger = Ledger(
        _one_pool_preset(limit=4800),
        mode="enforce",
        backend=backend,
        clock=clock,
        sleep=lambda s: None,
    )
    ledger.acquire(Charge("e", 123, (("P", 123.0),), Priority.MARKET_DATA))
    (pool,) = ledger.snapshot()["pools"]
    assert ledger.snapshot()["backend"]["degraded"] is True
    assert pool["limit"] == 4800  # the published limit stays what it is
    assert pool["effective_limit"] == pytest.approx(1600)
    assert pool["used"] == pytest.approx(123)
    assert pool["remaining"] == pytest.approx(1600 - 123)


def test_the_snapshot_shows_the_shared_budget_again_after_rejoining(redis_server):
    clock = FakeClock()
    backend = make_backend(redis_server, clock, bots=4)
    ledger = Ledger(_one_pool_preset(limit=400), mode="enforce", backend=backend, clock=clock)
    redis_server.stop()
    ledger.acquire(Charge("e", 1, (("P", 1.0),), Priority.MARKET_DATA))
    assert ledger.snapshot()["pools"][0]["effective_limit"] == pytest.approx(100)
    redis_server.start()
    clock.advance(60)
    (pool,) = ledger.snapshot()["pools"]
    assert ledger.snapshot()["backend"]["healthy"] is True
    assert pool["effective_limit"] == pytest.approx(400)
    assert pool["remaining"] == pytest.approx(400 - pool["used"])


def _poison(server: RedisServer, pool: str = "A") -> str:
    """Make the pool's sorted-set key a string: every script touching it fails with WRONGTYPE,
    while PING keeps answering (a script error, not an unreachable Redis)."""
    key = f"ratekit:binance:{scope_digest('ip', 'host-1')}:{pool}:log"
    client = redis.Redis.from_url(server.url)
    try:
        client.set(key, "not a sorted set")
    finally:
        client.close()
    return key


def _records(caplog, level: int) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name.startswith("freqtrade_ratekit") and r.levelno == level
    ]


def test_a_script_error_is_named_uses_the_local_share_and_does_not_flap(redis_server, caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    backend = make_backend(redis_server, clock, bots=2)
    key = _poison(redis_server)
    assert backend.try_admit([(A, 1.0)]) == 0  # answered by the local share (5 of 10)
    status = backend.status()
    assert status.degraded is True and status.healthy is False
    assert "unreachable" not in status.detail
    assert "script" in status.detail and "WRONGTYPE" in status.detail
    (error,) = _records(caplog, logging.ERROR)
    assert "WRONGTYPE" in error.getMessage() and "local share" in error.getMessage()

    history = []
    for _ in range(40):  # 40 minutes with the key still broken, one call every minute
        clock.advance(60)
        backend.try_admit([(A, 1.0)])
        history.append(backend.status().degraded)
    assert all(history), "reported healthy while every script call still fails"
    assert len(_records(caplog, logging.ERROR)) == 1  # the same error is not logged again
    assert not _records(caplog, logging.WARNING)
    assert not [r for r in _records(caplog, logging.INFO) if "again" in r.getMessage()]

    client = redis.Redis.from_url(redis_server.url)
    client.delete(key)
    client.close()
    clock.advance(3600)
    assert backend.try_admit([(A, 1.0)]) == 0
    assert backend.status().healthy is True
    assert backend.used(A) == pytest.approx(1.0)  # the shared window is in use again
    (back,) = [r for r in _records(caplog, logging.INFO) if "again" in r.getMessage()]
    assert "script" in back.getMessage()


CLIENT_ERRORS = [
    ValueError("could not encode argument"),
    TypeError("unsupported operand"),
    redis.exceptions.DataError("Invalid input of type: 'NoneType'"),
    redis.exceptions.ResponseError("ERR user_script:12: Script attempted to access nil"),
    redis.exceptions.NoPermissionError("NOPERM this user has no permissions"),
    redis.exceptions.ReadOnlyError("READONLY You can't write against a read only replica."),
    RuntimeError("something else entirely"),
]
CALLS = {
    "try_admit": lambda b: b.try_admit([(A, 1.0)]),
    "record": lambda b: b.record([(A, 1.0)]),
    "used": lambda b: b.used(A),
    "raise_used_to": lambda b: b.raise_used_to(A, 3.0),
    "pause": lambda b: b.pause(A, 5.0),
    "pause_remaining": lambda b: b.pause_remaining(A),
}


@pytest.mark.parametrize("error", CLIENT_ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("call", list(CALLS))
def test_an_error_that_ping_cannot_see_is_caught_named_and_not_unreachable(
    redis_server, mocker, caplog, error, call
):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    client = redis_client(redis_server)
    backend = make_backend(redis_server, clock, client=client)
    mocker.patch.object(client, "evalsha", side_effect=error)
    for _ in range(5):
        CALLS[call](backend)  # never raises
        clock.advance(5)
    status = backend.status()
    assert status.degraded is True
    assert type(error).__name__ in status.detail and "unreachable" not in status.detail
    (logged,) = _records(caplog, logging.ERROR)
    assert type(error).__name__ in logged.getMessage()
    assert logged.exc_info is None  # a named cause, not a traceback per call


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Error 111 connecting"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        OSError("Network is unreachable"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_connection_errors_degrade_as_unreachable_and_rejoin_on_ping(redis_server, mocker, error):
    clock = FakeClock()
    client = redis_client(redis_server)
    backend = make_backend(redis_server, clock, client=client)
    failing = mocker.patch.object(client, "evalsha", side_effect=error)
    assert backend.try_admit([(A, 1.0)]) == 0
    assert "unreachable" in backend.status().detail
    failing.side_effect = None
    mocker.stopall()
    clock.advance(60)
    assert backend.try_admit([(A, 1.0)]) == 0
    assert backend.status().healthy is True and "rejoined" in backend.status().detail


def test_a_failing_backend_never_reaches_a_ccxt_call(redis_server, mocker, caplog):
    """Through a real ccxt client: a script error, then a client-side ValueError on every
    Redis call; each call of the bot still goes out and comes back, without a traceback."""
    import ccxt

    from freqtrade_ratekit.weights import instrument
    from tests.test_weights_ccxt import CannedExchange, point_at

    caplog.set_level(logging.INFO)
    canned = CannedExchange()
    canned.thread.start()
    clock = FakeClock()
    try:
        client = redis_client(redis_server)
        backend = make_backend(redis_server, clock, client=client)
        ledger = Ledger(preset_for("binance"), mode="enforce", backend=backend)
        api = point_at(ccxt.binance(), canned)
        instrument(api, ledger)
        for pool in ("REQUEST_WEIGHT", "RAW_REQUESTS"):
            _poison(redis_server, pool)
        for _ in range(3):
            clock.advance(3600)  # every retry of Redis is due
            assert api.public_get_ticker_bookticker()[0]["symbol"] == "BTCUSDT"
        mocker.patch.object(client, "evalsha", side_effect=ValueError("encoding"))
        mocker.patch.object(client, "ping", side_effect=ValueError("encoding"))
        for _ in range(3):
            clock.advance(3600)
            assert api.public_get_ticker_bookticker()[0]["symbol"] == "BTCUSDT"
        assert len(canned.requests) == 6
        ledger.snapshot()  # the REST document too
        assert ledger.snapshot()["backend"]["degraded"] is True
    finally:
        canned.server.shutdown()
        canned.server.server_close()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
