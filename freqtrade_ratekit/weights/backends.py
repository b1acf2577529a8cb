"""Where the rolling windows live: in this process, or in Redis shared by several bots.

The ledger decides *who* goes next (priorities, FIFO); a backend only answers "does this charge
fit in every pool right now, and if not, how long until it might". Both backends use the same
window semantics: a sliding log of (time, weight) entries per pool; a charge fits a pool when
`used + weight <= capacity`, or when the pool is empty (a single call heavier than the whole
capacity is let through alone instead of never). A pool can also be paused.

Redis keys (`ratekit:{exchange}:{scope_id}:{pool}` + ":log" / ":sum" / ":pause") never hold a
raw secret: scope ids are sha256 digests (see `scope_digest`). Admission into every pool of a
charge is one EVALSHA round-trip; time is Redis' own TIME, so bots on different hosts agree.

When Redis fails, every call is answered from a local window with capacity / expected_bots
(the conservative local share), the status reports `degraded` with the cause, and no exception
ever leaves the backend (the ledger runs inside the bot's ccxt calls). Two kinds of failure:
- unreachable: connection refused or reset, timeouts (short socket timeouts), authentication,
  any OSError. A PING detects these, so the backend probes with PING under exponential
  backoff (`probe_base_s` .. `probe_cap_s`); the first answered probe rejoins. Logged once as
  a WARNING on the way down and once as INFO on rejoining.
- rejected: Redis answers, but a script call fails (a Lua error, WRONGTYPE, OOM, NOPERM,
  READONLY after a failover) or the client raises before sending (a ValueError or DataError
  encoding an argument, an unexpected reply). A PING would answer and rejoin at once, only for
  the next call to fail again, so the backend does not PING: it holds the local share for
  `script_retry_base_s`, doubling on each repeated rejection up to `script_retry_cap_s`, and
  then lets the next real call try Redis again. That call's success is the rejoin (logged
  once as INFO); a failure renews the hold. The cause is logged once as an ERROR (again only
  when it changes or after an hour), without a traceback; repeats go to DEBUG. The streak of
  rejections decays after twice the cap without one, so a flaky cause is retried less and
  less often rather than flapping every few seconds.
Every message, detail and error the backend produces goes through `mask_url`, and free text
(redis-py's error messages) through `redact.scrub` of the URL's secrets: no password, from the
user info or a `?password=` query parameter, is ever shown.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from freqtrade_ratekit.redact import cut, mask_url, scrub, secret_forms, url_secrets
from freqtrade_ratekit.workers import backoff_ceiling, clamp_pause

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

    def __post_init__(self) -> None:
        for name in ("interval_s", "capacity"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"pool {self.pool!r}: {name} must be a finite number > 0, got {value!r}"
                )


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

    def usage(self, spec: WindowSpec) -> tuple[float, float]:
        """(used, capacity enforced right now): the local share's while degraded."""

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
        if not weight > 0 or not self.entries:  # also NaN: a charge of nothing
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
            if weight > 0 and math.isfinite(weight):
                window = self._windows[spec.pool]
                window.entries.append((now, weight))
                window.total += weight

    def used(self, spec: WindowSpec) -> float:
        with self._lock:
            return self._window(spec, self._clock()).total

    def usage(self, spec: WindowSpec) -> tuple[float, float]:
        return self.used(spec), spec.capacity

    def raise_used_to(self, spec: WindowSpec, used: float) -> None:
        if not math.isfinite(used):
            return
        with self._lock:
            now = self._clock()
            window = self._window(spec, now)
            missing = used - window.total
            if missing > _EPSILON:
                window.entries.append((now, missing))
                window.total += missing

    def pause(self, spec: WindowSpec, seconds: float) -> None:
        seconds = clamp_pause(seconds)
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


def _lua_script(name: str) -> str:
    """The text of `weights/lua/<name>.lua`, shipped as package data."""
    path = resources.files("freqtrade_ratekit.weights").joinpath(f"lua/{name}.lua")
    return path.read_text(encoding="utf-8")


# The Lua scripts live in `weights/lua/*.lua` (KEYS and ARGV documented at the top of each),
# read once at import; each client registers them once (`register_script`: EVALSHA, with
# EVAL on NOSCRIPT), as the `limits` package keeps its scripts.
_ADMIT_LUA = _lua_script("admit")
_RAISE_LUA = _lua_script("raise")
_PAUSE_LUA = _lua_script("pause")


_SHARED = "shared"
_UNREACHABLE = "unreachable"
_REJECTED = "rejected"
# Timeouts a Redis URL may set (redis-py lets the URL override the backend's own): each must be
# a finite number of seconds > 0, or a NaN would reach `socket.settimeout` on every connect.
_URL_TIMEOUTS = ("socket_timeout", "socket_connect_timeout", "timeout")
_URL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_RELOG_SAME_CAUSE_S = 3600.0


def _finite_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Redis backend: {name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Redis backend: {name} must be finite and > 0, got {value!r}")
    return float(value)


class RedisBackend:
    """Windows shared through Redis, with a local conservative share while Redis is away or
    rejects its calls (see the module docstring for the two kinds of failure)."""

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
        script_retry_base_s: float = 30.0,
        script_retry_cap_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        client: Any | None = None,
    ) -> None:
        import redis

        self._secret_forms = secret_forms(url_secrets(url))
        self._masked_url = mask_url(url)
        socket_timeout_s = _finite_positive("socket_timeout_s", socket_timeout_s)
        self._probe_base_s = _finite_positive("probe_base_s", probe_base_s)
        self._probe_cap_s = _finite_positive("probe_cap_s", probe_cap_s)
        self._script_base_s = _finite_positive("script_retry_base_s", script_retry_base_s)
        self._script_cap_s = _finite_positive("script_retry_cap_s", script_retry_cap_s)
        if isinstance(expected_bots, bool) or not isinstance(expected_bots, int | float):
            raise ValueError(
                f"Redis backend: expected_bots must be a number, got {expected_bots!r}"
            )
        if not math.isfinite(expected_bots):
            raise ValueError(f"Redis backend: expected_bots must be finite, got {expected_bots!r}")
        # Connection trouble (PING sees it); everything else a call raises is a rejection.
        self._unreachable_errors: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            OSError,
        )
        self._redis_error: type[BaseException] = redis.exceptions.RedisError
        self._exchange = exchange
        self._scope_ids = {"ip": ip_scope_id, "account": account_scope_id}
        self._expected_bots = max(1, int(expected_bots))
        self._clock = clock
        self._client = client or self._connect(redis, url, socket_timeout_s)
        self._admit = self._client.register_script(_ADMIT_LUA)
        self._raise = self._client.register_script(_RAISE_LUA)
        self._pause = self._client.register_script(_PAUSE_LUA)
        self._local = MemoryBackend(clock, scope="local share")
        self._lock = threading.Lock()
        self._state = _SHARED
        self._failures = 0  # consecutive failed probes while unreachable
        self._rejections = 0  # rejection streak (decays, see `_failed`)
        self._last_rejection_at = -math.inf
        self._logged_cause: tuple[str, float] | None = None  # last rejection logged as ERROR
        self._next_try = 0.0
        self._detail = f"shared via {self._masked_url}"
        self._member_prefix = uuid.uuid4().hex[:12]
        self._sequence = 0

    def _connect(self, redis: Any, url: str, socket_timeout_s: float) -> Any:
        """The client, or a ValueError naming what is wrong with the URL (masked)."""
        try:
            options = redis.connection.parse_url(url)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"invalid Redis URL {self._masked_url}: {self._redact(str(exc))}"
            ) from None
        for name in _URL_TIMEOUTS:
            value = options.get(name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"Redis URL {self._masked_url}: {name} must be a finite number of seconds "
                    f"> 0, got {value!r}"
                )
        try:
            return redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=socket_timeout_s,
                retry_on_timeout=False,
                health_check_interval=0,
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"invalid Redis URL {self._masked_url}: {self._redact(str(exc))}"
            ) from None

    # ----------------------------------------------------------------- keys and fallbacks
    def _key(self, spec: WindowSpec) -> str:
        scope_id = self._scope_ids.get(spec.scope, self._scope_ids["ip"])
        return f"ratekit:{self._exchange}:{scope_id}:{spec.pool}"

    def _local_items(self, items: Items) -> list[tuple[WindowSpec, float]]:
        return [(self._local_spec(spec), weight) for spec, weight in items]

    def _local_spec(self, spec: WindowSpec) -> WindowSpec:
        share = spec.capacity / self._expected_bots
        return WindowSpec(spec.pool, spec.scope, spec.interval_s, share)

    def _redact(self, text: str) -> str:
        """`text` without any of the URL's secrets, every URL in it masked, and cut short."""
        text = scrub(text, self._secret_forms)
        text = _URL_PATTERN.sub(lambda match: mask_url(match.group(0)), text)
        return cut(" ".join(text.split()))  # one log line, whatever the message holds

    def _cause(self, exc: BaseException) -> str:
        """`Type: message` (redacted); for an error raised by client code rather than by
        Redis, also where it was raised (a file name and line, no traceback)."""
        message = self._redact(str(exc))
        cause = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        if not isinstance(exc, self._redis_error):
            frames = traceback.extract_tb(exc.__traceback__)
            if frames:
                cause += f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"
        return cause

    def _use_redis(self) -> bool:
        """True when Redis should be tried now: shared; rejected and the hold is over (the
        call is the probe); unreachable, a probe is due and PING answers."""
        with self._lock:
            if self._state == _SHARED:
                return True
            if self._clock() < self._next_try:
                return False
            if self._state == _REJECTED:
                return True
        try:
            self._client.ping()
        except Exception as exc:
            self._failed(exc)
            return False
        self._succeeded()
        return True

    def _succeeded(self) -> None:
        if self._state == _SHARED:  # the common case, read without the lock
            return
        with self._lock:
            previous, self._state = self._state, _SHARED
            if previous == _SHARED:
                return
            self._failures = 0
            if previous == _UNREACHABLE:
                self._detail = f"shared via {self._masked_url} (rejoined)"
            else:
                self._detail = f"shared via {self._masked_url} (script calls work again)"
        if previous == _UNREACHABLE:
            logger.info("ratekit: Redis backend %s answers again, rejoining", self._masked_url)
        else:
            logger.info(
                "ratekit: Redis backend %s runs the weight scripts again, rejoining the "
                "shared budget",
                self._masked_url,
            )

    def _failed(self, exc: Exception) -> None:
        cause = self._cause(exc)
        share = f"local share 1/{self._expected_bots} of each limit"
        with self._lock:
            now = self._clock()
            previous = self._state
            if isinstance(exc, self._unreachable_errors):
                self._state = _UNREACHABLE
                self._failures += 1
                delay = backoff_ceiling(self._probe_base_s, self._probe_cap_s, self._failures)
                self._detail = (
                    f"Redis {self._masked_url} unreachable ({cause}); {share}, "
                    f"next probe in {delay:.1f}s"
                )
                level = logging.WARNING if previous != _UNREACHABLE else logging.DEBUG
            else:
                self._state = _REJECTED
                if now - self._last_rejection_at > 2 * self._script_cap_s:
                    self._rejections = 0
                self._rejections += 1
                self._last_rejection_at = now
                delay = backoff_ceiling(self._script_base_s, self._script_cap_s, self._rejections)
                self._detail = (
                    f"Redis {self._masked_url} rejected a weight script call ({cause}); "
                    f"{share}, next try in {delay:.0f}s"
                )
                logged = self._logged_cause
                repeat = (
                    logged is not None
                    and logged[0] == cause
                    and now - logged[1] < _RELOG_SAME_CAUSE_S
                )
                level = logging.DEBUG if repeat else logging.ERROR
                if not repeat:
                    self._logged_cause = (cause, now)
            self._next_try = now + delay
            detail = self._detail
        logger.log(level, "ratekit: %s", detail)

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
            try:
                keys: list[str] = []
                args: list[Any] = ["1" if force else "0", self._member()]
                for spec, weight in items:
                    base = self._key(spec)
                    keys.extend((f"{base}:log", f"{base}:sum", f"{base}:pause"))
                    args.extend((spec.interval_s * 1000.0, repr(spec.capacity), repr(weight)))
                admitted, wait_ms = self._admit(keys=keys, args=args)
                wait_s = float(wait_ms) / 1000.0
                if not math.isfinite(wait_s):
                    raise ValueError(f"the admission script answered a wait of {wait_ms!r}")
                admitted = int(admitted)
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()
                if admitted == 1:
                    # the local window shadows our own share, so a fall-back to it starts
                    # from what this bot just spent instead of an empty window
                    self._local.record(self._local_items(items))
                    return 0.0
                return max(wait_s, MIN_WAIT_S)
        local = self._local_items(items)
        if force:
            self._local.record(local)
            return 0.0
        return self._local.try_admit(local)

    def used(self, spec: WindowSpec) -> float:
        return self.usage(spec)[0]

    def usage(self, spec: WindowSpec) -> tuple[float, float]:
        if self._use_redis():
            base = self._key(spec)
            try:
                value = float(
                    self._raise(
                        keys=[f"{base}:log", f"{base}:sum"],
                        args=[spec.interval_s * 1000.0, "0", self._member()],
                    )
                )
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return value, spec.capacity
        local = self._local_spec(spec)
        return self._local.used(local), local.capacity

    def raise_used_to(self, spec: WindowSpec, used: float) -> None:
        if not math.isfinite(used):
            return
        # Keep the local share in step too, so a fall-back starts from the latest word.
        self._local.raise_used_to(self._local_spec(spec), used / self._expected_bots)
        if self._use_redis():
            base = self._key(spec)
            try:
                self._raise(
                    keys=[f"{base}:log", f"{base}:sum"],
                    args=[spec.interval_s * 1000.0, repr(float(used)), self._member()],
                )
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()

    def pause(self, spec: WindowSpec, seconds: float) -> None:
        seconds = clamp_pause(seconds)
        if seconds <= 0:
            return
        self._local.pause(self._local_spec(spec), seconds)
        if self._use_redis():
            try:
                self._pause(keys=[f"{self._key(spec)}:pause"], args=[max(seconds, 0.001) * 1000.0])
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()

    def pause_remaining(self, spec: WindowSpec) -> float:
        local = self._local.pause_remaining(self._local_spec(spec))
        if self._use_redis():
            try:
                shared = float(self._pause(keys=[f"{self._key(spec)}:pause"], args=[0])) / 1000.0
                if not math.isfinite(shared):
                    raise ValueError(f"the pause script answered {shared!r}")
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return max(clamp_pause(shared), local)
        return local

    def status(self) -> BackendStatus:
        with self._lock:
            degraded = self._state != _SHARED
            detail = self._detail
        scope = f"ip:{self._scope_ids['ip']} account:{self._scope_ids['account']}"
        return BackendStatus("redis", not degraded, degraded, scope, detail)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()
