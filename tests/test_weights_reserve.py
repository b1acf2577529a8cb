"""The priority reserve: a non-bot client (download-data, ...) is held to `1 - reserve` of each
pool, a bot may use all of it; on the memory backend and on a real Redis (two backends on one
server: two processes of one scope)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator

import pytest

from freqtrade_ratekit.weights import (
    Charge,
    Ledger,
    MemoryBackend,
    PoolSpec,
    Preset,
    Priority,
    RedisBackend,
    scope_digest,
)
from freqtrade_ratekit.weights.backends import Backend
from freqtrade_ratekit.weights.clients import ClientIdentity
from freqtrade_ratekit.weights.ledger import BACKGROUND
from freqtrade_ratekit.weights.presets import EndpointRule, PoolCharge
from tests.helpers import FakeClock
from tests.redis_fixtures import RedisServer

LIMIT = 10
WINDOW_S = 60.0  # nothing slides out during a test
RESERVE = 0.4  # a command may fill the pool to 6 of 10, a bot to 10
PRESET = Preset(
    "t",
    "binance",
    "spot",
    (PoolSpec("W", LIMIT, WINDOW_S),),
    (EndpointRule("*", "*", "*", (PoolCharge("W"),)),),
    "binance",
)
UNIT = Charge("public GET klines", 1.0, (("W", 1.0),), Priority.MARKET_DATA)
ORDER = Charge("private POST order", 1.0, (("W", 1.0),), Priority.ORDER)


class Blocked(Exception):
    """Raised by a ledger's `sleep`: the call would have had to wait."""


def refuse_to_wait(seconds: float) -> None:
    raise Blocked(seconds)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    with RedisServer() as server:
        yield server


BackendPair = Callable[[], tuple[Backend, Backend]]


def memory_pair() -> tuple[Backend, Backend]:
    shared = MemoryBackend(FakeClock())  # one process: both ledgers on one backend
    return shared, shared


@pytest.fixture(params=["memory", "redis"])
def backends(request: pytest.FixtureRequest) -> tuple[Backend, Backend]:
    """(the bot's backend, the command's backend), sharing one budget."""
    if request.param == "memory":
        return memory_pair()
    server: RedisServer = request.getfixturevalue("redis_server")
    scope = f"reserve-{request.node.name}"  # a fresh budget per test

    def backend() -> RedisBackend:
        return RedisBackend(
            server.url,
            exchange="binance",
            ip_scope_id=scope_digest("ip", scope),
            account_scope_id=scope_digest("account", scope),
        )

    return backend(), backend()


def ledgers(backends: tuple[Backend, Backend], reserve: float = RESERVE) -> tuple[Ledger, Ledger]:
    bot_backend, command_backend = backends
    bot = Ledger(PRESET, mode="enforce", backend=bot_backend, reserve=reserve, sleep=refuse_to_wait)
    command = Ledger(
        PRESET,
        mode="enforce",
        backend=command_backend,
        reserve=reserve,
        background=True,
        client=ClientIdentity.this_process("download-data", "util_exchange"),
        sleep=refuse_to_wait,
    )
    return bot, command


def used(ledger: Ledger) -> float:
    (pool,) = ledger.snapshot()["pools"]
    return pool["used"]


def admit(ledger: Ledger, charge: Charge, times: int) -> None:
    for _ in range(times):
        assert ledger.acquire(charge) == 0.0  # sent at once, no wait


def test_a_command_cannot_use_the_reserved_share(backends):
    _, command = ledgers(backends)
    admit(command, UNIT, 6)  # (1 - 0.4) x 10
    with pytest.raises(Blocked):
        command.acquire(UNIT)
    assert used(command) == pytest.approx(6)  # the refused call charged nothing
    assert command.waiting() == 0  # and left no ghost in the queue


def test_a_bot_can_use_the_whole_pool_a_command_left(backends):
    bot, command = ledgers(backends)
    admit(command, UNIT, 6)
    admit(bot, UNIT, 2)  # market data
    admit(bot, ORDER, 2)  # and orders: the reserve is the bots', all of it
    assert used(bot) == pytest.approx(LIMIT)
    with pytest.raises(Blocked):  # the pool itself still binds the bot
        bot.acquire(ORDER)
    with pytest.raises(Blocked):
        command.acquire(UNIT)


def test_a_command_gets_nothing_while_the_bots_use_more_than_its_share(backends):
    bot, command = ledgers(backends)
    admit(bot, UNIT, 7)  # the bots already hold more than 1 - reserve
    with pytest.raises(Blocked):
        command.acquire(UNIT)
    admit(bot, UNIT, 3)  # and still get the rest
    assert used(bot) == pytest.approx(LIMIT)


def test_without_a_reserve_a_command_may_fill_the_pool(backends):
    bot, command = ledgers(backends, reserve=0.0)
    admit(command, UNIT, LIMIT)
    with pytest.raises(Blocked):
        bot.acquire(ORDER)


def test_a_429_answered_to_a_command_pauses_the_bots_of_the_scope_too(backends):
    bot, command = ledgers(backends)
    admit(command, UNIT, 1)
    command.on_response(UNIT, 429, {"Retry-After": "30"})
    for ledger in (bot, command):
        with pytest.raises(Blocked) as info:
            ledger.acquire(ORDER if ledger is bot else UNIT)
        assert 29 <= info.value.args[0] <= 30.5  # until Retry-After, for both


def test_a_bot_call_at_background_priority_is_held_to_the_reserve_too():
    shared, _ = memory_pair()
    bot = Ledger(PRESET, mode="enforce", backend=shared, reserve=RESERVE, sleep=refuse_to_wait)
    for _ in range(6):
        assert bot.acquire(UNIT, priority=BACKGROUND) == 0.0
    with pytest.raises(Blocked):
        bot.acquire(UNIT, priority=BACKGROUND)
    admit(bot, UNIT, 4)


def test_a_command_asks_at_background_priority_whatever_the_endpoint():
    shared, _ = memory_pair()
    _, command = ledgers((shared, shared))
    admit(command, ORDER, 6)  # an order of a command (none today) is no bot order
    with pytest.raises(Blocked):
        command.acquire(ORDER, priority=Priority.ORDER)


def test_an_async_command_call_waits_for_the_reserve_then_gives_up_cleanly():
    shared, _ = memory_pair()
    _, command = ledgers((shared, shared))
    admit(command, UNIT, 6)

    async def seventh() -> None:
        await asyncio.wait_for(command.acquire_async(UNIT), timeout=0.2)

    with pytest.raises(TimeoutError):
        asyncio.run(seventh())
    assert command.waiting() == 0
    assert used(command) == pytest.approx(6)


def test_observe_counts_a_command_past_the_reserve_without_holding_it():
    shared, _ = memory_pair()
    command = Ledger(PRESET, mode="observe", backend=shared, reserve=RESERVE, background=True)
    admit(command, UNIT, LIMIT)
    assert used(command) == pytest.approx(LIMIT)


def test_the_wait_of_a_command_is_its_wall_time_blocked():
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    client = ClientIdentity.this_process("download-data", "util_exchange")
    command = Ledger(
        PRESET,
        mode="enforce",
        backend=MemoryBackend(clock),
        reserve=RESERVE,
        background=True,
        client=client,
        clock=clock,
        wall=lambda: 1_800_000_000.0,
        sleep=sleep,
    )
    admit(command, UNIT, 6)
    clock.advance(10)
    waited = command.acquire(UNIT)  # the first entry slides out 60 s after it was admitted
    assert waited == pytest.approx(WINDOW_S - 10)
    assert sum(slept) == pytest.approx(WINDOW_S - 10)
    snapshot = command.snapshot()
    assert snapshot["waiting"] == {"calls": 0, "blocked_s": pytest.approx(WINDOW_S - 10)}
    assert snapshot["background"] is True and snapshot["reserve"] == RESERVE
    record = snapshot["client"]
    assert record is not None
    assert (record["name"], record["run_mode"], record["state"]) == (
        "download-data",
        "util_exchange",
        "running",
    )
    assert (record["calls"], record["weight"]) == (7, 7.0)
    assert record["blocked_s"] == pytest.approx(WINDOW_S - 10)
    assert snapshot["clients"] == [record]  # no registry: only the process's own


@pytest.mark.parametrize("reserve", [-0.1, 1.0, 1.5, float("nan")])
def test_a_reserve_outside_zero_to_one_is_refused(reserve):
    with pytest.raises(ValueError, match="reserve"):
        Ledger(PRESET, reserve=reserve)
