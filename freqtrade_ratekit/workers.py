"""Background work and waiting, for the whole package: one thread loop, one backoff, one cap.

Why one module: the rate refresher, the reader snapshots, the fiat converter and the weights
ledger all wait after failures. They share one full-jitter exponential backoff (`Backoff`, an
immutable settings object like urllib3's `Retry`; `RetryPolicy` for 429/418 pauses is built on
the same computation), one cap for every pause (`MAX_PAUSE_S`), one `Retry-After` parser with
one contract, and one worker thread loop (`PeriodicWorker`). No Freqtrade import.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from email.utils import parsedate_to_datetime

from freqtrade_ratekit.documents import RatekitWorkerStatus

logger = logging.getLogger(__name__)

# The longest any pause ratekit honours may last, whoever asks for it (an exchange's 418, a
# CoinGecko Retry-After): Binance bans last "from 2 minutes to 3 days" (Binance spot API docs,
# "LIMITS", read 2026-11). A longer Retry-After is a broken header, not a reason to stop for years.
MAX_PAUSE_S = 3 * 86400.0


# Largest exponent of 2.0 a float holds: `backoff_ceiling` is min(cap, base * 2**(n-1)) exactly
# (a product that overflows is inf, and min() then gives the cap).
_MAX_EXPONENT = 1023


def backoff_ceiling(base: float, cap: float, attempt: int) -> float:
    """The largest delay the `attempt`-th consecutive failure (1 = first) may wait:
    min(cap, base * 2**(attempt-1)). The one exponential every ratekit backoff uses."""
    return min(cap, base * 2.0 ** min(max(attempt - 1, 0), _MAX_EXPONENT))


def full_jitter(ceiling: float, rng: random.Random | None = None) -> float:
    """A delay drawn uniformly from [0, ceiling] ("full jitter", AWS architecture blog,
    "Exponential Backoff and Jitter"): bots that failed together do not retry together."""
    return (rng or random).uniform(0.0, ceiling)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff, full jitter: attempt n waits uniform(0, min(cap, base * 2**(n-1))).

    The settings of `PeriodicWorker` runs; `RetryPolicy` and the fiat converter use the same
    `backoff_ceiling` and `full_jitter` with their own (wider) validated ranges."""

    base: float = 1.0
    cap: float = 60.0

    def __post_init__(self) -> None:
        if self.base <= 0:
            raise ValueError(f"Backoff.base must be > 0, got {self.base!r}")
        if self.cap < self.base:
            raise ValueError(f"Backoff.cap ({self.cap!r}) must be >= base ({self.base!r})")

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt `attempt` (1 = first failure) may wait."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt!r}")
        return backoff_ceiling(self.base, self.cap, attempt)

    def delay(self, attempt: int, rng: random.Random) -> float:
        return full_jitter(self.ceiling(attempt), rng)


@dataclass(frozen=True)
class RetryPolicy:
    """Pause = the server's wait (Retry-After, else `default_retry_after_s`) plus, from the
    second consecutive failure on, a full-jitter backoff `uniform(0, min(cap, base * 2**(n-2)))`
    so that bots sharing an IP do not all come back at the same instant. Capped at
    `max_pause_s` (Binance bans last up to 3 days)."""

    default_retry_after_s: float = 5.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    max_pause_s: float = MAX_PAUSE_S

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"retry policy {spec.name} must be a finite number of seconds >= 0, "
                    f"got {value!r}"
                )

    def backoff_bound(self, streak: int) -> float:
        """Upper bound of the jitter for the `streak`-th consecutive failure (1 = first)."""
        if streak <= 1:
            return 0.0
        return backoff_ceiling(self.backoff_base_s, self.backoff_cap_s, streak - 1)

    def pause_seconds(
        self, retry_after_s: float | None, streak: int, rng: random.Random | None = None
    ) -> float:
        """Always finite, within [0, max_pause_s]: a NaN server wait counts as absent, an
        infinite one as the longest pause."""
        if retry_after_s is None or math.isnan(retry_after_s):
            server_wait = self.default_retry_after_s
        else:
            server_wait = min(max(0.0, retry_after_s), self.max_pause_s)
        jitter = full_jitter(self.backoff_bound(streak), rng)
        return min(self.max_pause_s, server_wait + jitter)


def clamp_pause(seconds: float) -> float:
    """`seconds` as a pause ratekit may honour: NaN and negatives are 0, the rest is capped at
    `MAX_PAUSE_S` (for pauses that do not come through a `RetryPolicy`, e.g. a usage
    header's reset time)."""
    if math.isnan(seconds) or seconds <= 0:
        return 0.0
    return min(seconds, MAX_PAUSE_S)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date (RFC 9110
    section 10.2.3) read against the wall-clock `now`.

    The one contract: None when absent or unreadable (NaN and infinities, a date without a
    zone, garbage), so each caller applies its own default; a date in the past or a negative
    number gives 0; anything longer than `MAX_PAUSE_S` gives `MAX_PAUSE_S`."""
    if value is None:
        return None
    text = str(value).strip()
    number = _finite_float(text)
    if number is None:
        try:
            moment = parsedate_to_datetime(text)
            if moment.tzinfo is None:
                return None
            number = moment.timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if not math.isfinite(number):
            return None
    return min(MAX_PAUSE_S, max(0.0, number))


def _finite_float(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


_MAX_ERROR_CHARS = 300


def describe_error(exc: BaseException) -> str:
    """A short, single-line description of an exception, for status figures and logs."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


# ---------------------------------------------------------------------------------------------
# PeriodicWorker
# ---------------------------------------------------------------------------------------------


class PeriodicWorker:
    """Runs `job` every `interval` seconds (0 = only when triggered) in one daemon thread.

    `trigger()` asks for an early run; triggers that arrive while a run is pending or in
    progress coalesce into at most one more run. While the job keeps failing, runs (including
    triggered ones) wait out the backoff delay, so a failing exchange is not hammered.
    """

    def __init__(
        self,
        job: Callable[[], object],
        *,
        interval: float,
        name: str,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        timer: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval!r}")
        self._job = job
        self.interval = float(interval)
        self.name = name
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._timer = timer
        self._wall_clock = wall_clock
        self._cond = threading.Condition()
        self._run_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._triggered = False
        self._not_before: float | None = None  # end of the current backoff, timer() units
        self._next_due: float | None = None  # next periodic run, timer() units
        self._runs = 0
        self._consecutive_failures = 0
        self._last_run_at: float | None = None
        self._last_duration: float | None = None
        self._last_error: str | None = None

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (no-op when running). The first periodic run is one interval away."""
        with self._cond:
            previous = self._thread
            if previous is not None and previous.is_alive() and not self._stopping:
                return
        if previous is not None and previous is not threading.current_thread():
            previous.join()  # a stop() is finishing a run: let that thread end first
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            if self.interval > 0:
                self._next_due = self._timer() + self.interval
            # every ratekit thread is named "ratekit-<name>", prefixed once
            prefix = "" if self.name.startswith("ratekit-") else "ratekit-"
            self._thread = threading.Thread(
                target=self._loop, name=f"{prefix}{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Wake the thread and wait up to `timeout` s for it to end (a running job is finished).

        Returns True when the thread has ended.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def trigger(self) -> None:
        """Request a run as soon as possible (after any backoff); coalesced."""
        with self._cond:
            self._triggered = True
            self._cond.notify_all()

    def run_now(self) -> bool:
        """Run the job in the calling thread now, single-flight with the background thread.

        Ignores the backoff (the caller decided). Returns True when the job succeeded.
        """
        with self._run_lock:
            with self._cond:
                self._triggered = False
            return self._run_job()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping

    # -- internals ----------------------------------------------------------------------------

    def _due_in(self, now: float) -> float | None:
        """Seconds until the next run may start, None when nothing is scheduled."""
        candidates = []
        if self._triggered:
            candidates.append(now)
        if self._next_due is not None:
            candidates.append(self._next_due)
        if not candidates:
            return None
        start = min(candidates)
        if self._not_before is not None:
            start = max(start, self._not_before)
        return max(0.0, start - now)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    wait = self._due_in(self._timer())
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
                self._triggered = False
            with self._run_lock:
                self._run_job()

    def _run_job(self) -> bool:
        """Run once and account for it; called with `_run_lock` held."""
        started = self._timer()
        started_wall = self._wall_clock()
        error: BaseException | None = None
        try:
            self._job()
        except Exception as exc:
            error = exc
        finished = self._timer()
        with self._cond:
            self._runs += 1
            self._last_run_at = started_wall
            self._last_duration = finished - started
            self._next_due = finished + self.interval if self.interval > 0 else None
            if error is None:
                if self._consecutive_failures:
                    logger.info(
                        "ratekit %s: recovered after %d failed run(s)",
                        self.name,
                        self._consecutive_failures,
                    )
                self._consecutive_failures = 0
                self._last_error = None
                self._not_before = None
                return True
            self._consecutive_failures += 1
            self._last_error = describe_error(error)
            delay = self.backoff.delay(self._consecutive_failures, self._rng)
            self._not_before = finished + delay
            self._next_due = self._not_before  # retry after the backoff, not a period later
            failures = self._consecutive_failures
        level = logging.WARNING if failures == 1 else logging.DEBUG
        logger.log(
            level,
            "ratekit %s: run failed (%d in a row), retrying in %.1f s: %s",
            self.name,
            failures,
            delay,
            self._last_error,
        )
        return False

    # -- figures ------------------------------------------------------------------------------

    def status(self) -> RatekitWorkerStatus:
        with self._cond:
            due = self._due_in(self._timer())
            return {
                "name": self.name,
                "running": self.running,
                "interval_s": self.interval,
                "last_run_at": self._last_run_at,
                "last_duration_s": self._last_duration,
                "last_error": self._last_error,
                "consecutive_failures": self._consecutive_failures,
                "runs": self._runs,
                "next_run_in_s": due,
            }


def join_thread(thread: threading.Thread, timeout: float) -> bool:
    """Join `thread` for up to `timeout` s; True when it ended, else a warning names it."""
    if thread is not threading.current_thread():
        thread.join(timeout)
    if thread.is_alive() and thread is not threading.current_thread():
        logger.warning("ratekit: thread %s still running %.1f s after stop", thread.name, timeout)
        return False
    return True
