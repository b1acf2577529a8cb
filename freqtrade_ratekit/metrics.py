"""Prometheus exposition of the ratekit figures, built from the component snapshots.

The figures already live in the components (cache counters, fiat state, weight ledger), so
nothing is mirrored into prometheus-client's own Counter/Gauge objects: a custom collector
reads the snapshots at scrape time and turns them into metric families. Each `render()` uses
a private registry, so ratekit never touches (or collides with) the process-wide default
registry that a strategy or another library may use.

Snapshots are read tolerantly: a missing key skips a sample, a section may be
`{"active": False}`, and a component whose snapshot raises is reported as such instead of
failing the whole scrape.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from freqtrade_ratekit import __version__
from freqtrade_ratekit.runtime import Runtime

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

FIAT_STATES = ("fresh", "stale", "never")
CACHE_STATES = ("fresh", "stale", "failing")
RATE_LIMIT_STATUSES = ("429", "418")


@dataclass(frozen=True)
class MetricSpec:
    """One exposed metric: `name` is what PromQL sees (counters end in `_total`)."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "ratekit_info",
        GAUGE,
        "Always 1; labels carry the ratekit and Freqtrade versions and the exchange id.",
        ("version", "freqtrade_version", "exchange"),
    ),
    MetricSpec(
        "ratekit_component_active",
        GAUGE,
        "1 when the component (rate_cache, fiat, weights) is running, else 0.",
        ("component",),
    ),
    MetricSpec(
        "ratekit_component_snapshot_error",
        GAUGE,
        "1 when reading the component's snapshot failed during this scrape, else 0.",
        ("component",),
    ),
    # rate cache
    MetricSpec("ratekit_cache_hits_total", COUNTER, "Rate cache reads answered fresh.", ("side",)),
    MetricSpec(
        "ratekit_cache_misses_total",
        COUNTER,
        "Rate cache reads with nothing usable cached.",
        ("side",),
    ),
    MetricSpec(
        "ratekit_cache_stale_reads_total",
        COUNTER,
        "Rate cache reads answered with a stale rate (read paths only).",
        ("side",),
    ),
    MetricSpec(
        "ratekit_cache_negative_hits_total",
        COUNTER,
        "Rate cache reads of a pair remembered as failing (no exchange call made).",
        ("side",),
    ),
    MetricSpec(
        "ratekit_cache_evictions_total",
        COUNTER,
        "Rates evicted from the rate cache because it was full (LRU).",
        ("side",),
    ),
    MetricSpec("ratekit_cache_entries", GAUGE, "Rates held in the rate cache.", ("side",)),
    MetricSpec(
        "ratekit_cache_max_entries",
        GAUGE,
        "Capacity of the rate cache (rate_cache.maxsize).",
        ("side",),
    ),
    MetricSpec(
        "ratekit_cache_hit_ratio",
        GAUGE,
        "Fresh hits / (hits + misses) of the rate cache since start (0-1), as the cache reports.",
        ("side",),
    ),
    MetricSpec(
        "ratekit_cache_entries_by_state",
        GAUGE,
        "Rates listed in the cache snapshot by state (fresh, stale, failing).",
        ("side", "state"),
    ),
    MetricSpec(
        "ratekit_prewarm_duration_seconds",
        GAUGE,
        "Wall time of the last rate pre-warm.",
    ),
    MetricSpec("ratekit_prewarm_pairs", GAUGE, "Pairs loaded by the last rate pre-warm."),
    MetricSpec(
        "ratekit_prewarm_failed_pairs", GAUGE, "Pairs the last rate pre-warm could not price."
    ),
    MetricSpec(
        "ratekit_prewarm_last_timestamp_seconds",
        GAUGE,
        "Unix time of the last rate pre-warm.",
    ),
    MetricSpec("ratekit_refresher_running", GAUGE, "1 while the background rate refresher runs."),
    MetricSpec("ratekit_refresher_runs_total", COUNTER, "Background rate refresh runs."),
    MetricSpec(
        "ratekit_refresher_consecutive_failures",
        GAUGE,
        "Background rate refresh runs that failed in a row.",
    ),
    MetricSpec(
        "ratekit_refresher_last_duration_seconds",
        GAUGE,
        "Wall time of the last background rate refresh run.",
    ),
    MetricSpec(
        "ratekit_refresher_last_run_timestamp_seconds",
        GAUGE,
        "Unix time of the last background rate refresh run.",
    ),
    # fiat
    MetricSpec(
        "ratekit_fiat_price",
        GAUGE,
        "Last known fiat price of a coin (pair like btc/usd).",
        ("pair",),
    ),
    MetricSpec(
        "ratekit_fiat_price_age_seconds",
        GAUGE,
        "Age of the last known fiat price; absent when never fetched.",
        ("pair",),
    ),
    MetricSpec(
        "ratekit_fiat_state",
        GAUGE,
        "1 for the current state of a fiat price (fresh, stale, never), 0 for the others.",
        ("pair", "state"),
    ),
    MetricSpec(
        "ratekit_fiat_calls_total",
        COUNTER,
        "CoinGecko calls made, by call (simple_price, coins_list).",
        ("call",),
    ),
    MetricSpec("ratekit_fiat_errors_total", COUNTER, "CoinGecko calls that failed."),
    MetricSpec(
        "ratekit_fiat_rate_limited_responses_total",
        COUNTER,
        "CoinGecko responses with HTTP 429.",
    ),
    MetricSpec(
        "ratekit_fiat_consecutive_failures",
        GAUGE,
        "Fiat refreshes that failed in a row.",
    ),
    MetricSpec(
        "ratekit_fiat_paused",
        GAUGE,
        "1 while fiat refreshes are paused (CoinGecko Retry-After or back-off), else 0.",
    ),
    MetricSpec(
        "ratekit_fiat_last_refresh_timestamp_seconds",
        GAUGE,
        "Unix time of the last successful fiat refresh.",
    ),
    MetricSpec("ratekit_fiat_coin_list_entries", GAUGE, "Coins in the CoinGecko coin list in use."),
    MetricSpec(
        "ratekit_fiat_coin_list_age_seconds", GAUGE, "Age of the CoinGecko coin list in use."
    ),
    # weights
    MetricSpec(
        "ratekit_weight_info",
        GAUGE,
        "Always 1; labels carry the weight accounting mode, preset and backend kind.",
        ("mode", "preset", "backend"),
    ),
    MetricSpec(
        "ratekit_weight_headroom_ratio",
        GAUGE,
        "Fraction of each published limit ratekit lets the bot use (0-1).",
    ),
    MetricSpec(
        "ratekit_weight_backend_healthy",
        GAUGE,
        "1 when the weight storage backend answers, else 0.",
        ("backend",),
    ),
    MetricSpec(
        "ratekit_weight_backend_degraded",
        GAUGE,
        "1 while running on a conservative local share because the shared backend is down.",
        ("backend",),
    ),
    MetricSpec(
        "ratekit_weight_pool_used",
        GAUGE,
        "Weight used in the pool's current window (local count, corrected by the exchange).",
        ("pool", "scope"),
    ),
    MetricSpec(
        "ratekit_weight_pool_limit",
        GAUGE,
        "Published limit of the pool per window.",
        ("pool", "scope"),
    ),
    MetricSpec(
        "ratekit_weight_pool_effective_limit",
        GAUGE,
        "Limit ratekit admits to (headroom x limit, or the local share when degraded).",
        ("pool", "scope"),
    ),
    MetricSpec(
        "ratekit_weight_pool_remaining",
        GAUGE,
        "Weight still admissible in the pool's current window.",
        ("pool", "scope"),
    ),
    MetricSpec(
        "ratekit_weight_pool_server_used",
        GAUGE,
        "Usage the exchange last reported for the pool (usage headers).",
        ("pool", "scope"),
    ),
    MetricSpec(
        "ratekit_weight_pool_interval_seconds",
        GAUGE,
        "Window length of the pool.",
        ("pool", "scope"),
    ),
    MetricSpec(
        "ratekit_weight_pool_paused",
        GAUGE,
        "1 while the pool is paused after a 429/418 (until Retry-After), else 0.",
        ("pool", "scope"),
    ),
    MetricSpec(
        "ratekit_weight_pool_rate_limited_responses_total",
        COUNTER,
        "Exchange responses with HTTP 429 or 418 charged to the pool, by status.",
        ("pool", "scope", "status"),
    ),
    MetricSpec(
        "ratekit_weight_calls_total",
        COUNTER,
        "Exchange REST calls made, by ccxt endpoint.",
        ("endpoint",),
    ),
    MetricSpec(
        "ratekit_weight_charged_total",
        COUNTER,
        "Weight charged to the pools, by ccxt endpoint.",
        ("endpoint",),
    ),
    MetricSpec(
        "ratekit_weight_wait_seconds",
        HISTOGRAM,
        "Distribution of the time calls waited for budget before being sent, by endpoint.",
        ("endpoint",),
    ),
    MetricSpec(
        "ratekit_weight_rate_limited_responses_total",
        COUNTER,
        "Exchange responses with HTTP 429 or 418, by endpoint and status.",
        ("endpoint", "status"),
    ),
    MetricSpec(
        "ratekit_reader_snapshot_reads_total",
        COUNTER,
        "Reader calls (/profit) by how they were answered: fresh or stale snapshot, or computed"
        " by the caller (miss: no usable snapshot; the computation after start-up is one).",
        ("call", "result"),
    ),
    MetricSpec(
        "ratekit_reader_snapshot_age_seconds",
        GAUGE,
        "Age of the snapshot readers are served now.",
        ("call",),
    ),
    MetricSpec(
        "ratekit_reader_snapshot_compute_seconds",
        GAUGE,
        "How long the last computation of the snapshot took.",
        ("call",),
    ),
    MetricSpec(
        "ratekit_reader_snapshot_recomputes_total",
        COUNTER,
        "Snapshot computations (background and on the request path).",
        ("call",),
    ),
)

DOCUMENTED_METRICS: dict[str, str] = {spec.name: spec.help for spec in METRICS}
"""Every metric name ratekit may expose (PromQL spelling) and its help text."""

_SPECS = {spec.name: spec for spec in METRICS}


def render(runtime: Runtime, clock: Callable[[], float] = time.time) -> bytes:
    """The Prometheus text exposition of `runtime`'s figures at this moment."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RatekitCollector(runtime, clock))
    return generate_latest(registry)


class RatekitCollector:
    """Prometheus collector over a Runtime; register it in your own registry if you wish.

    `clock` (unix seconds) decides whether a `paused_until` time is still in the future.
    """

    def __init__(self, runtime: Runtime, clock: Callable[[], float] = time.time) -> None:
        self._runtime = runtime
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        out = _Families()
        runtime = self._runtime
        out.add(
            "ratekit_info",
            1,
            version=__version__,
            freqtrade_version=runtime.freqtrade_version,
            exchange=runtime.exchange_id or "",
        )
        now = self._clock()
        sections: tuple[tuple[str, Callable[[], dict[str, Any]], Callable[..., None]], ...] = (
            ("rate_cache", runtime.rate_cache_status, _collect_rate_cache),
            ("fiat", runtime.fiat_status, _collect_fiat),
            ("weights", runtime.weights_status, _collect_weights),
            ("readers", runtime.readers_status, _collect_readers),
        )
        for component, read, collect_section in sections:
            try:
                snapshot = read()
            except Exception as exc:  # one broken component must not blank the whole scrape
                logger.warning("ratekit metrics: %s snapshot failed: %r", component, exc)
                out.add("ratekit_component_snapshot_error", 1, component=component)
                out.add("ratekit_component_active", 0, component=component)
                continue
            out.add("ratekit_component_snapshot_error", 0, component=component)
            active = isinstance(snapshot, Mapping) and snapshot.get("active", True) is not False
            out.add("ratekit_component_active", int(active), component=component)
            if active:
                collect_section(out, snapshot, now)
        yield from out.families()


class _Families:
    """Metric families filled by spec name; samples without a numeric value are skipped."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(self, name: str, value: Any, **labels: Any) -> None:
        number = _sample_value(value)
        if number is None:
            return
        spec = _SPECS[name]
        family = self._family(spec)
        assert isinstance(family, CounterMetricFamily | GaugeMetricFamily)
        family.add_metric([str(labels[label]) for label in spec.labels], number)

    def add_histogram(
        self, name: str, buckets: list[tuple[str, float]], sum_value: float, **labels: Any
    ) -> None:
        spec = _SPECS[name]
        family = self._family(spec)
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric([str(labels[label]) for label in spec.labels], buckets, sum_value)

    def _family(self, spec: MetricSpec) -> Metric:
        family = self._families.get(spec.name)
        if family is None:
            labels = list(spec.labels)
            if spec.kind == COUNTER:
                family = CounterMetricFamily(spec.name, spec.help, labels=labels)
            elif spec.kind == HISTOGRAM:
                family = HistogramMetricFamily(spec.name, spec.help, labels=labels)
            else:
                family = GaugeMetricFamily(spec.name, spec.help, labels=labels)
            self._families[spec.name] = family
        return family

    def families(self) -> Iterator[Metric]:
        """Families in documentation order, so the exposition reads like the docs."""
        for spec in METRICS:
            if spec.name in self._families:
                yield self._families[spec.name]


def _sample_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _records(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _paused_gauge(paused_until: Any, now: float) -> int:
    until = _sample_value(paused_until)
    return int(until is not None and until > now)


def _collect_rate_cache(out: _Families, snapshot: Mapping[str, Any], now: float) -> None:
    for side, side_snapshot in _mapping(snapshot.get("sides")).items():
        figures = _mapping(side_snapshot)
        out.add("ratekit_cache_hits_total", figures.get("hits"), side=side)
        out.add("ratekit_cache_misses_total", figures.get("misses"), side=side)
        out.add("ratekit_cache_stale_reads_total", figures.get("stale_reads"), side=side)
        out.add("ratekit_cache_negative_hits_total", figures.get("negative_hits"), side=side)
        out.add("ratekit_cache_evictions_total", figures.get("evictions"), side=side)
        out.add("ratekit_cache_entries", figures.get("size"), side=side)
        out.add("ratekit_cache_max_entries", figures.get("capacity"), side=side)
        out.add("ratekit_cache_hit_ratio", figures.get("hit_ratio"), side=side)
        if "entries" in figures:
            states = [entry.get("state") for entry in _records(figures.get("entries"))]
            for state in CACHE_STATES:
                out.add(
                    "ratekit_cache_entries_by_state", states.count(state), side=side, state=state
                )

    prewarm = _mapping(snapshot.get("last_prewarm"))
    out.add("ratekit_prewarm_duration_seconds", prewarm.get("seconds"))
    out.add("ratekit_prewarm_pairs", prewarm.get("pairs"))
    out.add("ratekit_prewarm_failed_pairs", prewarm.get("failed"))
    out.add("ratekit_prewarm_last_timestamp_seconds", prewarm.get("at"))

    refresher = _mapping(snapshot.get("refresher"))
    out.add("ratekit_refresher_running", refresher.get("running"))
    out.add("ratekit_refresher_runs_total", refresher.get("runs"))
    out.add("ratekit_refresher_consecutive_failures", refresher.get("consecutive_failures"))
    out.add("ratekit_refresher_last_duration_seconds", refresher.get("last_duration_s"))
    out.add("ratekit_refresher_last_run_timestamp_seconds", refresher.get("last_run_at"))


def _collect_fiat(out: _Families, snapshot: Mapping[str, Any], now: float) -> None:
    for record in _records(snapshot.get("pairs")):
        pair = record.get("pair")
        if not pair:
            continue
        out.add("ratekit_fiat_price", record.get("price"), pair=pair)
        out.add("ratekit_fiat_price_age_seconds", record.get("age_s"), pair=pair)
        current = record.get("state")
        states = (
            FIAT_STATES if current in FIAT_STATES or current is None else (*FIAT_STATES, current)
        )
        for state in states:
            out.add("ratekit_fiat_state", int(state == current), pair=pair, state=state)

    calls = _mapping(snapshot.get("calls"))
    for call in ("simple_price", "coins_list"):
        out.add("ratekit_fiat_calls_total", calls.get(call), call=call)
    out.add("ratekit_fiat_errors_total", calls.get("errors"))
    out.add("ratekit_fiat_rate_limited_responses_total", calls.get("status_429"))
    out.add("ratekit_fiat_consecutive_failures", snapshot.get("consecutive_failures"))
    if "paused_until" in snapshot:
        out.add("ratekit_fiat_paused", _paused_gauge(snapshot.get("paused_until"), now))
    out.add("ratekit_fiat_last_refresh_timestamp_seconds", snapshot.get("last_refresh_at"))
    coin_list = _mapping(snapshot.get("coin_list"))
    out.add("ratekit_fiat_coin_list_entries", coin_list.get("entries"))
    out.add("ratekit_fiat_coin_list_age_seconds", coin_list.get("age_s"))


def _collect_weights(out: _Families, snapshot: Mapping[str, Any], now: float) -> None:
    backend = _mapping(snapshot.get("backend"))
    kind = backend.get("kind") or ""
    out.add(
        "ratekit_weight_info",
        1,
        mode=snapshot.get("mode") or "",
        preset=snapshot.get("preset") or "",
        backend=kind,
    )
    out.add("ratekit_weight_headroom_ratio", snapshot.get("headroom"))
    out.add("ratekit_weight_backend_healthy", backend.get("healthy"), backend=kind)
    out.add("ratekit_weight_backend_degraded", backend.get("degraded"), backend=kind)

    for pool in _records(snapshot.get("pools")):
        name = pool.get("name")
        if not name:
            continue
        labels = {"pool": name, "scope": pool.get("scope") or ""}
        out.add("ratekit_weight_pool_used", pool.get("used"), **labels)
        out.add("ratekit_weight_pool_limit", pool.get("limit"), **labels)
        out.add("ratekit_weight_pool_effective_limit", pool.get("effective_limit"), **labels)
        out.add("ratekit_weight_pool_remaining", pool.get("remaining"), **labels)
        out.add("ratekit_weight_pool_server_used", pool.get("server_used"), **labels)
        out.add("ratekit_weight_pool_interval_seconds", pool.get("interval_s"), **labels)
        if "paused_until" in pool:
            out.add(
                "ratekit_weight_pool_paused", _paused_gauge(pool.get("paused_until"), now), **labels
            )
        for status in RATE_LIMIT_STATUSES:
            out.add(
                "ratekit_weight_pool_rate_limited_responses_total",
                pool.get(f"status_{status}"),
                status=status,
                **labels,
            )

    histograms = _mapping(snapshot.get("wait_histogram"))
    for endpoint in _records(snapshot.get("endpoints")):
        name = endpoint.get("endpoint")
        if not name:
            continue
        out.add("ratekit_weight_calls_total", endpoint.get("calls"), endpoint=name)
        out.add("ratekit_weight_charged_total", endpoint.get("weight"), endpoint=name)
        for status in RATE_LIMIT_STATUSES:
            out.add(
                "ratekit_weight_rate_limited_responses_total",
                endpoint.get(f"status_{status}"),
                endpoint=name,
                status=status,
            )
    for name, histogram in histograms.items():
        buckets = _histogram_buckets(_mapping(histogram))
        if buckets is not None:
            sum_value = _sample_value(_mapping(histogram).get("sum")) or 0.0
            out.add_histogram("ratekit_weight_wait_seconds", buckets, sum_value, endpoint=name)


def _histogram_buckets(histogram: Mapping[str, Any]) -> list[tuple[str, float]] | None:
    """Cumulative `[[le, count], ...]` as Prometheus wants them: sorted, ending with +Inf.

    A missing +Inf bucket is completed from `count`; malformed input yields None (skipped).
    """
    buckets: list[tuple[float, float]] = []
    for bucket in histogram.get("buckets") or ():
        if not isinstance(bucket, list | tuple) or len(bucket) != 2:
            return None
        try:
            upper, count = float(bucket[0]), float(bucket[1])
        except (TypeError, ValueError):
            return None
        buckets.append((upper, count))
    buckets.sort()
    if not buckets or not math.isinf(buckets[-1][0]):
        total = _sample_value(histogram.get("count"))
        if total is None:
            return None
        buckets.append((math.inf, total))
    counts = [count for _, count in buckets]
    if counts != sorted(counts):
        return None
    return [(floatToGoString(upper), count) for upper, count in buckets]


def _collect_readers(out: _Families, snapshot: Mapping[str, Any], now: float) -> None:
    for row in _records(snapshot.get("snapshots")):
        call = row.get("call", "")
        for result, key in (("fresh", "hits"), ("stale", "stale_hits"), ("miss", "misses")):
            out.add("ratekit_reader_snapshot_reads_total", row.get(key), call=call, result=result)
        out.add("ratekit_reader_snapshot_age_seconds", row.get("age_s"), call=call)
        out.add("ratekit_reader_snapshot_compute_seconds", row.get("compute_s"), call=call)
        out.add("ratekit_reader_snapshot_recomputes_total", row.get("recomputes"), call=call)
