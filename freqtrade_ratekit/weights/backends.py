"""Where the rolling windows live: in this process, or in Redis shared by several bots.

The ledger decides *who* goes next (priorities, FIFO); a backend only answers "does this charge
fit in every pool right now, and if not, how long until it might". Both backends use the same
window semantics: a sliding log of (time, weight) entries per pool; a charge fits a pool when
`used + weight <= capacity`, or when the pool is empty (a single call heavier than the whole
capacity is let through alone instead of never). A pool can also be paused.

Redis keys (`ratekit:{exchange}:{scope_id}:{pool}` + ":log" / ":sum" / ":pause") never hold a
raw secret: scope ids are sha256 digests (see `scope_digest`). Admission into every pool of a
charge is one EVALSHA round-trip; time is Redis' own TIME, so bots on different hosts agree.
If Redis fails or is slow (short socket timeouts), the backend switches to a local window
with capacity / expected_bots, reports `degraded`, and probes Redis again with exponential
backoff; the first successful probe rejoins the shared budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from freqtrade_ratekit.config import mask_url

__all__ = [
    "Backend",
    "BackendStatus",
    "MemoryBackend",
    "RedisBackend",
    "WindowSpec",
    "mask_url",
    "scope_digest",
]

logger = logging.getLogger(__name__)

_EPSILON = 1e-9
MIN_WAIT_S = 0.001


@dataclass(frozen=True)
class WindowSpec:
    """One pool as a backend sees it: its name, scope, window length and admitted capacity."""

    pool: str
    scope: str
    interval_s: float
    capacity: float


@dataclass(frozen=True)
class BackendStatus:
    kind: str
    healthy: bool
    degraded: bool
    scope: str
    detail: str


Items = Sequence[tuple[WindowSpec, float]]


class Backend(Protocol):
    kind: str

    def try_admit(self, items: Items) -> float:
        """Admit the charge into every pool at once and return 0.0, or admit nothing and
        return the seconds (> 0) until it might fit (pauses included)."""

    def record(self, items: Items) -> None:
        """Add the charge to every pool unconditionally (observe mode)."""

    def used(self, spec: WindowSpec) -> float: ...

    def raise_used_to(self, spec: WindowSpec, used: float) -> None:
        """Make the window hold at least `used` (the exchange's own count)."""

    def pause(self, spec: WindowSpec, seconds: float) -> None:
        """Refuse admissions to the pool for `seconds` from now (extends, never shortens)."""

    def pause_remaining(self, spec: WindowSpec) -> float: ...

    def status(self) -> BackendStatus: ...


def scope_digest(*parts: str) -> str:
    """A stable, non-reversible identifier for what defines a shared budget (host/IP label,
    exchange, API key): the Redis keys and the snapshot only ever show this digest."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:24]


class _Window:
    __slots__ = ("entries", "paused_until", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, float]] = deque()
        self.total = 0.0
        self.paused_until = 0.0

    def prune(self, now: float, interval_s: float) -> None:
        # `stamp + interval_s <= now` is the same expression `wait_for` subtracts from, so a
        # sleep of exactly the computed wait always expires the entry (no float gap).
        while self.entries and self.entries[0][0] + interval_s <= now:
            self.total -= self.entries.popleft()[1]
        if not self.entries:
            self.total = 0.0

    def wait_for(self, now: float, interval_s: float, capacity: float, weight: float) -> float:
        """Seconds until `weight` fits: enough old entries expire, or all of them if the
        weight alone exceeds the capacity."""
        if weight <= 0 or not self.entries:
            return 0.0
        if weight > capacity:
            return max(MIN_WAIT_S, self.entries[-1][0] + interval_s - now)
        if self.total + weight <= capacity + _EPSILON:
            return 0.0
        freed = 0.0
        for stamp, entry_weight in self.entries:
            freed += entry_weight
            if self.total - freed + weight <= capacity + _EPSILON:
                return max(MIN_WAIT_S, stamp + interval_s - now)
        return max(MIN_WAIT_S, self.entries[-1][0] + interval_s - now)


class MemoryBackend:
    """Sliding-log windows in this process. Thread-safe; time from the injected clock."""

    kind = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic, scope: str = "local") -> None:
        self._clock = clock
        self._scope = scope
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def _window(self, spec: WindowSpec, now: float) -> _Window:
        window = self._windows.get(spec.pool)
        if window is None:
            window = self._windows[spec.pool] = _Window()
        window.prune(now, spec.interval_s)
        return window

    def try_admit(self, items: Items) -> float:
        with self._lock:
            now = self._clock()
            wait = 0.0
            for spec, weight in items:
                window = self._window(spec, now)
                wait = max(wait, window.paused_until - now)
                wait = max(wait, window.wait_for(now, spec.interval_s, spec.capacity, weight))
            if wait > 0:
                return max(wait, MIN_WAIT_S)
            self._add(items, now)
            return 0.0

    def record(self, items: Items) -> None:
        with self._lock:
            now = self._clock()
            for spec, _ in items:
                self._window(spec, now)
            self._add(items, now)

    def _add(self, items: Items, now: float) -> None:
        for spec, weight in items:
            if weight > 0:
                window = self._windows[spec.pool]
                window.entries.append((now, weight))
                window.total += weight

    def used(self, spec: WindowSpec) -> float:
        with self._lock:
            return self._window(spec, self._clock()).total

    def raise_used_to(self, spec: WindowSpec, used: float) -> None:
        with self._lock:
            now = self._clock()
            window = self._window(spec, now)
            missing = used - window.total
            if missing > _EPSILON:
                window.entries.append((now, missing))
                window.total += missing

    def pause(self, spec: WindowSpec, seconds: float) -> None:
        with self._lock:
            now = self._clock()
            window = self._window(spec, now)
            window.paused_until = max(window.paused_until, now + seconds)

    def pause_remaining(self, spec: WindowSpec) -> float:
        with self._lock:
            now = self._clock()
            return max(0.0, self._window(spec, now).paused_until - now)

    def status(self) -> BackendStatus:
        return BackendStatus("memory", True, False, self._scope, "in-process windows")


# KEYS: per pool (log, sum, pause). ARGV: force, member id, then per pool interval_ms,
# capacity, weight. Returns {admitted (0/1), wait_ms as string}.
_ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local force = ARGV[1] == '1'
local member = ARGV[2]
local n = #KEYS / 3
local wait = 0
for i = 1, n do
  local log, sum, pause = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local interval = tonumber(ARGV[3*i])
  local cap = tonumber(ARGV[3*i+1])
  local w = tonumber(ARGV[3*i+2])
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - interval)
  local used = tonumber(redis.call('GET', sum) or '0')
  for _, m in ipairs(expired) do used = used - tonumber(string.match(m, ':([^:]+)$')) end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', now - interval) end
  if redis.call('ZCARD', log) == 0 then used = 0 end
  redis.call('SET', sum, tostring(used), 'PX', math.ceil(interval) + 1000)
  local p = tonumber(redis.call('GET', pause) or '0')
  if p - now > wait then wait = p - now end
  if w > 0 and used > 0 and (w > cap or used + w > cap + 1e-9) then
    local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    local freed = 0
    local until_fit = nil
    for j = 1, #entries, 2 do
      freed = freed + tonumber(string.match(entries[j], ':([^:]+)$'))
      local stamp = tonumber(entries[j+1])
      if (w > cap and freed >= used - 1e-9) or (w <= cap and used - freed + w <= cap + 1e-9) then
        until_fit = stamp + interval - now
        break
      end
    end
    if until_fit == nil then until_fit = interval elseif until_fit <= 0 then until_fit = 1 end
    if until_fit > wait then wait = until_fit end
  end
end
if wait > 0 and not force then return {0, tostring(wait)} end
for i = 1, n do
  local log, sum = KEYS[3*i-2], KEYS[3*i-1]
  local interval = tonumber(ARGV[3*i])
  local w = tonumber(ARGV[3*i+2])
  if w > 0 then
    redis.call('ZADD', log, now, member .. ':' .. i .. ':' .. ARGV[3*i+2])
    local total = tonumber(redis.call('GET', sum) or '0') + w
    redis.call('SET', sum, tostring(total), 'PX', math.ceil(interval) + 1000)
    redis.call('PEXPIRE', log, math.ceil(interval) + 1000)
  end
end
return {1, '0'}
"""

# KEYS: log, sum. ARGV: interval_ms, target, member. Returns used (after) as string.
_RAISE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local log, sum = KEYS[1], KEYS[2]
local interval = tonumber(ARGV[1])
local target = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - interval)
local used = tonumber(redis.call('GET', sum) or '0')
for _, m in ipairs(expired) do used = used - tonumber(string.match(m, ':([^:]+)$')) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', now - interval) end
if redis.call('ZCARD', log) == 0 then used = 0 end
if target > used + 1e-9 then
  local missing = target - used
  redis.call('ZADD', log, now, ARGV[3] .. ':' .. tostring(missing))
  used = target
  redis.call('PEXPIRE', log, math.ceil(interval) + 1000)
end
redis.call('SET', sum, tostring(used), 'PX', math.ceil(interval) + 1000)
return tostring(used)
"""

# KEYS: pause. ARGV: ms (0 = only read). Returns remaining ms as string.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local ms = tonumber(ARGV[1])
local p = tonumber(redis.call('GET', KEYS[1]) or '0')
if ms > 0 and now + ms > p then
  p = now + ms
  redis.call('SET', KEYS[1], tostring(p), 'PX', math.ceil(ms) + 1000)
end
local left = p - now
if left < 0 then left = 0 end
return tostring(left)
"""


class RedisBackend:
    """Windows shared through Redis, with a local conservative share while Redis is away."""

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        exchange: str,
        ip_scope_id: str,
        account_scope_id: str,
        expected_bots: int = 3,
        socket_timeout_s: float = 0.25,
        probe_base_s: float = 1.0,
        probe_cap_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        client: Any | None = None,
    ) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._masked_url = mask_url(url)
        self._exchange = exchange
        self._scope_ids = {"ip": ip_scope_id, "account": account_scope_id}
        self._expected_bots = max(1, expected_bots)
        self._clock = clock
        self._probe_base_s = probe_base_s
        self._probe_cap_s = probe_cap_s
        self._client = client or redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._admit = self._client.register_script(_ADMIT_LUA)
        self._raise = self._client.register_script(_RAISE_LUA)
        self._pause = self._client.register_script(_PAUSE_LUA)
        self._local = MemoryBackend(clock, scope="local share")
        self._lock = threading.Lock()
        self._degraded = False
        self._failures = 0
        self._next_probe = 0.0
        self._detail = f"shared via {self._masked_url}"
        self._member_prefix = uuid.uuid4().hex[:12]
        self._sequence = 0

    # ----------------------------------------------------------------- keys and fallbacks
    def _key(self, spec: WindowSpec) -> str:
        scope_id = self._scope_ids.get(spec.scope, self._scope_ids["ip"])
        return f"ratekit:{self._exchange}:{scope_id}:{spec.pool}"

    def _local_items(self, items: Items) -> list[tuple[WindowSpec, float]]:
        return [(self._local_spec(spec), weight) for spec, weight in items]

    def _local_spec(self, spec: WindowSpec) -> WindowSpec:
        share = spec.capacity / self._expected_bots
        return WindowSpec(spec.pool, spec.scope, spec.interval_s, share)

    def _use_redis(self) -> bool:
        """True when Redis should be tried now: healthy, or degraded and a probe is due."""
        with self._lock:
            if not self._degraded:
                return True
            if self._clock() < self._next_probe:
                return False
        try:
            self._client.ping()
        except self._errors as exc:
            self._failed(exc)
            return False
        with self._lock:
            self._degraded = False
            self._failures = 0
            self._detail = f"shared via {self._masked_url} (rejoined)"
        logger.info("ratekit: Redis backend %s answers again, rejoining", self._masked_url)
        return True

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._failures += 1
            delay = min(self._probe_cap_s, self._probe_base_s * 2 ** min(self._failures - 1, 20))
            self._next_probe = self._clock() + delay
            was_degraded = self._degraded
            self._degraded = True
            self._detail = (
                f"Redis {self._masked_url} unreachable ({type(exc).__name__}); local share "
                f"1/{self._expected_bots} of each limit, next probe in {delay:.1f}s"
            )
        if not was_degraded:
            logger.warning("ratekit: %s", self._detail)

    def _member(self) -> str:
        with self._lock:
            self._sequence += 1
            return f"{self._member_prefix}-{self._sequence}"

    # ------------------------------------------------------------------------ protocol
    def try_admit(self, items: Items) -> float:
        return self._run_admit(items, force=False)

    def record(self, items: Items) -> None:
        self._run_admit(items, force=True)

    def _run_admit(self, items: Items, *, force: bool) -> float:
        if self._use_redis():
            keys: list[str] = []
            args: list[Any] = ["1" if force else "0", self._member()]
            for spec, weight in items:
                base = self._key(spec)
                keys.extend((f"{base}:log", f"{base}:sum", f"{base}:pause"))
                args.extend((spec.interval_s * 1000.0, repr(spec.capacity), repr(weight)))
            try:
                admitted, wait_ms = self._admit(keys=keys, args=args)
            except self._errors as exc:
                self._failed(exc)
            else:
                if int(admitted) == 1:
                    # the local window shadows our own share, so a fall-back to it starts
                    # from what this bot just spent instead of an empty window
                    self._local.record(self._local_items(items))
                    return 0.0
                return max(float(wait_ms) / 1000.0, MIN_WAIT_S)
        local = self._local_items(items)
        if force:
            self._local.record(local)
            return 0.0
        return self._local.try_admit(local)

    def used(self, spec: WindowSpec) -> float:
        if self._use_redis():
            base = self._key(spec)
            try:
                value = self._raise(
                    keys=[f"{base}:log", f"{base}:sum"],
                    args=[spec.interval_s * 1000.0, "0", self._member()],
                )
            except self._errors as exc:
                self._failed(exc)
            else:
                return float(value)
        return self._local.used(self._local_spec(spec))

    def raise_used_to(self, spec: WindowSpec, used: float) -> None:
        # Keep the local share in step too, so a fall-back starts from the latest word.
        self._local.raise_used_to(self._local_spec(spec), used / self._expected_bots)
        if self._use_redis():
            base = self._key(spec)
            try:
                self._raise(
                    keys=[f"{base}:log", f"{base}:sum"],
                    args=[spec.interval_s * 1000.0, repr(used), self._member()],
                )
            except self._errors as exc:
                self._failed(exc)

    def pause(self, spec: WindowSpec, seconds: float) -> None:
        self._local.pause(self._local_spec(spec), seconds)
        if self._use_redis():
            try:
                self._pause(keys=[f"{self._key(spec)}:pause"], args=[max(seconds, 0.001) * 1000.0])
            except self._errors as exc:
                self._failed(exc)

    def pause_remaining(self, spec: WindowSpec) -> float:
        local = self._local.pause_remaining(self._local_spec(spec))
        if self._use_redis():
            try:
                shared = float(self._pause(keys=[f"{self._key(spec)}:pause"], args=[0])) / 1000.0
            except self._errors as exc:
                self._failed(exc)
            else:
                return max(shared, local)
        return local

    def status(self) -> BackendStatus:
        with self._lock:
            degraded = self._degraded
            detail = self._detail
        scope = f"ip:{self._scope_ids['ip']} account:{self._scope_ids['account']}"
        return BackendStatus("redis", not degraded, degraded, scope, detail)

    def close(self) -> None:
        with contextlib.suppress(*self._errors):
            self._client.close()
