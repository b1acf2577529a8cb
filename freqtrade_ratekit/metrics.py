"""Prometheus exposition of the ratekit figures, built from the component snapshots.

The figures already live in the components (cache counters, fiat state, weight ledger), so
nothing is mirrored into prometheus-client's own Counter/Gauge objects: a custom collector
reads the snapshots at scrape time and turns them into metric families. Each `render()` uses
a private registry, so ratekit never touches (or collides with) the process-wide default
registry that a strategy or another library may use.

Snapshots are the typed documents of `documents.py`, read by key, so mypy catches a renamed
field. A value that is None (never fetched, no rate) skips its sample, a section may be
`{"active": False}`, and a component whose snapshot raises is reported as such instead of
failing the whole scrape.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
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
from freqtrade_ratekit.documents import (
    DocumentT,
    RatekitFiat,
    RatekitHistogram,
    RatekitInactive,
    RatekitRateBook,
    RatekitReaders,
    RatekitWeights,
    is_active,
)
from freqtrade_ratekit.runtime import Runtime

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

FIAT_STATES = ("fresh", "stale", "never")
CACHE_STATES = ("fresh", "stale", "failing")


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
    # trading loop (rule 1)
    MetricSpec(
        "ratekit_trading_batch_calls_total",
        COUNTER,
        "Batched pricing calls of the bot's iterations (failed ones and re-fetches included).",
    ),
    MetricSpec(
        "ratekit_trading_batch_failed_calls_total",
        COUNTER,
        "Batched pricing calls that failed; their iteration priced per pair.",
    ),
    MetricSpec(
        "ratekit_trading_batch_refetches_total",
        COUNTER,
        "Batches fetched again because they went stale before their first use.",
    ),
    MetricSpec(
        "ratekit_trading_reads_total",
        COUNTER,
        "Trading reads (get_rate refresh=True in the bot loop) by what served them: the stream, "
        "the batch, or stock's per-pair fetch and why.",
        ("served_by", "reason"),
    ),
    MetricSpec(
        "ratekit_trading_data_age_seconds",
        HISTOGRAM,
        "Age of the exchange data behind each trading read served from the batch.",
    ),
    MetricSpec(
        "ratekit_trading_max_age_seconds",
        GAUGE,
        "rate_cache.trading_max_age: the oldest data a trading decision may use.",
    ),
    MetricSpec(
        "ratekit_stream_connected",
        GAUGE,
        "1 while the websocket price stream is connected and receiving.",
    ),
    MetricSpec(
        "ratekit_stream_connects_total",
        COUNTER,
        "Websocket price stream connection attempts (each charged to the connection pool).",
    ),
    MetricSpec(
        "ratekit_stream_failures_total", COUNTER, "Websocket price stream connections that failed."
    ),
    MetricSpec(
        "ratekit_stream_messages_total", COUNTER, "Ticker updates received from the price stream."
    ),
    MetricSpec(
        "ratekit_stream_subscriptions_total",
        COUNTER,
        "Subscription messages the price stream sent.",
    ),
    MetricSpec(
        "ratekit_bot_iteration_duration_seconds",
        HISTOGRAM,
        "Duration of each bot iteration (FreqtradeBot.process).",
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
        "ratekit_weight_reserve_ratio",
        GAUGE,
        "Share of each pool only bots may use (weights.reserve); non-bot commands get the rest.",
    ),
    MetricSpec(
        "ratekit_weight_background",
        GAUGE,
        "1 when this process is a non-bot client whose calls run at the lowest priority, else 0.",
    ),
    MetricSpec(
        "ratekit_weight_calls_waiting",
        GAUGE,
        "Calls of this process waiting for budget right now.",
    ),
    MetricSpec(
        "ratekit_weight_blocked_seconds_total",
        COUNTER,
        "Wall time during which at least one call of this process waited for budget.",
    ),
    MetricSpec(
        "ratekit_scope_client_running",
        GAUGE,
        "A non-bot client of the scope (download-data, list-markets, webserver, ...): 1 while it"
        " runs, 0 once it finished (its record stays listed for an hour).",
        ("client_id", "client", "run_mode", "host"),
    ),
    MetricSpec(
        "ratekit_scope_client_weight_total",
        COUNTER,
        "Weight a non-bot client of the scope has charged to the shared pools.",
        ("client_id", "client", "run_mode", "host"),
    ),
    MetricSpec(
        "ratekit_scope_client_calls_total",
        COUNTER,
        "Exchange calls a non-bot client of the scope has made.",
        ("client_id", "client", "run_mode", "host"),
    ),
    MetricSpec(
        "ratekit_scope_client_blocked_seconds_total",
        COUNTER,
        "Wall time a non-bot client of the scope waited for budget.",
        ("client_id", "client", "run_mode", "host"),
    ),
    MetricSpec(
        "ratekit_scope_client_rate_limited_responses_total",
        COUNTER,
        "Exchange responses with HTTP 429 or 418 a non-bot client of the scope received.",
        ("client_id", "client", "run_mode", "host", "status"),
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
        _collect_section(out, "rate_cache", runtime.rate_cache_status, _collect_rate_cache, now)
        _collect_section(out, "fiat", runtime.fiat_status, _collect_fiat, now)
        _collect_section(out, "weights", runtime.weights_status, _collect_weights, now)
        _collect_section(out, "readers", runtime.readers_status, _collect_readers, now)
        yield from out.families()


def _collect_section(
    out: _Families,
    component: str,
    read: Callable[[], DocumentT | RatekitInactive],
    collect: Callable[[_Families, DocumentT, float], None],
    now: float,
) -> None:
    try:
        snapshot = read()
    except Exception as exc:  # one broken component must not blank the whole scrape
        logger.warning("ratekit metrics: %s snapshot failed: %r", component, exc)
        out.add("ratekit_component_snapshot_error", 1, component=component)
        out.add("ratekit_component_active", 0, component=component)
        return
    out.add("ratekit_component_snapshot_error", 0, component=component)
    if not is_active(snapshot):
        out.add("ratekit_component_active", 0, component=component)
        return
    out.add("ratekit_component_active", 1, component=component)
    collect(out, snapshot, now)


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
    """A number (a bool counts: True is 1) as a sample; anything else has no sample."""
    return float(value) if isinstance(value, int | float) else None


def _paused_gauge(paused_until: float | None, now: float) -> int:
    until = _sample_value(paused_until)
    return int(until is not None and until > now)


def _collect_rate_cache(out: _Families, snapshot: RatekitRateBook, now: float) -> None:
    for side, figures in snapshot["sides"].items():
        out.add("ratekit_cache_hits_total", figures["hits"], side=side)
        out.add("ratekit_cache_misses_total", figures["misses"], side=side)
        out.add("ratekit_cache_stale_reads_total", figures["stale_reads"], side=side)
        out.add("ratekit_cache_negative_hits_total", figures["negative_hits"], side=side)
        out.add("ratekit_cache_evictions_total", figures["evictions"], side=side)
        out.add("ratekit_cache_entries", figures["size"], side=side)
        out.add("ratekit_cache_max_entries", figures["capacity"], side=side)
        out.add("ratekit_cache_hit_ratio", figures["hit_ratio"], side=side)
        states: list[str] = [entry["state"] for entry in figures["entries"]]
        for state in CACHE_STATES:
            out.add("ratekit_cache_entries_by_state", states.count(state), side=side, state=state)

    prewarm = snapshot["last_prewarm"]
    if prewarm is not None:
        out.add("ratekit_prewarm_duration_seconds", prewarm["seconds"])
        out.add("ratekit_prewarm_pairs", prewarm["pairs"])
        out.add("ratekit_prewarm_failed_pairs", prewarm["failed"])
        out.add("ratekit_prewarm_last_timestamp_seconds", prewarm["at"])

    refresher = snapshot["refresher"]
    out.add("ratekit_refresher_running", refresher["running"])
    out.add("ratekit_refresher_runs_total", refresher["runs"])
    out.add("ratekit_refresher_consecutive_failures", refresher["consecutive_failures"])
    out.add("ratekit_refresher_last_duration_seconds", refresher["last_duration_s"])
    out.add("ratekit_refresher_last_run_timestamp_seconds", refresher["last_run_at"])

    trading = snapshot["trading"]
    out.add("ratekit_trading_batch_calls_total", trading["batch_calls"])
    out.add("ratekit_trading_batch_failed_calls_total", trading["failed_calls"])
    out.add("ratekit_trading_batch_refetches_total", trading["refetches"])
    from_stream = trading["served_from_stream"]
    out.add(
        "ratekit_trading_reads_total",
        trading["served"] - from_stream,
        served_by="batch",
        reason="fresh",
    )
    out.add("ratekit_trading_reads_total", from_stream, served_by="stream", reason="fresh")
    for reason, count in trading["per_pair_by_reason"].items():
        out.add("ratekit_trading_reads_total", count, served_by="per_pair", reason=reason)
    out.add("ratekit_trading_max_age_seconds", trading["max_age"])
    stream = trading["stream"]
    if stream is not None:
        out.add("ratekit_stream_connected", stream["connected"])
        out.add("ratekit_stream_connects_total", stream["connects"])
        out.add("ratekit_stream_failures_total", stream["failures"])
        out.add("ratekit_stream_messages_total", stream["messages"])
        out.add("ratekit_stream_subscriptions_total", stream["subscriptions"])
    for name, histogram in (
        ("ratekit_trading_data_age_seconds", trading["served_age"]),
        ("ratekit_bot_iteration_duration_seconds", trading["iterations"]),
    ):
        buckets = _histogram_buckets(histogram)
        if buckets is not None:
            out.add_histogram(name, buckets, _sample_value(histogram["sum"]) or 0.0)


def _collect_fiat(out: _Families, snapshot: RatekitFiat, now: float) -> None:
    for record in snapshot["pairs"]:
        pair = record["pair"]
        if not pair:
            continue
        out.add("ratekit_fiat_price", record["price"], pair=pair)
        out.add("ratekit_fiat_price_age_seconds", record["age_s"], pair=pair)
        current: str = record["state"]
        states = FIAT_STATES if current in FIAT_STATES else (*FIAT_STATES, current)
        for state in states:
            out.add("ratekit_fiat_state", int(state == current), pair=pair, state=state)

    calls = snapshot["calls"]
    out.add("ratekit_fiat_calls_total", calls["simple_price"], call="simple_price")
    out.add("ratekit_fiat_calls_total", calls["coins_list"], call="coins_list")
    out.add("ratekit_fiat_errors_total", calls["errors"])
    out.add("ratekit_fiat_rate_limited_responses_total", calls["status_429"])
    out.add("ratekit_fiat_consecutive_failures", snapshot["consecutive_failures"])
    out.add("ratekit_fiat_paused", _paused_gauge(snapshot["paused_until"], now))
    out.add("ratekit_fiat_last_refresh_timestamp_seconds", snapshot["last_refresh_at"])
    coin_list = snapshot["coin_list"]
    out.add("ratekit_fiat_coin_list_entries", coin_list["entries"])
    out.add("ratekit_fiat_coin_list_age_seconds", coin_list["age_s"])


def _collect_weights(out: _Families, snapshot: RatekitWeights, now: float) -> None:
    backend = snapshot["backend"]
    kind = backend["kind"] or ""
    out.add(
        "ratekit_weight_info",
        1,
        mode=snapshot["mode"] or "",
        preset=snapshot["preset"] or "",
        backend=kind,
    )
    out.add("ratekit_weight_headroom_ratio", snapshot["headroom"])
    out.add("ratekit_weight_backend_healthy", backend["healthy"], backend=kind)
    out.add("ratekit_weight_backend_degraded", backend["degraded"], backend=kind)

    for pool in snapshot["pools"]:
        name = pool["name"]
        if not name:
            continue
        labels = {"pool": name, "scope": pool["scope"] or ""}
        out.add("ratekit_weight_pool_used", pool["used"], **labels)
        out.add("ratekit_weight_pool_limit", pool["limit"], **labels)
        out.add("ratekit_weight_pool_effective_limit", pool["effective_limit"], **labels)
        out.add("ratekit_weight_pool_remaining", pool["remaining"], **labels)
        out.add("ratekit_weight_pool_server_used", pool["server_used"], **labels)
        out.add("ratekit_weight_pool_interval_seconds", pool["interval_s"], **labels)
        out.add("ratekit_weight_pool_paused", _paused_gauge(pool["paused_until"], now), **labels)
        for status, count in (("429", pool["status_429"]), ("418", pool["status_418"])):
            out.add(
                "ratekit_weight_pool_rate_limited_responses_total",
                count,
                status=status,
                **labels,
            )

    for endpoint in snapshot["endpoints"]:
        name = endpoint["endpoint"]
        if not name:
            continue
        out.add("ratekit_weight_calls_total", endpoint["calls"], endpoint=name)
        out.add("ratekit_weight_charged_total", endpoint["weight"], endpoint=name)
        for status, count in (("429", endpoint["status_429"]), ("418", endpoint["status_418"])):
            out.add(
                "ratekit_weight_rate_limited_responses_total",
                count,
                endpoint=name,
                status=status,
            )
    for name, histogram in snapshot["wait_histogram"].items():
        buckets = _histogram_buckets(histogram)
        if buckets is not None:
            sum_value = _sample_value(histogram["sum"]) or 0.0
            out.add_histogram("ratekit_weight_wait_seconds", buckets, sum_value, endpoint=name)
    _collect_clients(out, snapshot)


def _collect_clients(out: _Families, snapshot: RatekitWeights) -> None:
    """This process's priority and waits, and the scope's non-bot clients (a bot of an older
    ratekit version has none of these keys: nothing is exposed for them)."""
    out.add("ratekit_weight_reserve_ratio", snapshot.get("reserve"))
    out.add("ratekit_weight_background", snapshot.get("background"))
    waiting = snapshot.get("waiting")
    if isinstance(waiting, dict):
        out.add("ratekit_weight_calls_waiting", waiting.get("calls"))
        out.add("ratekit_weight_blocked_seconds_total", waiting.get("blocked_s"))
    clients = snapshot.get("clients")
    for client in clients if isinstance(clients, list) else ():
        labels = {
            "client_id": client["id"],
            "client": client["name"],
            "run_mode": client["run_mode"],
            "host": client["host"],
        }
        out.add("ratekit_scope_client_running", client["state"] == "running", **labels)
        out.add("ratekit_scope_client_weight_total", client["weight"], **labels)
        out.add("ratekit_scope_client_calls_total", client["calls"], **labels)
        out.add("ratekit_scope_client_blocked_seconds_total", client["blocked_s"], **labels)
        for status, count in (("429", client["status_429"]), ("418", client["status_418"])):
            out.add(
                "ratekit_scope_client_rate_limited_responses_total", count, status=status, **labels
            )


def _histogram_buckets(histogram: RatekitHistogram) -> list[tuple[str, float]] | None:
    """Cumulative `[[le, count], ...]` as Prometheus wants them: sorted, ending with +Inf.

    A missing +Inf bucket is completed from `count`; malformed input yields None (skipped).
    """
    buckets: list[tuple[float, float]] = []
    for bucket in histogram["buckets"]:
        if not isinstance(bucket, list | tuple) or len(bucket) != 2:
            return None
        try:
            upper, count = float(bucket[0]), float(bucket[1])
        except (TypeError, ValueError):
            return None
        buckets.append((upper, count))
    buckets.sort()
    if not buckets or not math.isinf(buckets[-1][0]):
        total = _sample_value(histogram["count"])
        if total is None:
            return None
        buckets.append((math.inf, total))
    counts = [count for _, count in buckets]
    if counts != sorted(counts):
        return None
    return [(floatToGoString(upper), count) for upper, count in buckets]


def _collect_readers(out: _Families, snapshot: RatekitReaders, now: float) -> None:
    for row in snapshot["snapshots"]:
        call = row["call"]
        for result, count in (
            ("fresh", row["hits"]),
            ("stale", row["stale_hits"]),
            ("miss", row["misses"]),
        ):
            out.add("ratekit_reader_snapshot_reads_total", count, call=call, result=result)
        out.add("ratekit_reader_snapshot_age_seconds", row["age_s"], call=call)
        out.add("ratekit_reader_snapshot_compute_seconds", row["compute_s"], call=call)
        out.add("ratekit_reader_snapshot_recomputes_total", row["recomputes"], call=call)
