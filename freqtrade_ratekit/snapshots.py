"""Results of expensive reader calls (`/profit`), recomputed in the background.

Stock Freqtrade rebuilds `/profit` on every request: it loads every trade from the database,
prices the open ones and runs its statistics (pandas) again, which grows with the number of
trades (about 50 ms for 200 open trades on two cores) even when every rate is in memory. A UI
that polls pays that again and again for an answer that has not changed.

A snapshot is the last answer for one set of arguments, with the data version it was computed
at. It is fresh while no trade changed (`invalidate()`, called after every database commit
that wrote something) and it is younger than `max_age`. Readers are served the snapshot at
once, fresh or not (stale-while-revalidate, like the rates behind it); a stale one is
recomputed by one background worker (at most once per `MIN_SPACING_S` after changes), which
also keeps every snapshot read within the last `KEEP_WARM_S` seconds fresh. A reader computes
on its own path only when there is no snapshot yet, or the one there is older than
`STALE_LIMIT_FACTOR x max_age` (the background refresh keeps failing): then it waits for one
computation, as stock always does.

Plain code: what to compute comes in as a callable from `patches/readers.py`.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from freqtrade_ratekit.documents import RatekitReaders, RatekitReaderSnapshot
from freqtrade_ratekit.workers import PeriodicWorker, describe_error

logger = logging.getLogger(__name__)

KEEP_WARM_S = 600.0
"""A snapshot nobody read for this long is dropped instead of refreshed."""
STALE_LIMIT_FACTOR = 10.0
"""A snapshot older than this many `max_age` is not served: the reader computes."""
MIN_SPACING_S = 1.0
"""Changes recompute a snapshot at most this often: a bot opening 100 trades commits 100
times in a few seconds, and one recomputation per commit would be wasted work."""


@dataclass
class _Snapshot:
    compute: Callable[[], Any]
    label: str
    value: Any = None
    version: int = -1
    computed_at: float = float("-inf")
    duration_s: float | None = None
    last_read: float = float("-inf")
    computing: bool = False
    hits: int = 0
    stale_hits: int = 0
    misses: int = 0
    recomputes: int = 0
    last_error: str | None = None

    @property
    def has_value(self) -> bool:
        return self.computed_at > float("-inf")


class ReaderSnapshots:
    """Thread-safe: REST threads read, the bot loop invalidates, one worker recomputes."""

    def __init__(
        self,
        *,
        max_age: float,
        after_background: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "reader-snapshots",
    ) -> None:
        if max_age <= 0:
            raise ValueError(f"max_age must be > 0, got {max_age!r}")
        self.max_age = float(max_age)
        self._after_background = after_background
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Snapshot] = {}
        self._version = 0
        self.worker = PeriodicWorker(
            self.refresh_due, interval=min(self.max_age / 2, MIN_SPACING_S), name=name
        )

    # -- reads -------------------------------------------------------------------------------
    def read(self, key: Hashable, compute: Callable[[], Any], label: str = "") -> Any:
        """The answer of `compute()` for `key`: the snapshot when there is a usable one
        (a copy: callers may change it), else computed here and kept."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Snapshot(compute, label or str(key))
            entry.compute = compute  # the newest caller's bound objects
            entry.last_read = now
            age = now - entry.computed_at
            usable = entry.has_value and age <= self.max_age * STALE_LIMIT_FACTOR
            fresh = usable and self._fresh(entry, now)
            if not usable:
                entry.misses += 1
            elif fresh:
                entry.hits += 1
            else:
                entry.stale_hits += 1
            value = entry.value
        if not usable:
            return copy.deepcopy(self._compute(entry))
        if not fresh:
            self.worker.trigger()
        return copy.deepcopy(value)

    def invalidate(self) -> None:
        """The data behind every snapshot changed: recompute them (in the background)."""
        with self._lock:
            self._version += 1
            warm = bool(self._entries)
        if warm:
            self.worker.trigger()

    # -- background --------------------------------------------------------------------------
    def refresh_due(self) -> None:
        """The worker's job: recompute stale snapshots that are still read; drop the rest.

        Raises after trying every due snapshot if any failed, so the worker backs off."""
        now = self._clock()
        with self._lock:
            for key in [k for k, e in self._entries.items() if now - e.last_read > KEEP_WARM_S]:
                del self._entries[key]
            due = [e for e in self._entries.values() if not e.computing and self._due(e, now)]
        failures = []
        for entry in due:
            try:
                self._compute(entry)
            except Exception as exc:
                failures.append(f"{entry.label}: {describe_error(exc)}")
            finally:
                if self._after_background is not None:
                    self._after_background()
        if failures:
            raise RuntimeError("; ".join(failures))

    def _compute(self, entry: _Snapshot) -> Any:
        with self._lock:
            version = self._version
            entry.computing = True
        started = self._clock()
        try:
            value = entry.compute()
        except Exception as exc:
            with self._lock:
                entry.computing = False
                entry.last_error = describe_error(exc)
            raise
        finished = self._clock()
        with self._lock:
            entry.computing = False
            entry.last_error = None
            entry.recomputes += 1
            entry.duration_s = finished - started
            if started >= entry.computed_at:  # never replace a newer answer with an older one
                entry.value, entry.version, entry.computed_at = value, version, started
        return value

    def _fresh(self, entry: _Snapshot, now: float) -> bool:
        """Computed since the last change and younger than max_age; call under the lock."""
        return (
            entry.has_value
            and entry.version == self._version
            and now - entry.computed_at < self.max_age
        )

    def _due(self, entry: _Snapshot, now: float) -> bool:
        """Too old, or changed and not recomputed within MIN_SPACING_S; call under the lock."""
        age = now - entry.computed_at
        return age >= self.max_age or (
            not self._fresh(entry, now) and age >= min(MIN_SPACING_S, self.max_age)
        )

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    # -- figures -----------------------------------------------------------------------------
    def snapshot(self) -> RatekitReaders:
        now = self._clock()
        with self._lock:
            rows: list[RatekitReaderSnapshot] = [
                {
                    "call": entry.label,
                    "age_s": (now - entry.computed_at) if entry.has_value else None,
                    "fresh": self._fresh(entry, now),
                    "compute_s": entry.duration_s,
                    "hits": entry.hits,
                    "stale_hits": entry.stale_hits,
                    "misses": entry.misses,
                    "recomputes": entry.recomputes,
                    "last_error": entry.last_error,
                }
                for entry in self._entries.values()
            ]
            version = self._version
        return {
            "max_age": self.max_age,
            "data_version": version,
            "snapshots": rows,
            "worker": self.worker.status(),
        }
