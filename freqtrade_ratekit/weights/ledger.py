"""The weight ledger: charges calls to pools, admits them in priority order, follows the
exchange's own count and pauses pools after 429/418.

Windows are sliding logs (see backends.py): a pool admits at most `headroom x limit` weight in
any `interval_s` span, which is stricter than the fixed windows Binance uses, so a bot that
respects the ledger never trips the exchange's count on its own.

Modes:
- off: nothing is recorded, nothing waits.
- observe: every call is recorded (usage, endpoints, headers, 429/418, pauses are all visible in
  the snapshot) but never waits, not even into a known pause or ban: observe is for measuring
  what the bot does unchanged.
- enforce: `acquire` waits until the charge fits every pool under `headroom x limit` and no pool
  is paused. Waiters are served by priority (orders, then account, then market data) and FIFO
  within a priority; a waiter only waits for earlier waiters that share a pool with it, so a
  full ORDERS pool does not hold back market data. Waiting is Condition.wait / asyncio.Event
  with a timeout computed from the window: no busy-wait. Backend calls happen under the
  ledger's lock; with Redis each is one round-trip bounded by the socket timeout (default
  0.25 s), so an async caller is held at most that long, never for a window's wait.
  Every single wait is finite and at most `MAX_WAIT_SLICE_S` (the waiter then looks again),
  whatever a backend answers: a NaN or infinite wait can neither break `Condition.wait`
  (OverflowError) nor spin.

Exceptions: a waiter that raises while it waits (Ctrl-C, a timeout, a backend error, a
cancelled task) leaves the queue at once and wakes the others, so nothing queues behind a
ghost and nothing is charged for a call that was never sent. A backend error met while the
ledger re-examines a waiter on another thread's behalf is that waiter's alone: it is raised in
the waiter's own thread (where the ccxt hook logs it and sends the call anyway).

Pools: every pool of the preset (templates included) must have a finite limit and interval
> 0; the ledger refuses any other at construction with a ValueError naming the pool.

Header sync: a usage header raises the local count of its pool to the exchange's figure; it
never lowers it. The local window may hold calls the exchange has not counted yet (in flight,
or from a different window alignment); lowering would let those through twice. The local count
falls on its own as entries expire.

429/418 (or a body that is the exchange's rate-limit answer, `headers.body_says_rate_limited`):
the charge's pools (and on a 418 every IP pool) pause for Retry-After (seconds or HTTP
date; the preset's default when absent) plus jittered exponential backoff on consecutive
failures (`RetryPolicy`). A response below 400 resets the streak of its pools. Every pause,
from Retry-After (seconds or HTTP date), a ban, or an exhausted endpoint's reset time, lasts at
most `workers.MAX_PAUSE_S` (3 days).

Priorities across processes (`background`, `reserve`): a ledger built for a Freqtrade
command that does not trade (download-data, list-markets, webserver, ...) is a *background*
ledger: every one of its calls waits at priority `BACKGROUND`, behind every call of the bots
(`Priority.ORDER`, `ACCOUNT`, `MARKET_DATA`), and, at that priority, a pool only admits while it
holds less than `(1 - reserve) x capacity`. A bot's calls may use the whole capacity. Inside one
process the queue orders the waiters; between processes sharing a Redis budget there is no
common queue, and the reserve is what puts the bots first: however much a download asks for,
`reserve x capacity` of every window stays free for the bots of the scope. The admission itself
is the backends' (same Lua script, same memory window), handed a lower capacity.

Snapshot: `limit` is the published limit; `effective_limit`, `used` and `remaining` are what is
enforced right now: headroom x limit, or the backend's local share while it is degraded.
`waiting` says how many calls wait now and for how much wall time at least one call waited;
`client` is this process's record when it is a non-bot client, `clients` every non-bot client of
the scope the registry knows (see `clients.py`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from freqtrade_ratekit.documents import (
    RatekitClient,
    RatekitEndpoint,
    RatekitHistogram,
    RatekitPool,
    RatekitWaiting,
    RatekitWeights,
    RatekitWeightTotals,
)
from freqtrade_ratekit.weights.backends import Backend, MemoryBackend, WindowSpec
from freqtrade_ratekit.weights.clients import ClientIdentity, ClientRegistry
from freqtrade_ratekit.weights.headers import body_says_rate_limited, header_value, parse_usage
from freqtrade_ratekit.weights.presets import (
    PoolSpec,
    Preset,
    Priority,
    charges_for,
    classify_priority,
    endpoint_key,
)
from freqtrade_ratekit.workers import RetryPolicy, clamp_pause, parse_retry_after

logger = logging.getLogger(__name__)

WAIT_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds of the admission-wait histogram (seconds); waits beyond fall in +Inf."""

BLOCKED_RECHECK_S = 1.0
MAX_WAIT_SLICE_S = 60.0
"""Longest single wait of a blocked call before it looks again (a longer wait is several)."""
MIN_WAIT_SLICE_S = 0.001

BACKGROUND = int(max(Priority)) + 1
"""The priority of every call of a non-bot client (download-data, list-markets, webserver, ...):
after orders, account reads and market data of the bots, and held to `(1 - reserve)` of each
pool (see the module docstring)."""


def _bounded_wait(seconds: float) -> float:
    """A wait `Condition.wait`, `asyncio.wait_for` and a test's `sleep` can take: finite,
    in [MIN_WAIT_SLICE_S, MAX_WAIT_SLICE_S]; NaN (a broken backend answer) rechecks soon."""
    if math.isnan(seconds):
        return BLOCKED_RECHECK_S
    return min(max(seconds, MIN_WAIT_SLICE_S), MAX_WAIT_SLICE_S)


def _check_pool(spec: PoolSpec) -> None:
    for name, value in (("limit", spec.limit), ("interval", spec.interval_s)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(
                f"pool {spec.name!r}: {name} must be a finite number > 0, got {value!r}"
            )


class Mode(StrEnum):
    OFF = "off"
    OBSERVE = "observe"
    ENFORCE = "enforce"


@dataclass(frozen=True)
class Charge:
    """What one call costs: `weight` in the endpoint's main pool, and the weight per pool."""

    endpoint: str
    weight: float
    pools: tuple[tuple[str, float], ...]
    priority: Priority
    header_pools: tuple[tuple[str, float | None, str], ...] = ()


@dataclass
class _PoolState:
    spec: PoolSpec
    window: WindowSpec
    low_window: WindowSpec  # the same window as `BACKGROUND` calls see it: less the reserve
    server_used: float | None = None
    server_used_at: float | None = None
    status_429: int = 0
    status_418: int = 0
    streak: int = 0


@dataclass
class _EndpointStats:
    calls: int = 0
    weight: float = 0.0
    wait_s: float = 0.0
    status_429: int = 0
    status_418: int = 0
    wait_counts: list[int] = field(default_factory=lambda: [0] * len(WAIT_BUCKETS_S))

    def histogram(self) -> RatekitHistogram:
        """Cumulative Prometheus-style buckets of the time calls waited for admission."""
        cumulative = list(itertools.accumulate(self.wait_counts))
        buckets: list[list[float | str]] = [
            [le, count] for le, count in zip(WAIT_BUCKETS_S, cumulative, strict=True)
        ]
        return {
            "buckets": [*buckets, ["+Inf", self.calls]],
            "sum": self.wait_s,
            "count": self.calls,
        }


@dataclass(eq=False)
class _Waiter:
    charge: Charge
    priority: int
    seq: int
    items: list[tuple[WindowSpec, float]]
    granted: bool = False
    error: Exception | None = None  # the backend failed for this waiter (see _grant_locked)
    delay: float = 0.0
    loop: asyncio.AbstractEventLoop | None = None
    event: asyncio.Event | None = None
    pools: frozenset[str] = field(default_factory=frozenset)

    @property
    def order(self) -> tuple[int, int]:
        return (self.priority, self.seq)


class Ledger:
    """Thread-safe and asyncio-safe weight accounting for one exchange connection set.

    `sleep` is for tests with a fake `clock`: when given, a blocked `acquire` calls
    `sleep(delay)` outside the lock instead of waiting on the condition.
    """

    def __init__(
        self,
        preset: Preset,
        *,
        mode: str = Mode.OBSERVE,
        headroom: float = 1.0,
        backend: Backend | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        background: bool = False,
        reserve: float = 0.0,
        client: ClientIdentity | None = None,
        registry: ClientRegistry | None = None,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError(f"headroom must be in (0, 1], got {headroom!r}")
        if not (isinstance(reserve, int | float) and 0 <= reserve < 1):
            raise ValueError(f"reserve must be in [0, 1), got {reserve!r}")
        for spec in preset.pools:
            _check_pool(spec)
        self.preset = preset
        self.mode = Mode(mode)
        self.headroom = float(headroom)
        self.background = bool(background)
        self.reserve = float(reserve)
        self.client = client
        self.registry = registry
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._retry = retry or RetryPolicy(default_retry_after_s=preset.default_retry_after_s)
        self.backend: Backend = backend or MemoryBackend(clock)
        self._cond = threading.Condition()
        self._pools: dict[str, _PoolState] = {}
        self._endpoints: dict[str, _EndpointStats] = {}
        self._charge_cache: dict[tuple[str, str, str, float, tuple[str, ...]], Charge] = {}
        self._weight_params = preset.weight_params  # request params some weights depend on
        self._items_cache: dict[
            tuple[tuple[tuple[str, float], ...], bool], list[tuple[WindowSpec, float]]
        ] = {}
        self._streaking: set[str] = set()  # pools with a 429/418 streak to reset on success
        self._waiters: list[_Waiter] = []
        self._sequence = itertools.count()
        self._blocked_since: float | None = None  # clock() when the queue last became busy
        self._blocked_s = 0.0  # closed spans of a busy queue
        for spec in preset.pools:
            if not spec.per_endpoint:
                self._pool(spec.name)

    # ------------------------------------------------------------------------ charges
    def charge_for(
        self,
        api_family: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        cost_from_ccxt: float = 1.0,
    ) -> Charge:
        """The weight per pool of one call. `cost_from_ccxt` is what ccxt's
        `calculate_rate_limiter_cost` returned for it (params already taken into account)."""
        cost = float(cost_from_ccxt)
        if not (math.isfinite(cost) and cost >= 0):  # a broken cost table: ccxt's default
            cost = 1.0
        by_param = (
            tuple(str(params.get(name)) for name in self._weight_params)
            if self._weight_params and params
            else ()
        )
        key = (api_family, method.upper(), path, cost, by_param)
        cached = self._charge_cache.get(key)
        if cached is not None:
            return cached
        weights, header_pools = charges_for(self.preset, api_family, method, path, cost, params)
        charge = Charge(
            endpoint=endpoint_key(api_family, method, path),
            weight=weights[0][1] if weights else 0.0,
            pools=weights,
            priority=classify_priority(api_family, method, path),
            header_pools=header_pools,
        )
        if len(self._charge_cache) < 4096:
            self._charge_cache[key] = charge
        return charge

    def _pool(self, name: str) -> _PoolState:
        state = self._pools.get(name)
        if state is None:
            spec = self.preset.pool(name)  # its template was checked at construction
            capacity = spec.limit * self.headroom
            window = WindowSpec(name, spec.scope, spec.interval_s, capacity)
            low = WindowSpec(name, spec.scope, spec.interval_s, capacity * (1.0 - self.reserve))
            state = self._pools[name] = _PoolState(spec, window, low)
        return state

    def _level(self, charge: Charge, priority: Priority | int | None) -> int:
        """The priority a call waits at: its own (or the caller's), and never ahead of
        `BACKGROUND` in a background ledger."""
        level = int(charge.priority if priority is None else priority)
        return max(level, BACKGROUND) if self.background else level

    def _items(self, charge: Charge, level: int) -> list[tuple[WindowSpec, float]]:
        """(window, weight) per pool of `charge` at priority `level` (a `BACKGROUND` call sees
        each pool less the reserve); called under the lock (creates pools)."""
        low = level >= BACKGROUND and self.reserve > 0
        key = (charge.pools, low)
        items = self._items_cache.get(key)
        if items is None:
            items = []
            for name, weight in charge.pools:
                if weight > 0 and math.isfinite(weight):
                    state = self._pool(name)
                    items.append((state.low_window if low else state.window, weight))
            if len(self._items_cache) < 4096:
                self._items_cache[key] = items
        return items

    # ------------------------------------------------------------------------ admission
    def acquire(self, charge: Charge, priority: Priority | int | None = None) -> float:
        """Wait (enforce) until `charge` fits, record it, and return the seconds waited."""
        if self.mode is Mode.OFF:
            return 0.0
        start = self._clock()
        with self._cond:
            level = self._level(charge, priority)
            items = self._items(charge, level)
            if self.mode is Mode.OBSERVE:
                self.backend.record(items)
                self._count_call(charge, 0.0)
                return 0.0
            if self._admitted_at_once(items):
                self._count_call(charge, 0.0)
                return 0.0
            waiter = self._enqueue(charge, level, items)
            waited_at_all = False
            try:
                while not self._turn_locked(waiter):
                    waited_at_all = True
                    if self._sleep is None:
                        self._cond.wait(timeout=waiter.delay)
                    else:
                        self._cond.release()
                        try:
                            self._sleep(waiter.delay)
                        finally:
                            self._cond.acquire()
            except BaseException:
                self._abandon_locked(waiter)
                raise
            waited = max(0.0, self._clock() - start) if waited_at_all else 0.0
            self._count_call(charge, waited)
            return waited

    async def acquire_async(self, charge: Charge, priority: Priority | int | None = None) -> float:
        """`acquire` for asyncio: awaits the grant, never sleeps in the event loop."""
        if self.mode is Mode.OFF:
            return 0.0
        start = self._clock()
        with self._cond:
            level = self._level(charge, priority)
            items = self._items(charge, level)
            if self.mode is Mode.OBSERVE:
                self.backend.record(items)
                self._count_call(charge, 0.0)
                return 0.0
            if self._admitted_at_once(items):
                self._count_call(charge, 0.0)
                return 0.0
            waiter = self._enqueue(charge, level, items)
            waiter.loop = asyncio.get_running_loop()
            waiter.event = asyncio.Event()
        waited_at_all = False
        try:
            while True:
                with self._cond:
                    if self._turn_locked(waiter):
                        break
                    waited_at_all = True
                    delay = waiter.delay
                    waiter.event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), timeout=delay)
        except BaseException:
            with self._cond:
                self._abandon_locked(waiter)
            raise
        with self._cond:
            waited = max(0.0, self._clock() - start) if waited_at_all else 0.0
            self._count_call(charge, waited)
        return waited

    def _admitted_at_once(self, items: list[tuple[WindowSpec, float]]) -> bool:
        """With nobody waiting, a call that fits goes straight through (what queueing and
        granting it would do, without the queue's bookkeeping)."""
        return not self._waiters and (not items or self.backend.try_admit(items) <= 0)

    def _enqueue(
        self, charge: Charge, level: int, items: list[tuple[WindowSpec, float]]
    ) -> _Waiter:
        if not self._waiters:
            self._blocked_since = self._clock()
        waiter = _Waiter(
            charge,
            level,
            next(self._sequence),
            items,
            pools=frozenset(spec.pool for spec, _ in items),
        )
        bisect.insort(self._waiters, waiter, key=lambda w: w.order)
        return waiter

    def _turn_locked(self, waiter: _Waiter) -> bool:
        """Grant every waiter that fits; True when `waiter` is granted. The backend error met
        for `waiter` (by whichever thread granted) is raised here, in its own thread."""
        self._grant_locked()
        if waiter.error is not None:
            raise waiter.error
        return waiter.granted

    def _abandon_locked(self, waiter: _Waiter) -> None:
        """`waiter` gives up (it raised): out of the queue, and the others look again."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            self._settle_blocked_locked()
            self._notify_locked()

    def _settle_blocked_locked(self) -> None:
        """The queue just lost waiters: when it is empty, its busy span ends."""
        if not self._waiters and self._blocked_since is not None:
            self._blocked_s += max(0.0, self._clock() - self._blocked_since)
            self._blocked_since = None

    def _grant_locked(self) -> None:
        """Admit, in (priority, arrival) order, every waiter that fits and is not behind an
        earlier waiter sharing one of its pools. Sets each remaining waiter's next timeout.
        A waiter whose admission raises leaves the queue with the error, for its own thread to
        raise (see the module docstring)."""
        blocked: set[str] = set()
        finished: list[_Waiter] = []
        try:
            for waiter in list(self._waiters):
                if waiter.pools & blocked:
                    waiter.delay = BLOCKED_RECHECK_S
                    continue
                try:
                    wait = self.backend.try_admit(waiter.items) if waiter.items else 0.0
                except Exception as exc:
                    waiter.error = exc
                    self._waiters.remove(waiter)
                    finished.append(waiter)
                    continue
                if wait <= 0:
                    waiter.granted = True
                    self._waiters.remove(waiter)
                    finished.append(waiter)
                else:
                    waiter.delay = _bounded_wait(wait)
                    blocked |= waiter.pools
        finally:
            if finished:
                self._settle_blocked_locked()
                self._notify_locked(finished)

    def _notify_locked(self, granted: list[_Waiter] | None = None) -> None:
        self._cond.notify_all()
        for waiter in [*self._waiters, *(granted or ())]:
            if waiter.loop is not None and waiter.event is not None:
                try:
                    waiter.loop.call_soon_threadsafe(waiter.event.set)
                except RuntimeError:  # loop closed: its waiter is gone with it
                    continue

    def waiting(self) -> int:
        """How many calls are waiting for admission right now."""
        with self._cond:
            return len(self._waiters)

    def waiting_status(self) -> RatekitWaiting:
        """Calls waiting now, and the wall time during which at least one call waited."""
        with self._cond:
            return self._waiting_locked()

    def _waiting_locked(self) -> RatekitWaiting:
        blocked = self._blocked_s
        if self._blocked_since is not None:
            blocked += max(0.0, self._clock() - self._blocked_since)
        return {"calls": len(self._waiters), "blocked_s": blocked}

    def totals(self) -> RatekitWeightTotals:
        """Calls, weight, waits and 429/418 of every endpoint so far (no backend call)."""
        with self._cond:
            stats = list(self._endpoints.values())
        return {
            "calls": sum(s.calls for s in stats),
            "weight": sum(s.weight for s in stats),
            "wait_s": sum(s.wait_s for s in stats),
            "status_429": sum(s.status_429 for s in stats),
            "status_418": sum(s.status_418 for s in stats),
        }

    def client_record(self, state: str = "running") -> RatekitClient | None:
        """This process's record as a non-bot client (None for a bot: no `client`)."""
        client = self.client
        if client is None:
            return None
        totals = self.totals()
        waiting = self.waiting_status()
        return {
            "id": client.id,
            "name": client.name,
            "run_mode": client.run_mode,
            "host": client.host,
            "pid": client.pid,
            "state": "finished" if state == "finished" else "running",
            "started_at": client.started_at,
            "updated_at": self._wall(),
            "calls": totals["calls"],
            "weight": totals["weight"],
            "wait_s": totals["wait_s"],
            "blocked_s": waiting["blocked_s"],
            "waiting": waiting["calls"],
            "status_429": totals["status_429"],
            "status_418": totals["status_418"],
        }

    def scope_clients(self, *, read_registry: bool = True) -> list[RatekitClient]:
        """The non-bot clients of the scope: the registry's records, this process's own one
        fresh; only this process's own when the registry cannot (or need not: the backend is
        degraded, Redis is away) be read, or there is none."""
        own = self.client_record()
        records: list[RatekitClient] = []
        if self.registry is not None and read_registry:
            try:
                records = self.registry.clients()
            except Exception as exc:
                logger.debug("ratekit: reading the scope's clients failed: %s", exc)
        if own is not None:
            records = [r for r in records if r["id"] != own["id"]] + [own]
            records.sort(key=lambda r: (r["started_at"], r["id"]))
        return records

    def wake(self) -> None:
        """Re-examine the waiters now (e.g. after a clock jump in tests or a config change)."""
        with self._cond:
            self._grant_locked()
            self._notify_locked()

    def _count_call(self, charge: Charge, waited: float) -> None:
        stats = self._endpoints.get(charge.endpoint)
        if stats is None:  # not setdefault: that would build a throw-away default per call
            stats = self._endpoints[charge.endpoint] = _EndpointStats()
        stats.calls += 1
        stats.weight += charge.weight
        stats.wait_s += waited
        bucket = bisect.bisect_left(WAIT_BUCKETS_S, waited)
        if bucket < len(WAIT_BUCKETS_S):
            stats.wait_counts[bucket] += 1

    # ------------------------------------------------------------------------ responses
    def on_response(
        self,
        charge: Charge,
        status: int | None,
        headers: Mapping[str, str] | None,
        body: object = None,
    ) -> None:
        """Merge the exchange's usage headers and react to 429/418 (see module docstring).
        A body that is the exchange's rate-limit answer (Bybit's retCode 10006 comes with
        HTTP 200) counts as a 429."""
        if self.mode is Mode.OFF:
            return
        if status not in (429, 418) and body_says_rate_limited(self.preset.header_format, body):
            status = 429
        now_wall = self._wall()
        readings = parse_usage(self.preset.header_format, headers, now_wall)
        with self._cond:
            for reading in readings:
                for kind, interval, pool_name in charge.header_pools:
                    if kind != reading.kind or interval != reading.interval_s:
                        continue
                    state = self._pool(pool_name)
                    state.server_used = reading.used
                    state.server_used_at = now_wall
                    self.backend.raise_used_to(state.window, reading.used)
                    exhausted = reading.remaining is not None and reading.remaining <= 0
                    if exhausted and reading.reset_at is not None and reading.reset_at > now_wall:
                        self.backend.pause(state.window, clamp_pause(reading.reset_at - now_wall))
            if status in (429, 418):
                self._on_rate_limited(charge, status, headers, readings, now_wall)
            elif status is not None and status < 400 and self._streaking:
                for name, _ in charge.pools:
                    self._pool(name).streak = 0
                    self._streaking.discard(name)

    def _on_rate_limited(
        self,
        charge: Charge,
        status: int,
        headers: Mapping[str, str] | None,
        readings: list[Any],
        now_wall: float,
    ) -> None:
        stats = self._endpoints.setdefault(charge.endpoint, _EndpointStats())
        retry_after = parse_retry_after(header_value(headers, "Retry-After"), now_wall)
        if retry_after is None:
            resets = [
                r.reset_at - now_wall for r in readings if r.reset_at and r.reset_at > now_wall
            ]
            retry_after = max(resets) if resets else None
        names = [name for name, _ in charge.pools]
        if status == 418:
            names += [name for name, state in self._pools.items() if state.spec.scope == "ip"]
        if status == 429:
            stats.status_429 += 1
        else:
            stats.status_418 += 1
        for name in dict.fromkeys(names):
            state = self._pool(name)
            state.streak += 1
            self._streaking.add(name)
            if status == 429:
                state.status_429 += 1
            else:
                state.status_418 += 1
            pause = self._retry.pause_seconds(retry_after, state.streak, self._rng)
            self.backend.pause(state.window, pause)
        logger.warning(
            "ratekit: %s answered %s on %s; pausing %s (Retry-After %s)",
            self.preset.exchange_id,
            status,
            charge.endpoint,
            ", ".join(dict.fromkeys(names)),
            "absent" if retry_after is None else f"{retry_after:.1f}s",
        )

    # ------------------------------------------------------------------------ reporting
    def snapshot(self) -> RatekitWeights:
        """The REST document served at /api/v1/ratekit/weights. Holds no secrets."""
        now_wall = self._wall()
        with self._cond:
            pools = list(self._pools.values())
            endpoints = {
                name: _EndpointStats(**{**vars(s), "wait_counts": list(s.wait_counts)})
                for name, s in self._endpoints.items()
            }
            waiting = self._waiting_locked()
        backend_status = self.backend.status()
        pool_rows: list[RatekitPool] = []
        for state in pools:
            used, capacity = self.backend.usage(state.window)
            paused = self.backend.pause_remaining(state.window)
            pool_rows.append(
                {
                    "name": state.spec.name,
                    "scope": state.spec.scope,
                    "limit": state.spec.limit,
                    "interval_s": state.spec.interval_s,
                    "effective_limit": capacity,
                    "used": used,
                    "remaining": max(0.0, capacity - used),
                    "server_used": state.server_used,
                    "server_used_at": state.server_used_at,
                    "paused_until": now_wall + paused if paused > 0 else None,
                    "status_429": state.status_429,
                    "status_418": state.status_418,
                }
            )
        endpoint_rows: list[RatekitEndpoint] = [
            {
                "endpoint": name,
                "calls": stats.calls,
                "weight": stats.weight,
                "wait_s": stats.wait_s,
                "status_429": stats.status_429,
                "status_418": stats.status_418,
            }
            for name, stats in sorted(endpoints.items())
        ]
        return {
            "mode": self.mode.value,
            "preset": self.preset.name,
            "headroom": self.headroom,
            "exchange": self.preset.exchange_id,
            "background": self.background,
            "reserve": self.reserve,
            "backend": {
                "kind": backend_status.kind,
                "healthy": backend_status.healthy,
                "degraded": backend_status.degraded,
                "scope": backend_status.scope,
                "detail": backend_status.detail,
            },
            "pools": pool_rows,
            "endpoints": endpoint_rows,
            "wait_histogram": {
                name: stats.histogram() for name, stats in sorted(endpoints.items())
            },
            "totals": {
                "calls": sum(row["calls"] for row in endpoint_rows),
                "weight": sum(row["weight"] for row in endpoint_rows),
                "wait_s": sum(row["wait_s"] for row in endpoint_rows),
                "status_429": sum(row["status_429"] for row in endpoint_rows),
                "status_418": sum(row["status_418"] for row in endpoint_rows),
            },
            "waiting": waiting,
            "client": self.client_record(),
            "clients": self.scope_clients(read_registry=not backend_status.degraded),
        }
