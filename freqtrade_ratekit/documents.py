"""The documents ratekit publishes: every snapshot, every REST body, declared once.

The components build them (`RateCache.snapshot`, `RateBook.snapshot`,
`FiatConverter.snapshot`, `Ledger.snapshot`, `ReaderSnapshots.snapshot`, `Runtime.status`),
and `metrics.py`, `cli/render.py`, `demo.py` and the benchmarks read them, by key: mypy checks
both ends against these declarations, so a renamed field is a type error, not a silently
missing metric or table cell. The REST routes (`api.py`) publish them in the OpenAPI document
of Freqtrade's API server.

`typing_extensions.TypedDict`, not `typing.TypedDict`: pydantic (which builds the OpenAPI
schemas) needs it on Python < 3.12. Class names carry a `Ratekit` prefix because they share
the OpenAPI schema namespace with Freqtrade's own models.

Numbers: a field typed `float` may hold an int in the JSON (a configured limit of 1200 stays
1200); the routes serialise the documents as they are, never through these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from typing_extensions import TypedDict, TypeIs

__all__ = [
    "CacheEntryState",
    "DocumentT",
    "FiatState",
    "RatekitBackend",
    "RatekitBatchCall",
    "RatekitCacheEntry",
    "RatekitCacheSide",
    "RatekitCacheStats",
    "RatekitClient",
    "RatekitCoinList",
    "RatekitEndpoint",
    "RatekitFiat",
    "RatekitFiatCalls",
    "RatekitFiatPair",
    "RatekitHistogram",
    "RatekitInactive",
    "RatekitPool",
    "RatekitRateBook",
    "RatekitRateBookSettings",
    "RatekitReaderSnapshot",
    "RatekitReaders",
    "RatekitRefreshReport",
    "RatekitRefresherStatus",
    "RatekitSharedStore",
    "RatekitStatus",
    "RatekitStream",
    "RatekitTradingBatch",
    "RatekitWaiting",
    "RatekitWeightTotals",
    "RatekitWeights",
    "RatekitWorkerStatus",
    "is_active",
]

CacheEntryState = Literal["fresh", "stale", "failing"]
FiatState = Literal["fresh", "stale", "never"]


class RatekitInactive(TypedDict):
    """A component that does not run in this bot (disabled, or not constructed yet)."""

    active: Literal[False]


# -- workers ---------------------------------------------------------------------------------


class RatekitWorkerStatus(TypedDict):
    """`workers.PeriodicWorker.status()`: one background thread's loop."""

    name: str
    running: bool
    interval_s: float
    last_run_at: float | None  # wall clock
    last_duration_s: float | None
    last_error: str | None
    consecutive_failures: int
    runs: int
    next_run_in_s: float | None


# -- rate cache ------------------------------------------------------------------------------


class RatekitCacheStats(TypedDict):
    """`RateCache.stats()`: one side's counters and settings."""

    name: str
    size: int  # every entry held: fresh, stale and failing
    capacity: int
    hits: int
    misses: int
    stale_reads: int
    negative_hits: int
    evictions: int
    hit_ratio: float
    ttl: float
    stale_ttl: float
    negative_ttl: float


class RatekitCacheEntry(TypedDict):
    """One pair held by a side cache; `updated_at` / `failed_at` are wall-clock timestamps."""

    pair: str
    rate: float | None
    age_s: float | None
    state: CacheEntryState
    error: str | None
    updated_at: float | None
    failed_at: float | None


class RatekitCacheSide(RatekitCacheStats):
    """`RateCache.snapshot()`: `stats()` plus every entry, sorted by pair."""

    entries: list[RatekitCacheEntry]


class RatekitRefreshReport(TypedDict):
    """`RefreshReport.as_dict()`: one pre-warm or background refresh run."""

    pairs: int
    requested: int
    seconds: float
    at: float  # wall clock, start of the run
    method: str
    cost: float
    failed: int
    failed_pairs: list[str]
    retry: int
    retry_pairs: list[str]
    error: str | None


class RatekitRefresherStatus(RatekitWorkerStatus):
    """`RateRefresher.status()`: its worker plus the reader requests and the last run."""

    pending_requests: int
    dropped_requests: int
    last_run: RatekitRefreshReport | None


class RatekitRateBookSettings(TypedDict):
    maxsize: int
    ttl: float
    stale_ttl: float
    negative_ttl: float
    refresh_interval: float
    prewarm_whitelist: bool
    trading_batch: bool
    trading_max_age: float
    stream: bool


class RatekitBatchCall(TypedDict):
    """The last batch call of the trading loop."""

    at: float  # wall clock, when it ended
    method: str  # e.g. fetch_bids_asks
    cost: float  # ccxt cost units
    pairs: int  # priced tickers in the answer
    seconds: float
    error: str | None


class RatekitStream(TypedDict):
    """`PriceStream.snapshot()`: the websocket price stream behind the trading reads."""

    method: str  # watch_bids_asks | watch_tickers
    running: bool
    connected: bool
    pairs: int  # followed pairs (subscribed on the current connection)
    connects: int  # connection attempts, each charged to the connection pool
    connect_wait_s: float  # time connects waited for that pool (enforce)
    failures: int
    consecutive_failures: int
    subscriptions: int  # subscription messages sent
    messages: int  # ticker updates received
    last_message_at: float | None  # wall clock
    last_error: str | None


class RatekitTradingBatch(TypedDict):
    """`TradingBatch.snapshot()`: how the bot's iterations were priced (rule 1)."""

    enabled: bool
    max_age: float  # rate_cache.trading_max_age
    batch_calls: int  # including failed ones and re-fetches
    failed_calls: int
    refetches: int  # a batch re-fetched because it went stale before its first use
    consecutive_failures: int
    served: int  # trading reads answered from the batch or the stream
    served_from_stream: int
    per_pair: int  # trading reads that went to stock's per-pair fetch
    per_pair_by_reason: dict[str, int]  # no_batch, backoff, failed, late, stale, ...
    served_age: RatekitHistogram  # age of the data of each served read, seconds
    iterations: RatekitHistogram  # duration of each bot iteration, seconds
    last_call: RatekitBatchCall | None
    stream: RatekitStream | None  # None: rate_cache.stream off (or no websocket)


class RatekitRateBook(TypedDict):
    """`RateBook.snapshot()`: the `/api/v1/ratekit/cache` document."""

    sides: dict[str, RatekitCacheSide]  # "entry", "exit"
    last_prewarm: RatekitRefreshReport | None
    last_refresh: RatekitRefreshReport | None
    refresher: RatekitRefresherStatus
    trading: RatekitTradingBatch
    settings: RatekitRateBookSettings


# -- fiat ------------------------------------------------------------------------------------


class RatekitFiatPair(TypedDict):
    pair: str  # like "btc/usd"
    gecko_id: str | None
    price: float | None
    age_s: float | None
    state: FiatState
    last_error: str | None
    next_refresh_in_s: float | None


class RatekitCoinList(TypedDict):
    entries: int
    age_s: float | None
    source: str  # disk | network | shared | none
    path: str
    last_error: str | None


class RatekitFiatCalls(TypedDict):
    simple_price: int
    coins_list: int
    errors: int
    status_429: int
    shared_hits: int


class RatekitSharedStore(TypedDict):
    kind: str
    healthy: bool


class RatekitFiat(TypedDict):
    """`FiatConverter.snapshot()`: the `/api/v1/ratekit/fiat` document."""

    enabled: bool
    base_url: str  # masked
    refresh_interval: float
    stale_after: float
    running: bool
    pairs: list[RatekitFiatPair]
    coin_list: RatekitCoinList
    last_refresh_at: float | None
    consecutive_failures: int
    paused_until: float | None
    calls: RatekitFiatCalls
    shared_store: RatekitSharedStore | None


# -- weights ---------------------------------------------------------------------------------


class RatekitBackend(TypedDict):
    kind: str
    healthy: bool
    degraded: bool
    scope: str
    detail: str


class RatekitPool(TypedDict):
    name: str
    scope: str
    limit: float
    interval_s: float
    effective_limit: float
    used: float
    remaining: float
    server_used: float | None
    server_used_at: float | None
    paused_until: float | None  # wall clock
    status_429: int
    status_418: int


class RatekitEndpoint(TypedDict):
    endpoint: str
    calls: int
    weight: float
    wait_s: float
    status_429: int
    status_418: int


class RatekitHistogram(TypedDict):
    """Cumulative `[upper bound (s), count]` buckets, the last one `["+Inf", count]`."""

    buckets: list[list[float | str]]
    sum: float
    count: int


class RatekitWeightTotals(TypedDict):
    calls: int
    weight: float
    wait_s: float
    status_429: int
    status_418: int


class RatekitWaiting(TypedDict):
    """Calls held back by `enforce` in this process."""

    calls: int  # waiting for admission right now
    blocked_s: float  # wall time during which at least one call was waiting


class RatekitClient(TypedDict):
    """One non-bot client of a scope (download-data, list-markets, webserver, ...): a process
    whose calls run at the lowest priority, as the client registry (Redis, with a TTL) or, with
    the memory backend, the process itself knows it. Wall-clock times."""

    id: str  # random per process
    name: str  # the Freqtrade subcommand, e.g. download-data
    run_mode: str  # Freqtrade's run mode, e.g. util_exchange, webserver, backtest
    host: str
    pid: int
    state: Literal["running", "finished"]
    started_at: float
    updated_at: float
    calls: int
    weight: float
    wait_s: float  # summed over calls (concurrent waits add up)
    blocked_s: float  # wall time with at least one call waiting
    waiting: int  # calls waiting at `updated_at`
    status_429: int
    status_418: int


class RatekitWeights(TypedDict):
    """`Ledger.snapshot()`: the `/api/v1/ratekit/weights` document."""

    mode: str  # off | observe | enforce
    preset: str
    headroom: float
    exchange: str
    background: bool  # this process is a non-bot client: its calls run at the lowest priority
    reserve: float  # weights.reserve: the share of each pool only bots may use
    backend: RatekitBackend
    pools: list[RatekitPool]
    endpoints: list[RatekitEndpoint]
    wait_histogram: dict[str, RatekitHistogram]  # by endpoint
    totals: RatekitWeightTotals
    waiting: RatekitWaiting
    client: RatekitClient | None  # this process, when it is a non-bot client
    clients: list[RatekitClient]  # the non-bot clients of the scope (this one included)


# -- reader snapshots ------------------------------------------------------------------------


class RatekitReaderSnapshot(TypedDict):
    call: str
    age_s: float | None
    fresh: bool
    compute_s: float | None
    hits: int
    stale_hits: int
    misses: int
    recomputes: int
    last_error: str | None


class RatekitReaders(TypedDict):
    """`ReaderSnapshots.snapshot()`: the `/profit` snapshots served to readers."""

    max_age: float
    data_version: int
    snapshots: list[RatekitReaderSnapshot]
    worker: RatekitWorkerStatus


# -- the whole bot ---------------------------------------------------------------------------


class RatekitStatus(TypedDict):
    """`Runtime.status()`: the `/api/v1/ratekit/status` document."""

    version: str
    freqtrade_version: str
    enabled: bool
    exchange: str | None
    settings: dict[str, Any]  # RatekitSettings.effective(), secrets masked
    rate_cache: RatekitRateBook | RatekitInactive
    fiat: RatekitFiat | RatekitInactive
    weights: RatekitWeights | RatekitInactive
    readers: RatekitReaders | RatekitInactive


DocumentT = TypeVar("DocumentT", bound=Mapping[str, Any])


def is_active(section: DocumentT | RatekitInactive) -> TypeIs[DocumentT]:
    """True for a component's document, False for `{"active": False}` (narrows the type)."""
    return section.get("active", True) is not False
