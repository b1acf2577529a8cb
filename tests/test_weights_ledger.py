"""Ledger: window admission, priorities, observe mode, header sync, 429/418 pauses."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freqtrade_ratekit.weights import Charge, Ledger, PoolSpec, Preset, Priority, preset_for
from freqtrade_ratekit.weights.presets import EndpointRule, PoolCharge
from tests.helpers import wait_for

POOLS = (PoolSpec("A", 10, 5, "ip"), PoolSpec("B", 7, 3, "account"))
PRESET = Preset(
    name="test",
    exchange_id="test",
    trading_mode="spot",
    pools=POOLS,
    rules=(EndpointRule("*", "*", "*", (PoolCharge("A"),)),),
    header_format="binance",
)


class FakeTime:
    """A clock whose `sleep` advances it: lets blocking code run instantly and exactly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + 1_700_000_000.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def charge(
    a: float, b: float = 0.0, priority: Priority = Priority.MARKET_DATA, name: str = "x"
) -> Charge:
    return Charge(name, a, (("A", a), ("B", b)), priority, (("weight", 5.0, "A"),))


steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(0, 4, allow_nan=False)),
        st.tuples(
            st.just("call"),
            st.tuples(st.floats(0, 9, allow_nan=False), st.floats(0, 6, allow_nan=False)),
        ),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps, headroom=st.sampled_from([1.0, 0.8, 0.5]))
def test_enforce_never_admits_more_than_headroom_times_limit(steps, headroom):
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", headroom=headroom, clock=fake.clock, sleep=fake.sleep)
    admitted: list[tuple[float, float, float]] = []
    for kind, value in steps:
        if kind == "advance":
            fake.now += value
            continue
        a, b = value
        ledger.acquire(charge(a, b))
        admitted.append((fake.now, a, b))
        for index, spec in enumerate(POOLS):
            capacity = spec.limit * headroom
            in_window = [
                entry[1 + index]
                for entry in admitted
                if entry[0] + spec.interval_s > fake.now and entry[1 + index] > 0
            ]
            oversized_alone = len(in_window) == 1 and in_window[0] > capacity
            assert sum(in_window) <= capacity + 1e-6 or oversized_alone


@settings(max_examples=50, deadline=None)
@given(weights=st.lists(st.floats(0, 20, allow_nan=False), max_size=40))
def test_observe_records_everything_and_never_waits(weights):
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="observe", clock=fake.clock, sleep=fake.sleep)
    for weight in weights:
        assert ledger.acquire(charge(weight)) == 0.0
    assert fake.slept == []
    pools = {row["name"]: row for row in ledger.snapshot()["pools"]}
    assert pools["A"]["used"] == pytest.approx(sum(w for w in weights if w > 0))


def test_off_mode_records_nothing():
    ledger = Ledger(PRESET, mode="off")
    ledger.acquire(charge(50))
    ledger.on_response(charge(50), 429, {"Retry-After": "5"})
    snapshot = ledger.snapshot()
    assert snapshot["totals"]["calls"] == 0 and snapshot["pools"][0]["paused_until"] is None


def test_enforce_waits_exactly_until_the_oldest_weight_expires():
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock, sleep=fake.sleep)
    ledger.acquire(charge(6))
    fake.now += 2
    ledger.acquire(charge(4))
    waited = ledger.acquire(charge(3))  # needs the first 6 to leave A's 5 s window
    assert waited == pytest.approx(3.0, abs=2e-3)
    stats = ledger.snapshot()["endpoints"][0]
    assert stats["calls"] == 3 and stats["wait_s"] == pytest.approx(waited)


def _start_waiter(ledger: Ledger, item: Charge, granted: list[str]) -> threading.Thread:
    before = ledger.waiting()

    def run() -> None:
        ledger.acquire(item)
        granted.append(item.endpoint)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(ledger.waiting, lambda n: n > before, 5, "the new waiter queued", interval=0.001)
    assert ledger.waiting() == before + 1
    return thread


def _release_one(fake: FakeTime, ledger: Ledger, granted: list[str], expected: int) -> None:
    fake.now += 5.0
    ledger.wake()
    wait_for(lambda: len(granted), lambda n: n >= expected, 5, "a waiter granted", interval=0.001)


def test_orders_go_before_market_data_and_fifo_within_a_priority():
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock)
    ledger.acquire(charge(10))  # A is full for 5 s
    granted: list[str] = []
    threads = [
        _start_waiter(ledger, charge(10, name="market-1"), granted),
        _start_waiter(ledger, charge(10, name="market-2"), granted),
        _start_waiter(ledger, charge(10, priority=Priority.ORDER, name="order"), granted),
    ]
    for expected in (1, 2, 3):
        _release_one(fake, ledger, granted, expected)
        assert len(granted) == expected
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert granted == ["order", "market-1", "market-2"]


def test_a_waiter_only_waits_for_earlier_waiters_sharing_its_pools():
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock)
    ledger.acquire(charge(0, 7))  # B full
    granted: list[str] = []
    blocked = _start_waiter(ledger, charge(0, 7, priority=Priority.ORDER, name="order"), granted)
    assert ledger.acquire(charge(3, name="market")) == 0.0  # A only: not behind the order
    fake.now += 3
    ledger.wake()
    blocked.join(timeout=5)
    assert not blocked.is_alive()
    assert granted == ["order"]


def test_async_acquire_waits_without_blocking_the_loop():
    preset = Preset("tiny", "t", "spot", (PoolSpec("A", 1, 0.2),), PRESET.rules, "binance")
    ledger = Ledger(preset, mode="enforce")
    item = Charge("x", 1, (("A", 1.0),), Priority.MARKET_DATA)

    async def scenario() -> tuple[float, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await ledger.acquire_async(item)
        waited = await ledger.acquire_async(item)
        done.set()
        await task
        return waited, ticks

    waited, ticks = asyncio.run(scenario())
    assert waited > 0 and ticks > 1


def test_async_waiter_is_woken_by_a_sync_grant():
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock)
    ledger.acquire(charge(10))

    async def scenario() -> float:
        pending = asyncio.ensure_future(ledger.acquire_async(charge(10)))
        while ledger.waiting() == 0:
            await asyncio.sleep(0.001)
        fake.now += 5
        threading.Thread(target=ledger.wake).start()
        return await asyncio.wait_for(pending, timeout=5)

    assert asyncio.run(scenario()) == pytest.approx(5.0)


def test_headers_raise_the_local_count_but_never_lower_it():
    fake = FakeTime()
    ledger = Ledger(preset_for("binance"), mode="enforce", clock=fake.clock, wall=fake.wall)
    book = ledger.charge_for("public", "GET", "ticker/bookTicker", {}, 0.8)
    ledger.acquire(book)
    ledger.on_response(book, 200, {"X-MBX-USED-WEIGHT-1M": "5000"})
    pools = {row["name"]: row for row in ledger.snapshot()["pools"]}
    assert pools["REQUEST_WEIGHT"]["used"] == 5000
    assert pools["REQUEST_WEIGHT"]["server_used"] == 5000
    assert pools["REQUEST_WEIGHT"]["server_used_at"] == fake.wall()
    ledger.on_response(book, 200, {"X-MBX-USED-WEIGHT-1M": "3"})
    pools = {row["name"]: row for row in ledger.snapshot()["pools"]}
    assert pools["REQUEST_WEIGHT"]["used"] == 5000 and pools["REQUEST_WEIGHT"]["server_used"] == 3


def test_gate_exhausted_endpoint_pauses_until_reset():
    fake = FakeTime()
    ledger = Ledger(
        preset_for("gate"), mode="enforce", clock=fake.clock, wall=fake.wall, sleep=fake.sleep
    )
    tickers = ledger.charge_for("public/spot", "GET", "tickers", {}, 1)
    ledger.acquire(tickers)
    reset = fake.wall() + 4
    ledger.on_response(
        tickers,
        200,
        {
            "X-Gate-RateLimit-Requests-Remain": "0",
            "X-Gate-RateLimit-Limit": "200",
            "X-Gate-RateLimit-Reset-Timestamp": str(reset),
        },
    )
    (pool,) = ledger.snapshot()["pools"]
    assert pool["name"] == "GATE_PUBLIC:tickers" and pool["used"] == 200
    assert ledger.acquire(tickers) >= 4 - 1e-6


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limited_pauses_for_retry_after_seconds_and_nothing_is_sent_into_it(status):
    fake = FakeTime()
    ledger = Ledger(
        preset_for("binance"), mode="enforce", clock=fake.clock, wall=fake.wall, sleep=fake.sleep
    )
    book = ledger.charge_for("public", "GET", "ticker/bookTicker", {}, 0.8)
    ledger.acquire(book)
    ledger.on_response(book, status, {"Retry-After": "7"})
    snapshot = ledger.snapshot()
    pools = {row["name"]: row for row in snapshot["pools"]}
    assert pools["REQUEST_WEIGHT"]["paused_until"] == pytest.approx(fake.wall() + 7)
    assert pools["REQUEST_WEIGHT"][f"status_{status}"] == 1
    assert snapshot["totals"][f"status_{status}"] == 1
    # a 418 is an IP ban: every IP pool stops, account pools do not
    assert (pools["SAPI_IP"]["paused_until"] is not None) == (status == 418)
    assert pools["ORDERS_10S"]["paused_until"] is None
    assert ledger.acquire(book) == pytest.approx(7.0, abs=2e-3)


def test_retry_after_http_date_and_consecutive_failures_back_off():
    fake = FakeTime()
    ledger = Ledger(
        preset_for("binance"), mode="enforce", clock=fake.clock, wall=fake.wall, sleep=fake.sleep
    )
    book = ledger.charge_for("public", "GET", "ticker/bookTicker", {}, 0.8)
    when = format_datetime(datetime.fromtimestamp(int(fake.wall()) + 30, tz=UTC), usegmt=True)
    ledger.on_response(book, 429, {"Retry-After": when})
    first = ledger.acquire(book)
    assert 29 <= first <= 30.01
    ledger.on_response(book, 429, {})  # no Retry-After: the preset's default (5 s) + jitter
    second = ledger.acquire(book)
    assert 5 <= second <= 5 + 1 + 0.01
    ledger.on_response(book, 200, {})
    ledger.on_response(book, 429, {"Retry-After": "1"})  # streak reset: no jitter
    assert ledger.acquire(book) == pytest.approx(1.0, abs=2e-3)


def test_observe_mode_records_pauses_but_does_not_wait():
    fake = FakeTime()
    ledger = Ledger(
        preset_for("binance"), mode="observe", clock=fake.clock, wall=fake.wall, sleep=fake.sleep
    )
    book = ledger.charge_for("public", "GET", "ticker/bookTicker", {}, 0.8)
    ledger.on_response(book, 418, {"Retry-After": "120"})
    assert ledger.acquire(book) == 0.0 and fake.slept == []
    pools = {row["name"]: row for row in ledger.snapshot()["pools"]}
    assert pools["REQUEST_WEIGHT"]["paused_until"] is not None


def test_snapshot_shape():
    ledger = Ledger(preset_for("binance"), mode="enforce", headroom=0.5)
    book = ledger.charge_for("public", "GET", "ticker/bookTicker", {}, 0.8)
    ledger.acquire(book)
    snapshot = ledger.snapshot()
    assert set(snapshot) == {
        "mode",
        "preset",
        "headroom",
        "exchange",
        "backend",
        "pools",
        "endpoints",
        "wait_histogram",
        "totals",
        "background",
        "reserve",
        "waiting",
        "client",
        "clients",
    }
    # a bot's ledger: not a background client, nothing waiting, no non-bot client known
    assert (snapshot["background"], snapshot["reserve"]) == (False, 0.0)
    assert snapshot["waiting"] == {"calls": 0, "blocked_s": 0.0}
    assert (snapshot["client"], snapshot["clients"]) == (None, [])
    assert snapshot["backend"] == {
        "kind": "memory",
        "healthy": True,
        "degraded": False,
        "scope": "local",
        "detail": "in-process windows",
    }
    pool = next(row for row in snapshot["pools"] if row["name"] == "REQUEST_WEIGHT")
    assert set(pool) == {
        "name",
        "scope",
        "limit",
        "interval_s",
        "effective_limit",
        "used",
        "remaining",
        "server_used",
        "server_used_at",
        "paused_until",
        "status_429",
        "status_418",
    }
    assert (pool["effective_limit"], pool["used"], pool["remaining"]) == (3000, 4, 2996)
    assert snapshot["endpoints"] == [
        {
            "endpoint": "public GET ticker/bookTicker",
            "calls": 1,
            "weight": 4.0,
            "wait_s": 0.0,
            "status_429": 0,
            "status_418": 0,
        }
    ]
    assert snapshot["totals"]["weight"] == 4.0


def test_headroom_must_be_a_fraction():
    with pytest.raises(ValueError, match="headroom"):
        Ledger(PRESET, headroom=1.5)


def test_wait_histogram_counts_every_call_in_its_bucket():
    from freqtrade_ratekit.weights.ledger import WAIT_BUCKETS_S

    now = [0.0]
    ledger = Ledger(
        preset_for("binance"),
        mode="enforce",
        headroom=1.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    charge = ledger.charge_for("public", "GET", "exchangeInfo", {}, 4)  # weight 20
    limit = next(p for p in ledger.snapshot()["pools"] if p["name"] == "REQUEST_WEIGHT")["limit"]
    waits = [ledger.acquire(charge) for _ in range(int(limit // 20) + 1)]
    histogram = ledger.snapshot()["wait_histogram"][charge.endpoint]
    assert histogram["count"] == len(waits)
    assert histogram["sum"] == pytest.approx(sum(waits))
    cumulative = {str(le): count for le, count in histogram["buckets"]}
    assert cumulative[str(WAIT_BUCKETS_S[0])] == len(waits) - 1  # all but the last: no wait
    assert cumulative["+Inf"] == len(waits)
    assert waits[-1] > 30  # the one over the limit waited for the window to slide


# ---------------------------------------------------------------- exceptions while waiting


class Doomed(Exception):
    """What a backend or a wait raises in the tests below."""


@pytest.mark.parametrize("error", [KeyboardInterrupt, TimeoutError, Doomed])
def test_a_sync_acquire_that_raises_while_waiting_leaves_no_waiter_behind(error):
    fake = FakeTime()

    def sleep(seconds: float) -> None:
        raise error("interrupted while waiting")

    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock, sleep=sleep)
    ledger.acquire(charge(10))  # A is full for 5 s
    with pytest.raises(error):
        ledger.acquire(charge(10, name="doomed"))
    assert ledger.waiting() == 0
    fake.now += 5
    assert ledger.acquire(charge(3, name="next")) == 0.0  # not queued behind a ghost
    pool_a = next(row for row in ledger.snapshot()["pools"] if row["name"] == "A")
    assert pool_a["used"] == 3  # the call that raised was never charged


def test_a_sync_acquire_whose_backend_raises_while_waiting_leaves_no_waiter_behind(mocker):
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock, sleep=fake.sleep)
    ledger.acquire(charge(10))
    real_try_admit = ledger.backend.try_admit
    calls = {"n": 0}

    def flaky(items):
        calls["n"] += 1
        if calls["n"] == 2:  # the first re-check of the waiting call
            raise Doomed("backend went away")
        return real_try_admit(items)

    mocker.patch.object(ledger.backend, "try_admit", side_effect=flaky)
    with pytest.raises(Doomed):
        ledger.acquire(charge(10, name="doomed"))
    assert ledger.waiting() == 0
    fake.now += 5
    assert ledger.acquire(charge(3, name="next")) == 0.0


def _waiting_thread(ledger: Ledger, item: Charge, outcome: dict[str, object]) -> threading.Thread:
    def run() -> None:
        try:
            outcome[item.endpoint] = ledger.acquire(item)
        except BaseException as exc:  # the test inspects what it was
            outcome[item.endpoint] = exc

    thread = threading.Thread(target=run, name=item.endpoint, daemon=True)
    thread.start()
    return thread


def _doomed_then_follower(
    ledger: Ledger,
) -> tuple[dict[str, object], tuple[threading.Thread, threading.Thread]]:
    """Pool A full (10 of 10), then a "doomed" waiter for 10 queued, then a "follower" for 3
    queued behind it; returns where their outcomes land, and their threads."""
    ledger.acquire(charge(10))
    outcome: dict[str, object] = {}
    doomed = _waiting_thread(ledger, charge(10, name="doomed"), outcome)
    wait_for(ledger.waiting, lambda n: n == 1, 5, "one waiter", interval=0.002)
    follower = _waiting_thread(ledger, charge(3, name="follower"), outcome)
    wait_for(ledger.waiting, lambda n: n == 2, 5, "two waiters", interval=0.002)
    return outcome, (doomed, follower)


@pytest.mark.parametrize("error", [KeyboardInterrupt, TimeoutError, Doomed])
def test_a_waiter_that_raises_wakes_the_one_queued_behind_it(error):
    """Two threads wait on pool A, the second behind the first; the first is interrupted.
    The second must get its turn as soon as A has room (not behind a ghost that, once A
    frees, is charged for a call that never happened)."""
    fake = FakeTime()
    release_doomed = threading.Event()

    def sleep(seconds: float) -> None:
        if threading.current_thread().name == "doomed":
            release_doomed.wait(5)
            raise error("interrupted")
        threading.Event().wait(0.002)

    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock, sleep=sleep)
    outcome, (doomed, follower) = _doomed_then_follower(ledger)
    fake.now += 5  # A is empty again: room for the follower's 3, and for the doomed 10
    release_doomed.set()
    doomed.join(5)
    follower.join(5)
    assert not doomed.is_alive() and not follower.is_alive()
    assert isinstance(outcome.get("doomed"), error)
    assert outcome.get("follower") == pytest.approx(5.0)
    assert ledger.waiting() == 0
    pool_a = next(row for row in ledger.snapshot()["pools"] if row["name"] == "A")
    assert pool_a["used"] == 3


def test_a_backend_error_for_one_waiter_is_that_waiter_s_alone(mocker):
    """The backend fails while the ledger re-examines one waiter on another thread's behalf:
    that waiter gets the error, the thread that happened to re-examine it does not, and the
    waiter queued behind is served."""
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock)
    outcome, (doomed, follower) = _doomed_then_follower(ledger)
    real_try_admit = ledger.backend.try_admit

    def failing_for_the_doomed(items):
        if any(weight == 10 for _, weight in items):
            raise Doomed("backend rejected this charge")
        return real_try_admit(items)

    mocker.patch.object(ledger.backend, "try_admit", side_effect=failing_for_the_doomed)
    fake.now += 5
    ledger.wake()  # must not raise the doomed waiter's error into this thread
    doomed.join(5)
    follower.join(5)
    assert not doomed.is_alive() and not follower.is_alive()
    assert isinstance(outcome.get("doomed"), Doomed)
    assert outcome.get("follower") == pytest.approx(5.0)
    assert ledger.waiting() == 0


def test_async_acquire_cancelled_while_waiting_leaves_no_waiter_behind():
    fake = FakeTime()
    ledger = Ledger(PRESET, mode="enforce", clock=fake.clock)
    ledger.acquire(charge(10))

    async def scenario() -> None:
        pending = asyncio.ensure_future(ledger.acquire_async(charge(10, name="doomed")))
        while ledger.waiting() == 0:
            await asyncio.sleep(0.001)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending

    asyncio.run(scenario())
    assert ledger.waiting() == 0


# ---------------------------------------------------------------- bounded waits, sane pools


class ScriptedBackend:
    """A backend double whose `try_admit` answers a scripted list of waits (then admits)."""

    kind = "scripted"

    def __init__(self, mocker, waits: list[float]) -> None:
        from freqtrade_ratekit.weights import BackendStatus

        self.waits = list(waits)
        self.try_admit = mocker.Mock(side_effect=self._next)
        self.record = mocker.Mock()
        self.used = mocker.Mock(return_value=0.0)
        self.usage = mocker.Mock(return_value=(0.0, 10.0))
        self.raise_used_to = mocker.Mock()
        self.pause = mocker.Mock()
        self.pause_remaining = mocker.Mock(return_value=0.0)
        self.status = mocker.Mock(return_value=BackendStatus("scripted", True, False, "t", ""))

    def _next(self, items) -> float:
        return self.waits.pop(0) if self.waits else 0.0


@pytest.mark.parametrize("bad_wait", [float("inf"), float("nan"), 1e300])
def test_waits_are_finite_and_bounded_whatever_the_backend_answers(mocker, bad_wait):
    from freqtrade_ratekit.workers import MAX_PAUSE_S

    fake = FakeTime()
    backend = ScriptedBackend(mocker, [bad_wait, bad_wait, bad_wait])
    ledger = Ledger(PRESET, mode="enforce", backend=backend, clock=fake.clock, sleep=fake.sleep)
    ledger.acquire(charge(3))
    assert fake.slept and all(0 < s <= MAX_PAUSE_S for s in fake.slept)
    assert ledger.waiting() == 0


def test_an_infinite_wait_from_the_backend_does_not_break_a_condition_wait(mocker):
    """Without a `sleep` hook the ledger waits on its condition: `Condition.wait(inf)` raises
    OverflowError, `wait(nan)` ValueError; the ledger must never pass such a timeout."""
    backend = ScriptedBackend(mocker, [float("inf"), float("inf"), float("nan"), 1e300])
    ledger = Ledger(PRESET, mode="enforce", backend=backend)
    outcome: dict[str, object] = {}
    thread = _waiting_thread(ledger, charge(3, name="patient"), outcome)
    wait_for(lambda: backend.try_admit.call_count, bool, 5, "a first try_admit", interval=0.002)
    for _ in range(3):
        ledger.wake()
        threading.Event().wait(0.01)
    thread.join(5)
    assert not thread.is_alive()
    assert not isinstance(outcome.get("patient"), BaseException), outcome
    assert "patient" in outcome and ledger.waiting() == 0


@pytest.mark.parametrize(
    ("limit", "interval"),
    [(10, float("inf")), (float("inf"), 5), (10, float("nan")), (float("nan"), 5), (0, 5), (-1, 5)],
)
@pytest.mark.parametrize("per_endpoint", [False, True])
def test_the_ledger_refuses_a_pool_that_is_not_finite_and_positive(limit, interval, per_endpoint):
    sane = PoolSpec("BAD_POOL", 10, 5, per_endpoint=per_endpoint)
    object.__setattr__(sane, "limit", limit)  # as if the spec's own check had been bypassed
    object.__setattr__(sane, "interval_s", interval)
    preset = Preset("t", "t", "spot", (POOLS[0], sane), PRESET.rules, "binance")
    with pytest.raises(ValueError, match="BAD_POOL"):
        Ledger(preset, mode="enforce")


@pytest.mark.parametrize(
    ("interval", "capacity"),
    [(float("inf"), 1), (float("nan"), 1), (0, 1), (-5, 1), (5, float("inf")), (5, 0), (5, -1)],
)
def test_a_window_spec_must_be_finite_and_positive(interval, capacity):
    from freqtrade_ratekit.weights import WindowSpec

    with pytest.raises(ValueError, match="BAD_POOL"):
        WindowSpec("BAD_POOL", "ip", interval, capacity)


def test_an_infinite_interval_pool_preset_is_refused_before_any_call():
    with pytest.raises(ValueError, match="SLOW"):
        Ledger(
            Preset("t", "t", "spot", (PoolSpec("SLOW", 10, float("inf")),), PRESET.rules, "binance")
        )


# ---------------------------------------------------------------- pauses from headers


def _binance_ledger(fake: FakeTime, preset_name: str = "binance") -> Ledger:
    return Ledger(
        preset_for(preset_name),
        mode="enforce",
        clock=fake.clock,
        wall=fake.wall,
        sleep=fake.sleep,
    )


def _longest_pause(ledger: Ledger, fake: FakeTime) -> float:
    untils = [row["paused_until"] for row in ledger.snapshot()["pools"] if row["paused_until"]]
    return max((until - fake.wall() for until in untils), default=0.0)


@pytest.mark.parametrize(
    "retry_after",
    ["1e9", "1e308", "Fri, 31 Dec 9999 23:59:59 GMT", "259201"],
)
@pytest.mark.parametrize("status", [429, 418])
def test_every_retry_after_pause_is_capped(status, retry_after):
    from freqtrade_ratekit.workers import MAX_PAUSE_S

    fake = FakeTime()
    ledger = _binance_ledger(fake)
    book = ledger.charge_for("public", "GET", "ticker/bookTicker", {}, 0.8)
    ledger.on_response(book, status, {"Retry-After": retry_after})
    assert _longest_pause(ledger, fake) == pytest.approx(MAX_PAUSE_S)


@pytest.mark.parametrize("retry_after", ["nan", "inf", "-inf", "-30", "NaN", "Infinity"])
def test_a_non_finite_or_negative_retry_after_gives_a_finite_pause(retry_after):
    from freqtrade_ratekit.workers import MAX_PAUSE_S

    fake = FakeTime()
    ledger = _binance_ledger(fake)
    book = ledger.charge_for("public", "GET", "ticker/bookTicker", {}, 0.8)
    ledger.on_response(book, 429, {"Retry-After": retry_after})
    pause = _longest_pause(ledger, fake)
    assert 0 <= pause <= MAX_PAUSE_S
    waited = ledger.acquire(book)
    assert 0 <= waited <= MAX_PAUSE_S + 1


@pytest.mark.parametrize("reset", ["1e300", "1e15", str(2**63)])
def test_an_exhausted_endpoint_pauses_at_most_the_cap_until_its_reset(reset):
    """Gate's (and X-RateLimit-*'s) reset timestamp pauses an exhausted endpoint: a reset
    decades away is a broken header, capped like Retry-After."""
    from freqtrade_ratekit.workers import MAX_PAUSE_S

    fake = FakeTime()
    ledger = _binance_ledger(fake, "gate")
    tickers = ledger.charge_for("public/spot", "GET", "tickers", {}, 1)
    ledger.acquire(tickers)
    ledger.on_response(
        tickers,
        200,
        {
            "X-Gate-RateLimit-Requests-Remain": "0",
            "X-Gate-RateLimit-Limit": "200",
            "X-Gate-RateLimit-Reset-Timestamp": reset,
        },
    )
    assert 0 < _longest_pause(ledger, fake) <= MAX_PAUSE_S
    assert ledger.acquire(tickers) <= MAX_PAUSE_S + 1
