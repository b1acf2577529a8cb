"""Rates kept in three states: fresh (for trading), stale (for readers only), failing (left alone).

`RateCache` is a drop-in for the `FtTTLCache` objects that `Exchange.get_rate()` uses: its
mapping face (`get`, `[]`, `in`, `len`, iteration) only ever shows *fresh* rates, so a trading
decision never sees an older price than stock Freqtrade would give it. Readers (REST, Telegram)
use `read()`, which may also answer with a stale rate, and never with anything that needs the
network. Pairs whose price could not be fetched are remembered for `negative_ttl` so a closed
market costs one call per period instead of one per read.

A pair is one LRU entry whatever its state: a failure mark and the last good rate live together,
and a failing pair keeps showing its last good rate to readers until that rate is `stale_ttl`
old (state "failing", rate present). `get()` still returns a rate that is fresh even if a later
refresh of that pair failed, exactly as `FtTTLCache` would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from cachetools import Cache, LRUCache

from freqtrade_ratekit.documents import RatekitCacheEntry, RatekitCacheSide, RatekitCacheStats

ReadState = Literal["fresh", "stale", "failing", "missing"]
EntryState = Literal["fresh", "stale", "failing"]

_MISSING = object()


@dataclass(frozen=True)
class CachedRate:
    """What a reader gets: the rate (if any may be shown), its state, its age and the last error."""

    rate: float | None
    state: ReadState
    age: float | None
    error: str | None = None


@dataclass
class _Entry:
    rate: float | None = None
    stored_at: float | None = None  # timer() of the last good rate
    stored_wall: float | None = None  # wall_clock() of the last good rate
    error: str | None = None
    failed_at: float | None = None  # timer() of the last failure since the last good rate
    failed_wall: float | None = None


class _CountingLRU(LRUCache):
    """An LRUCache that counts capacity evictions and can be read without touching LRU order."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.evictions = 0

    def popitem(self) -> tuple[Any, Any]:
        # Cache.__setitem__ calls popitem() only to make room: every call is an eviction.
        item = super().popitem()
        self.evictions += 1
        return item

    def peek(self, key: str) -> _Entry | None:
        try:
            entry: _Entry = Cache.__getitem__(self, key)
        except KeyError:
            return None
        return entry

    def touch(self, key: str) -> None:
        LRUCache.__getitem__(self, key)  # moves the key to the most-recently-used end

    def snapshot(self) -> list[tuple[str, _Entry]]:
        """(pair, entry) in LRU order, oldest first, without touching the order."""
        return [(key, Cache.__getitem__(self, key)) for key in self]


class RateCache(MutableMapping[str, float]):
    """Thread-safe LRU of rates with fresh / stale / failing states and hit/miss figures.

    Mapping view (what Freqtrade sees): only fresh rates. `len()` and iteration count fresh
    rates; `stats()["size"]` counts every entry held (fresh, stale and failing).
    Counters: `get()` and `read()` count hits/misses; `read()` counts stale reads; `failing()`
    and a `read()` answered only by a failure mark count negative hits. `__getitem__`,
    `__contains__` and the planning call `pairs_needing_refresh()` count nothing.
    """

    def __init__(
        self,
        *,
        maxsize: int,
        ttl: float,
        stale_ttl: float,
        negative_ttl: float,
        timer: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        name: str = "",
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize!r}")
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {ttl!r}")
        if stale_ttl < ttl:
            raise ValueError(f"stale_ttl ({stale_ttl!r}) must be >= ttl ({ttl!r})")
        if negative_ttl < 0:
            raise ValueError(f"negative_ttl must be >= 0, got {negative_ttl!r}")
        self.name = name
        self.maxsize = maxsize
        self.ttl = float(ttl)
        self.stale_ttl = float(stale_ttl)
        self.negative_ttl = float(negative_ttl)
        self._timer = timer
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._lru = _CountingLRU(maxsize)
        self._hits = 0
        self._misses = 0
        self._stale_reads = 0
        self._negative_hits = 0

    def __repr__(self) -> str:
        return (
            f"RateCache(name={self.name!r}, maxsize={self.maxsize}, ttl={self.ttl}, "
            f"stale_ttl={self.stale_ttl}, negative_ttl={self.negative_ttl})"
        )

    # -- state of one entry (call with the lock held) -------------------------------------

    def _age(self, entry: _Entry, now: float) -> float | None:
        return None if entry.stored_at is None else max(0.0, now - entry.stored_at)

    def _is_fresh(self, entry: _Entry, now: float) -> bool:
        age = self._age(entry, now)
        return entry.rate is not None and age is not None and age < self.ttl

    def _is_showable(self, entry: _Entry, now: float) -> bool:
        age = self._age(entry, now)
        return entry.rate is not None and age is not None and age < self.stale_ttl

    def _failure_active(self, entry: _Entry, now: float) -> bool:
        return entry.failed_at is not None and now - entry.failed_at < self.negative_ttl

    def _is_dead(self, entry: _Entry, now: float) -> bool:
        return not self._is_showable(entry, now) and not self._failure_active(entry, now)

    def _live_entry(self, pair: str, now: float, *, touch: bool) -> _Entry | None:
        """The entry for `pair`, dropping it first when it has nothing left to show."""
        entry = self._lru.peek(pair)
        if entry is None:
            return None
        if self._is_dead(entry, now):
            del self._lru[pair]
            return None
        if touch:
            self._lru.touch(pair)
        return entry

    def _make_room(self, pair: str, now: float) -> None:
        """Before an insert into a full cache, drop dead entries so no live one is evicted."""
        if pair not in self._lru and len(self._lru) >= self.maxsize:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        for pair, entry in self._lru.snapshot():
            if self._is_dead(entry, now):
                del self._lru[pair]

    # -- Freqtrade's side: fresh only ------------------------------------------------------

    def get(self, pair: str, default: Any = None) -> Any:
        """The fresh rate of `pair`, else `default`. This is the only read trading code does."""
        with self._lock:
            now = self._timer()
            entry = self._live_entry(pair, now, touch=True)
            if entry is not None and self._is_fresh(entry, now):
                self._hits += 1
                return entry.rate
            self._misses += 1
            return default

    def __getitem__(self, pair: str) -> float:
        with self._lock:
            now = self._timer()
            entry = self._live_entry(pair, now, touch=True)
            if entry is None or not self._is_fresh(entry, now) or entry.rate is None:
                raise KeyError(pair)
            return entry.rate

    def __setitem__(self, pair: str, rate: float) -> None:
        """Store a freshly computed rate; clears any failure mark of the pair."""
        with self._lock:
            now = self._timer()
            self._make_room(pair, now)
            self._lru[pair] = _Entry(rate=rate, stored_at=now, stored_wall=self._wall_clock())

    def __delitem__(self, pair: str) -> None:
        with self._lock:
            del self._lru[pair]

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, str):
            return False
        with self._lock:
            now = self._timer()
            entry = self._lru.peek(pair)
            return entry is not None and self._is_fresh(entry, now)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            now = self._timer()
            fresh = [pair for pair, entry in self._lru.snapshot() if self._is_fresh(entry, now)]
        return iter(fresh)

    def __len__(self) -> int:
        with self._lock:
            now = self._timer()
            return sum(1 for _, entry in self._lru.snapshot() if self._is_fresh(entry, now))

    def pop(self, pair: str, default: Any = _MISSING) -> Any:
        """Remove `pair` whatever its state; return its fresh rate (or `default`)."""
        with self._lock:
            now = self._timer()
            entry = self._lru.peek(pair)
            if entry is not None:
                del self._lru[pair]
                if self._is_fresh(entry, now):
                    return entry.rate
            if default is _MISSING:
                raise KeyError(pair)
            return default

    def clear(self) -> None:
        """Drop every entry; the counters are kept (they describe the cache's whole life)."""
        with self._lock:
            self._lru.clear()

    # -- readers: fresh or stale, never the network ---------------------------------------

    def read(self, pair: str) -> CachedRate:
        """What a REST/Telegram reader may show for `pair` right now."""
        with self._lock:
            now = self._timer()
            entry = self._live_entry(pair, now, touch=True)
            if entry is None:
                self._misses += 1
                return CachedRate(rate=None, state="missing", age=None)
            age = self._age(entry, now)
            showable = self._is_showable(entry, now)
            if self._is_fresh(entry, now):
                self._hits += 1
            elif showable:
                self._stale_reads += 1
            else:
                self._negative_hits += 1
            state: ReadState
            if entry.error is not None:
                state = "failing"
            else:
                state = "fresh" if self._is_fresh(entry, now) else "stale"
            return CachedRate(
                rate=entry.rate if showable else None,
                state=state,
                age=age if showable else None,
                error=entry.error,
            )

    # -- negative cache ---------------------------------------------------------------------

    def mark_failed(self, pair: str, error: str) -> None:
        """Remember that fetching `pair` failed; its last good rate (if any) is kept for readers."""
        with self._lock:
            now = self._timer()
            entry = self._live_entry(pair, now, touch=True)
            if entry is None:
                if self.negative_ttl == 0:
                    return  # nothing to remember, and no reason to evict a good rate for it
                self._make_room(pair, now)
                entry = _Entry()
                self._lru[pair] = entry
            entry.error = error
            entry.failed_at = now
            entry.failed_wall = self._wall_clock()

    def failing(self, pair: str) -> str | None:
        """The last error of `pair` while it is inside its negative TTL, else None (retry it)."""
        with self._lock:
            now = self._timer()
            entry = self._live_entry(pair, now, touch=False)
            if entry is not None and self._failure_active(entry, now):
                self._negative_hits += 1
                return entry.error
            return None

    # -- planning ---------------------------------------------------------------------------

    def pairs_needing_refresh(self, pairs: Iterable[str], *, horizon: float) -> list[str]:
        """Pairs that are missing or stop being fresh within `horizon` seconds, in input order.

        Pairs inside their negative TTL are left out, so a closed market is asked for at most
        once per negative TTL. Does not count as a read and does not touch LRU order.
        """
        if horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon!r}")
        due: list[str] = []
        seen: set[str] = set()
        with self._lock:
            now = self._timer()
            for pair in pairs:
                if pair in seen:
                    continue
                seen.add(pair)
                entry = self._live_entry(pair, now, touch=False)
                if entry is None:
                    due.append(pair)
                    continue
                if self._failure_active(entry, now):
                    continue
                age = self._age(entry, now)
                if entry.rate is None or age is None or age + horizon >= self.ttl:
                    due.append(pair)
        return due

    def failing_among(self, pairs: Iterable[str]) -> set[str]:
        """The `pairs` inside their negative TTL. A planning call: counts nothing."""
        with self._lock:
            now = self._timer()
            return {
                pair
                for pair in pairs
                if (entry := self._lru.peek(pair)) is not None and self._failure_active(entry, now)
            }

    # -- figures ----------------------------------------------------------------------------

    def stats(self) -> RatekitCacheStats:
        with self._lock:
            self._sweep(self._timer())
            reads = self._hits + self._misses
            return {
                "name": self.name,
                "size": len(self._lru),
                "capacity": self.maxsize,
                "hits": self._hits,
                "misses": self._misses,
                "stale_reads": self._stale_reads,
                "negative_hits": self._negative_hits,
                "evictions": self._lru.evictions,
                "hit_ratio": self._hits / reads if reads else 0.0,
                "ttl": self.ttl,
                "stale_ttl": self.stale_ttl,
                "negative_ttl": self.negative_ttl,
            }

    def snapshot(self) -> RatekitCacheSide:
        """`stats()` plus `entries()`: one side's section of the ratekit cache route."""
        with self._lock:
            return {**self.stats(), "entries": self.entries()}

    def entries(self) -> list[RatekitCacheEntry]:
        """Every entry held, sorted by pair; a failing entry without a showable rate has rate None.

        `updated_at` / `failed_at` are wall-clock timestamps (seconds since the epoch).
        """
        with self._lock:
            now = self._timer()
            self._sweep(now)
            rows: list[RatekitCacheEntry] = []
            for pair, entry in sorted(self._lru.snapshot(), key=lambda item: item[0]):
                showable = self._is_showable(entry, now)
                state: EntryState
                if entry.error is not None:
                    state = "failing"
                else:
                    state = "fresh" if self._is_fresh(entry, now) else "stale"
                rows.append(
                    {
                        "pair": pair,
                        "rate": entry.rate if showable else None,
                        "age_s": self._age(entry, now) if showable else None,
                        "state": state,
                        "error": entry.error,
                        "updated_at": entry.stored_wall if showable else None,
                        "failed_at": entry.failed_wall,
                    }
                )
            return rows
