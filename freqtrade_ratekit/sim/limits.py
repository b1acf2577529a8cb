"""Binance's IP rate model as the emulator enforces it: rolling weight windows, 429 with
Retry-After, and escalating 418 bans for clients that keep sending after a 429.

Binance spot, "LIMITS" in General API Information
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits, read 2026-11-21):
REQUEST_WEIGHT 6000 per minute per IP; ORDERS per account (10 s and 1 day intervals); a 429
carries ``Retry-After``; "repeatedly violating rate limits and/or failing to back off after
receiving 429s will result in an automated IP ban (HTTP status 418)"; bans "scale in duration for
repeat offenders, from 2 minutes to 3 days". Binance counts in fixed intervals; the emulator uses
a rolling window (stricter, and independent of when a test starts inside a minute).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

BAN_MIN_S = 120.0  # "from 2 minutes"
BAN_MAX_S = 3 * 86400.0  # "to 3 days"


def interval_suffix(window_s: float) -> str:
    """Binance's ``(intervalNum)(intervalLetter)`` naming: 60 -> "1M", 10 -> "10S"."""
    seconds = max(1, round(window_s))
    for size, letter in ((86400, "D"), (3600, "H"), (60, "M")):
        if seconds % size == 0:
            return f"{seconds // size}{letter}"
    return f"{seconds}S"


def interval_name(window_s: float) -> tuple[str, int]:
    """exchangeInfo's ``interval`` and ``intervalNum`` for a window."""
    suffix = interval_suffix(window_s)
    names = {"S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}
    return names[suffix[-1]], int(suffix[:-1])


class RollingWindow:
    """Sum of weights charged within the last ``window_s`` seconds."""

    def __init__(self) -> None:
        self._entries: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def used(self, now: float, window_s: float) -> float:
        while self._entries and self._entries[0][0] <= now - window_s:
            self._total -= self._entries.popleft()[1]
        if not self._entries:
            self._total = 0.0
        return self._total

    def add(self, now: float, weight: float) -> None:
        self._entries.append((now, weight))
        self._total += weight

    def seconds_until_room(self, now: float, window_s: float, weight: float, limit: float) -> float:
        """How long until ``weight`` more fits under ``limit`` (window_s if it never will)."""
        excess = self.used(now, window_s) + weight - limit
        if weight > limit:
            return window_s
        freed = 0.0
        for charged_at, charged in self._entries:
            freed += charged
            if freed >= excess:
                return max(0.0, charged_at + window_s - now)
        return window_s


@dataclass
class Decision:
    status: int  # 200 admitted, 429 over the limit, 418 banned
    used: float  # weight in the window after this decision
    retry_after: int = 0  # whole seconds, as sent in Retry-After
    banned_until_ms: int = 0


@dataclass
class _ClientState:
    window: RollingWindow = field(default_factory=RollingWindow)
    back_off_until: float = 0.0
    violations: int = 0
    bans: int = 0
    banned_until: float = 0.0


@dataclass
class BanPolicy:
    """Requests a client may send inside a Retry-After before it is banned, and ban lengths."""

    strikes: int = 3
    first_ban_s: float = BAN_MIN_S
    max_ban_s: float = BAN_MAX_S


class WeightLimiter:
    """Per-client REQUEST_WEIGHT admission. Thread-safe; clocks are injected for tests."""

    def __init__(
        self, clock: Callable[[], float], wall_clock: Callable[[], float] | None = None
    ) -> None:
        self._clock = clock
        self._wall = wall_clock or clock
        self._lock = threading.Lock()
        self._clients: dict[str, _ClientState] = {}

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()

    def used(self, client: str, window_s: float) -> float:
        with self._lock:
            state = self._clients.get(client)
            return state.window.used(self._clock(), window_s) if state else 0.0

    def admit(
        self, client: str, weight: float, *, limit: float, window_s: float, policy: BanPolicy
    ) -> Decision:
        now = self._clock()
        with self._lock:
            state = self._clients.setdefault(client, _ClientState())
            used = state.window.used(now, window_s)
            if state.banned_until > now:
                return self._banned(state, now, used)
            if now < state.back_off_until:
                # Sent inside the Retry-After of an earlier 429: a strike towards a ban.
                state.violations += 1
                if state.violations >= policy.strikes:
                    length = min(policy.max_ban_s, policy.first_ban_s * 2**state.bans)
                    state.bans += 1
                    state.violations = 0
                    state.banned_until = now + length
                    state.back_off_until = state.banned_until
                    return self._banned(state, now, used)
                wait = state.back_off_until - now
                return Decision(429, used, max(1, math.ceil(wait)))
            if used + weight > limit:
                wait = state.window.seconds_until_room(now, window_s, weight, limit)
                retry_after = max(1, math.ceil(wait))
                state.back_off_until = now + retry_after
                return Decision(429, used, retry_after)
            state.violations = 0
            state.window.add(now, weight)
            return Decision(200, used + weight)

    def _banned(self, state: _ClientState, now: float, used: float) -> Decision:
        remaining = state.banned_until - now
        until_ms = int((self._wall() + remaining) * 1000)
        return Decision(418, used, max(1, math.ceil(remaining)), until_ms)


class CountWindow:
    """ORDERS counting per account: several windows, each with its own limit."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, float], RollingWindow] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def admit(
        self, account: str, limits: list[tuple[float, float]]
    ) -> tuple[bool, dict[float, int], float]:
        """limits: (window_s, limit) pairs. Returns (admitted, counts per window, retry_after)."""
        now = self._clock()
        with self._lock:
            windows = [
                (w, lim, self._windows.setdefault((account, w), RollingWindow()))
                for w, lim in limits
            ]
            for window_s, limit, window in windows:
                if window.used(now, window_s) + 1 > limit:
                    counts = {w: int(win.used(now, w)) for w, _, win in windows}
                    wait = window.seconds_until_room(now, window_s, 1, limit)
                    return False, counts, max(1.0, math.ceil(wait))
            for _, _, window in windows:
                window.add(now, 1)
            return True, {w: int(win.used(now, w)) for w, _, win in windows}, 0.0
