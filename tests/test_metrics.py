"""The Prometheus exposition follows the component snapshots, metric by metric."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from freqtrade_ratekit import __version__, metrics
from freqtrade_ratekit.config import parse_settings
from freqtrade_ratekit.documents import (
    RatekitCacheEntry,
    RatekitCacheSide,
    RatekitClient,
    RatekitFiat,
    RatekitRateBook,
    RatekitReaders,
    RatekitTradingBatch,
    RatekitWeights,
)
from freqtrade_ratekit.rates.sources import PlannedCall, TickerSource
from freqtrade_ratekit.rates.stream import PriceStream
from freqtrade_ratekit.rates.trading_batch import TradingBatch
from freqtrade_ratekit.runtime import Runtime
from freqtrade_ratekit.snapshots import ReaderSnapshots
from tests.helpers import FakeClock

NOW = 1_800_000_000.0


def cache_entry(
    pair: str, rate: float | None, age_s: float, state: Any, error: str | None = None
) -> RatekitCacheEntry:
    entry: RatekitCacheEntry = {
        "pair": pair,
        "rate": rate,
        "age_s": age_s,
        "state": state,
        "error": error,
        "updated_at": None if rate is None else NOW - age_s,
        "failed_at": None if error is None else NOW - 10,
    }
    return entry


def rate_cache_snapshot() -> RatekitRateBook:
    """A complete `RateBook.snapshot()` document (every key of `documents.RatekitRateBook`)."""

    def side(name: str, hits: int, entries: list[RatekitCacheEntry]) -> RatekitCacheSide:
        return {
            "name": name,
            "size": len(entries),
            "capacity": 1000,
            "hits": hits,
            "misses": 7,
            "stale_reads": 5,
            "negative_hits": 3,
            "evictions": 2,
            "hit_ratio": hits / (hits + 7 + 5),
            "ttl": 300,
            "stale_ttl": 3600,
            "negative_ttl": 300,
            "entries": entries,
        }

    return {
        "sides": {
            "entry": side(
                "entry",
                88,
                [
                    cache_entry("BTC/USDT", 65000.5, 12.0, "fresh"),
                    cache_entry("ETH/USDT", 3100.25, 400.0, "stale"),
                    cache_entry(
                        "LUNA/USDT",
                        None,
                        30.0,
                        "failing",
                        "BadSymbol: binance does not have market symbol LUNA/USDT",
                    ),
                ],
            ),
            "exit": side("exit", 40, [cache_entry("BTC/USDT", 64999.0, 3, "fresh")]),
        },
        "last_prewarm": {
            "pairs": 42,
            "requested": 43,
            "seconds": 0.35,
            "at": NOW - 120,
            "method": "bids_asks_all",
            "cost": 4,
            "failed": 1,
            "failed_pairs": ["LUNA/USDT"],
            "retry": 0,
            "retry_pairs": [],
            "error": None,
        },
        "last_refresh": None,
        "refresher": {
            "name": "rate-refresher",
            "running": True,
            "interval_s": 60,
            "last_run_at": NOW - 30,
            "last_duration_s": 0.2,
            "last_error": None,
            "consecutive_failures": 0,
            "runs": 17,
            "next_run_in_s": 30.0,
            "pending_requests": 0,
            "dropped_requests": 0,
            "last_run": None,
        },
        "trading": trading_batch_snapshot(),
        "settings": {
            "maxsize": 1000,
            "ttl": 300,
            "stale_ttl": 3600,
            "negative_ttl": 300,
            "refresh_interval": 60,
            "prewarm_whitelist": False,
            "trading_batch": True,
            "trading_max_age": 2.0,
            "stream": False,
        },
    }


def trading_batch_snapshot() -> RatekitTradingBatch:
    """A real TradingBatch after two iterations: one served three reads from its batch, 0.3 s
    old; in the other the batch call failed and two reads went per pair."""
    clock = FakeClock()
    answers: list[Any] = [
        {pair: {"symbol": pair, "bid": 1.0, "ask": 1.1} for pair in TRADED},
        ConnectionError("reset"),
    ]

    def fetch(method: str, symbols: list[str] | None) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    batch = TradingBatch(
        enabled=True,
        max_age=2.0,
        choose_source=lambda pairs, need_last: TickerSource(
            name="bids_asks_all", calls=(PlannedCall("fetch_bids_asks", None, 0.8),), pairs=()
        ),
        fetch=fetch,
        pricing=lambda: ({}, {}),
        stream=PriceStream(make_client=lambda: None, timer=clock),  # never started
        timer=clock,
        wall_clock=lambda: NOW,
    )
    batch.begin(TRADED)
    assert batch.lookup(TRADED[0]).ticker is not None  # waits for the answer
    clock.advance(0.3)
    for pair in TRADED:
        batch.served(batch.lookup(pair).age or 0.0)
    batch.end(0.4)
    batch.begin(TRADED)
    for pair in TRADED[:2]:
        batch.lookup(pair)
    batch.end(1.5)
    return batch.snapshot()


TRADED = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def fiat_snapshot() -> RatekitFiat:
    return {
        "enabled": True,
        "base_url": "https://api.coingecko.com/api/v3",
        "refresh_interval": 300,
        "stale_after": 1800,
        "running": True,
        "pairs": [
            {
                "pair": "btc/usd",
                "gecko_id": "bitcoin",
                "price": 65010.0,
                "age_s": 45.0,
                "state": "fresh",
                "last_error": None,
                "next_refresh_in_s": 255.0,
            },
            {
                "pair": "eth/usd",
                "gecko_id": "ethereum",
                "price": 3000.0,
                "age_s": 2400.0,
                "state": "stale",
                "last_error": "HTTP 429 Too Many Requests",
                "next_refresh_in_s": 60.0,
            },
            {
                "pair": "xyz/usd",
                "gecko_id": None,
                "price": None,
                "age_s": None,
                "state": "never",
                "last_error": "unknown coin",
                "next_refresh_in_s": 60.0,
            },
        ],
        "coin_list": {
            "entries": 17_123,
            "age_s": 86_400.0,
            "source": "disk",
            "path": "x.json",
            "last_error": None,
        },
        "last_refresh_at": NOW - 45,
        "consecutive_failures": 2,
        "paused_until": NOW + 60,
        "calls": {
            "simple_price": 12,
            "coins_list": 1,
            "errors": 4,
            "status_429": 3,
            "shared_hits": 0,
        },
        "shared_store": None,
    }


def weights_snapshot() -> RatekitWeights:
    snapshot: RatekitWeights = {
        "mode": "enforce",
        "preset": "binance",
        "headroom": 0.8,
        "exchange": "binance",
        "backend": {
            "kind": "redis",
            "healthy": False,
            "degraded": True,
            "scope": "host-1",
            "detail": "ConnectionError: Error 111 connecting to 127.0.0.1:6390",
        },
        "pools": [
            {
                "name": "REQUEST_WEIGHT",
                "scope": "ip",
                "limit": 6000,
                "interval_s": 60,
                "effective_limit": 1600,
                "used": 1234,
                "remaining": 366,
                "server_used": 1300,
                "server_used_at": NOW - 1,
                "paused_until": None,
                "status_429": 1,
                "status_418": 0,
            },
            {
                "name": "ORDERS",
                "scope": "account",
                "limit": 100,
                "interval_s": 10,
                "effective_limit": 80,
                "used": 80,
                "remaining": 0,
                "server_used": None,
                "server_used_at": None,
                "paused_until": NOW + 5,
                "status_429": 0,
                "status_418": 2,
            },
        ],
        "endpoints": [
            {
                "endpoint": "GET api/v3/ticker/bookTicker",
                "calls": 20,
                "weight": 80,
                "wait_s": 1.5,
                "status_429": 1,
                "status_418": 0,
            },
            {
                "endpoint": "POST api/v3/order",
                "calls": 6,
                "weight": 6,
                "wait_s": 0.0,
                "status_429": 0,
                "status_418": 2,
            },
        ],
        "totals": {"calls": 26, "weight": 86, "wait_s": 1.5, "status_429": 1, "status_418": 2},
        "wait_histogram": {},
        "background": False,
        "reserve": 0.5,
        "waiting": {"calls": 2, "blocked_s": 3.5},
        "client": None,
        "clients": [
            scope_client("a1", "download-data", "running", weight=742, blocked_s=48.5),
            scope_client("b2", "list-markets", "finished", weight=20, status_429=1),
        ],
    }
    snapshot["wait_histogram"] = {
        "GET api/v3/ticker/bookTicker": {
            "buckets": [[0.1, 15], [1.0, 19], [5.0, 20]],
            "sum": 1.5,
            "count": 20,
        },
        "POST api/v3/order": {"buckets": [[0.1, 6], ["+Inf", 6]], "sum": 0.0, "count": 6},
    }
    return snapshot


def scope_client(
    client_id: str,
    name: str,
    state: Any,
    *,
    weight: float,
    blocked_s: float = 0.0,
    status_429: int = 0,
) -> RatekitClient:
    """A non-bot client of the scope, as the client registry lists it."""
    return {
        "id": client_id,
        "name": name,
        "run_mode": "util_exchange",
        "host": "host-1",
        "pid": 4242,
        "state": state,
        "started_at": NOW - 120,
        "updated_at": NOW - 2,
        "calls": int(weight // 2),
        "weight": weight,
        "wait_s": blocked_s * 10,
        "blocked_s": blocked_s,
        "waiting": 0,
        "status_429": status_429,
        "status_418": 0,
    }


class FakeComponent:
    """Stands in for a ratekit component: only `snapshot()` matters to metrics and routes."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def snapshot(self) -> Any:
        return copy.deepcopy(self._snapshot)


class BrokenComponent:
    def snapshot(self) -> dict[str, Any]:
        raise RuntimeError("ledger lock poisoned")


def sample_runtime() -> Runtime:
    return Runtime(
        settings=parse_settings({"enabled": True}),
        freqtrade_version="2026.9",
        exchange_id="binance",
        rate_cache=FakeComponent(rate_cache_snapshot()),
        fiat=FakeComponent(fiat_snapshot()),
        weights=FakeComponent(weights_snapshot()),
        readers=FakeComponent(readers_snapshot()),
    )


def readers_snapshot() -> RatekitReaders:
    """A real ReaderSnapshots after one miss, two fresh reads and one stale read."""
    clock = FakeClock()
    readers = ReaderSnapshots(max_age=5, clock=clock)
    for _ in range(3):
        readers.read("profit", dict, "profit USDT/USD")
    readers.invalidate()
    readers.read("profit", dict, "profit USDT/USD")
    clock.advance(2.5)
    return readers.snapshot()


def test_reader_snapshot_figures() -> None:
    samples = scrape(sample_runtime())
    call = "profit USDT/USD"
    reads = "ratekit_reader_snapshot_reads_total"
    assert value(samples, reads, call=call, result="miss") == 1
    assert value(samples, reads, call=call, result="fresh") == 2
    assert value(samples, reads, call=call, result="stale") == 1
    assert value(samples, "ratekit_reader_snapshot_age_seconds", call=call) == 2.5
    assert value(samples, "ratekit_reader_snapshot_recomputes_total", call=call) == 1


def scrape(runtime: Runtime) -> list[Sample]:
    text = metrics.render(runtime, clock=lambda: NOW).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def names(samples: list[Sample]) -> set[str]:
    return {s.name for s in samples}


HISTOGRAMS = {spec.name for spec in metrics.METRICS if spec.kind == metrics.HISTOGRAM}


def documented_name(sample_name: str) -> str:
    """The documented name a sample belongs to (histograms expose _bucket/_sum/_count)."""
    base = re.sub(r"_(bucket|sum|count)$", "", sample_name)
    return base if base in HISTOGRAMS else sample_name


def test_every_documented_metric_is_exposed_and_nothing_else() -> None:
    exposed = {documented_name(n) for n in names(scrape(sample_runtime()))}
    assert exposed == set(metrics.DOCUMENTED_METRICS)


def test_metric_names_follow_prometheus_conventions() -> None:
    for spec in metrics.METRICS:
        assert re.fullmatch(r"ratekit_[a-z0-9_]+", spec.name), spec.name
        assert spec.name.endswith("_total") == (spec.kind == metrics.COUNTER), spec.name
        assert not re.search(r"_(ms|milliseconds|minutes|hours|percent)(_|$)", spec.name)
        assert spec.help and spec.help.strip() == spec.help


def test_render_uses_a_private_registry_and_the_latest_content_type() -> None:
    from prometheus_client import REGISTRY

    def default_registry_names() -> set[str]:
        return {family.name for family in REGISTRY.collect()}

    before = default_registry_names()
    metrics.render(sample_runtime())
    after = default_registry_names()

    assert after == before
    assert not [name for name in after if name.startswith("ratekit_")]
    assert metrics.CONTENT_TYPE.startswith("text/plain")


def test_rate_cache_figures_follow_the_snapshot() -> None:
    samples = scrape(sample_runtime())

    assert value(samples, "ratekit_cache_hits_total", side="entry") == 88
    assert value(samples, "ratekit_cache_hits_total", side="exit") == 40
    assert value(samples, "ratekit_cache_misses_total", side="entry") == 7
    assert value(samples, "ratekit_cache_stale_reads_total", side="entry") == 5
    assert value(samples, "ratekit_cache_negative_hits_total", side="entry") == 3
    assert value(samples, "ratekit_cache_evictions_total", side="exit") == 2
    assert value(samples, "ratekit_cache_entries", side="entry") == 3
    assert value(samples, "ratekit_cache_max_entries", side="entry") == 1000
    assert value(samples, "ratekit_cache_hit_ratio", side="entry") == pytest.approx(0.88)
    for state, expected in (("fresh", 1), ("stale", 1), ("failing", 1)):
        assert value(samples, "ratekit_cache_entries_by_state", side="entry", state=state) == (
            expected
        )
    assert value(samples, "ratekit_cache_entries_by_state", side="exit", state="stale") == 0
    assert value(samples, "ratekit_prewarm_duration_seconds") == pytest.approx(0.35)
    assert value(samples, "ratekit_prewarm_pairs") == 42
    assert value(samples, "ratekit_prewarm_failed_pairs") == 1
    assert value(samples, "ratekit_prewarm_last_timestamp_seconds") == NOW - 120
    assert value(samples, "ratekit_refresher_running") == 1
    assert value(samples, "ratekit_refresher_runs_total") == 17
    assert value(samples, "ratekit_refresher_last_duration_seconds") == pytest.approx(0.2)


def test_trading_loop_figures_follow_the_batch() -> None:
    samples = scrape(sample_runtime())
    reads = "ratekit_trading_reads_total"
    assert value(samples, "ratekit_trading_batch_calls_total") == 2
    assert value(samples, "ratekit_trading_batch_failed_calls_total") == 1
    assert value(samples, reads, served_by="batch", reason="fresh") == 3
    assert value(samples, reads, served_by="per_pair", reason="failed") == 2
    assert value(samples, reads, served_by="per_pair", reason="stale") == 0
    assert value(samples, "ratekit_trading_data_age_seconds_count") == 3
    assert value(samples, "ratekit_trading_data_age_seconds_bucket", le="0.2") == 0
    assert value(samples, "ratekit_trading_data_age_seconds_bucket", le="0.3") == 3
    assert value(samples, "ratekit_bot_iteration_duration_seconds_count") == 2
    assert value(samples, "ratekit_bot_iteration_duration_seconds_sum") == pytest.approx(1.9)
    assert value(samples, "ratekit_bot_iteration_duration_seconds_bucket", le="1.0") == 1
    assert value(samples, "ratekit_trading_max_age_seconds") == 2.0
    assert value(samples, reads, served_by="stream", reason="fresh") == 0
    assert value(samples, "ratekit_stream_connected") == 0
    assert value(samples, "ratekit_stream_connects_total") == 0


def test_fiat_figures_follow_the_snapshot() -> None:
    samples = scrape(sample_runtime())

    assert value(samples, "ratekit_fiat_price", pair="btc/usd") == 65010.0
    assert value(samples, "ratekit_fiat_price_age_seconds", pair="eth/usd") == 2400.0
    # a price never fetched has no age and no price, only its state
    assert not [s for s in samples if s.labels.get("pair") == "xyz/usd" and "age" in s.name]
    assert value(samples, "ratekit_fiat_state", pair="xyz/usd", state="never") == 1
    assert value(samples, "ratekit_fiat_state", pair="xyz/usd", state="fresh") == 0
    assert value(samples, "ratekit_fiat_state", pair="eth/usd", state="stale") == 1
    assert value(samples, "ratekit_fiat_calls_total", call="simple_price") == 12
    assert value(samples, "ratekit_fiat_errors_total") == 4
    assert value(samples, "ratekit_fiat_rate_limited_responses_total") == 3
    assert value(samples, "ratekit_fiat_consecutive_failures") == 2
    assert value(samples, "ratekit_fiat_paused") == 1
    assert value(samples, "ratekit_fiat_coin_list_entries") == 17_123


def test_weight_figures_follow_the_snapshot() -> None:
    samples = scrape(sample_runtime())
    weight = {"pool": "REQUEST_WEIGHT", "scope": "ip"}
    orders = {"pool": "ORDERS", "scope": "account"}
    book = "GET api/v3/ticker/bookTicker"

    assert value(samples, "ratekit_weight_pool_used", **weight) == 1234
    assert value(samples, "ratekit_weight_pool_limit", **weight) == 6000
    assert value(samples, "ratekit_weight_pool_effective_limit", **weight) == 1600
    assert value(samples, "ratekit_weight_pool_remaining", **weight) == 366
    assert value(samples, "ratekit_weight_pool_server_used", **weight) == 1300
    assert value(samples, "ratekit_weight_pool_interval_seconds", **orders) == 10
    assert value(samples, "ratekit_weight_pool_paused", **weight) == 0
    assert value(samples, "ratekit_weight_pool_paused", **orders) == 1
    assert not [
        s for s in samples if s.name == "ratekit_weight_pool_server_used" and s.labels == orders
    ]
    assert (
        value(samples, "ratekit_weight_pool_rate_limited_responses_total", status="418", **orders)
        == 2
    )
    assert value(samples, "ratekit_weight_calls_total", endpoint=book) == 20
    assert value(samples, "ratekit_weight_charged_total", endpoint=book) == 80
    assert (
        value(samples, "ratekit_weight_rate_limited_responses_total", endpoint=book, status="429")
        == 1
    )
    assert value(samples, "ratekit_weight_backend_healthy", backend="redis") == 0
    assert value(samples, "ratekit_weight_backend_degraded", backend="redis") == 1
    assert value(samples, "ratekit_weight_headroom_ratio") == pytest.approx(0.8)
    assert value(samples, "ratekit_weight_info", mode="enforce", preset="binance", backend="redis")
    assert value(
        samples, "ratekit_info", version=__version__, freqtrade_version="2026.9", exchange="binance"
    )


def test_scope_clients_and_this_process_s_priority() -> None:
    samples = scrape(sample_runtime())
    download = {"client_id": "a1", "client": "download-data", "run_mode": "util_exchange"}
    markets = {"client_id": "b2", "client": "list-markets", "run_mode": "util_exchange"}

    assert value(samples, "ratekit_weight_reserve_ratio") == 0.5
    assert value(samples, "ratekit_weight_background") == 0
    assert value(samples, "ratekit_weight_calls_waiting") == 2
    assert value(samples, "ratekit_weight_blocked_seconds_total") == 3.5
    assert value(samples, "ratekit_scope_client_running", host="host-1", **download) == 1
    assert value(samples, "ratekit_scope_client_running", host="host-1", **markets) == 0
    assert value(samples, "ratekit_scope_client_weight_total", host="host-1", **download) == 742
    assert value(samples, "ratekit_scope_client_calls_total", host="host-1", **download) == 371
    assert (
        value(samples, "ratekit_scope_client_blocked_seconds_total", host="host-1", **download)
        == 48.5
    )
    assert (
        value(
            samples,
            "ratekit_scope_client_rate_limited_responses_total",
            host="host-1",
            status="429",
            **markets,
        )
        == 1
    )


def test_a_weights_document_without_clients_exposes_no_client_figures() -> None:
    """A bot of an older ratekit version serves none of the client keys."""
    snapshot: Any = weights_snapshot()
    for name in ("background", "reserve", "waiting", "client", "clients"):
        del snapshot[name]
    runtime = sample_runtime()
    runtime.weights = FakeComponent(snapshot)

    samples = scrape(runtime)

    assert value(samples, "ratekit_weight_calls_total", endpoint="POST api/v3/order") == 6
    assert not [s for s in samples if s.name.startswith("ratekit_scope_client")]
    assert not [s for s in samples if s.name == "ratekit_weight_reserve_ratio"]


def test_wait_histogram_is_cumulative_and_completed_with_inf() -> None:
    samples = scrape(sample_runtime())
    book = "GET api/v3/ticker/bookTicker"

    buckets = {
        s.labels["le"]: s.value
        for s in samples
        if s.name == "ratekit_weight_wait_seconds_bucket" and s.labels["endpoint"] == book
    }
    assert buckets == {"0.1": 15, "1.0": 19, "5.0": 20, "+Inf": 20}
    assert value(samples, "ratekit_weight_wait_seconds_count", endpoint=book) == 20
    assert value(samples, "ratekit_weight_wait_seconds_sum", endpoint=book) == 1.5
    assert value(samples, "ratekit_weight_wait_seconds_count", endpoint="POST api/v3/order") == 6


def test_malformed_histogram_is_skipped_not_fatal() -> None:
    snapshot = weights_snapshot()
    snapshot["wait_histogram"]["POST api/v3/order"] = {
        "buckets": [[0.1, 9], [1.0, 3]],  # not cumulative
        "sum": 1,
        "count": 9,
    }
    runtime = sample_runtime()
    runtime.weights = FakeComponent(snapshot)

    samples = scrape(runtime)

    endpoints = {s.labels["endpoint"] for s in samples if s.name.startswith("ratekit_weight_wait")}
    assert endpoints == {"GET api/v3/ticker/bookTicker"}


def test_inactive_missing_and_broken_components_do_not_break_the_scrape() -> None:
    runtime = Runtime(
        settings=parse_settings({"enabled": True}),
        freqtrade_version="2026.9",
        rate_cache=FakeComponent(barely_used_rate_cache()),
        fiat=None,
        weights=BrokenComponent(),
    )

    samples = scrape(runtime)

    assert value(samples, "ratekit_component_active", component="rate_cache") == 1
    assert value(samples, "ratekit_component_active", component="fiat") == 0
    assert value(samples, "ratekit_component_active", component="weights") == 0
    assert value(samples, "ratekit_component_snapshot_error", component="weights") == 1
    assert value(samples, "ratekit_component_snapshot_error", component="fiat") == 0
    assert value(samples, "ratekit_cache_hits_total", side="entry") == 1
    assert value(
        samples, "ratekit_info", version=__version__, freqtrade_version="2026.9", exchange=""
    )
    assert not [s for s in samples if s.name.startswith(("ratekit_fiat_", "ratekit_weight_"))]


def barely_used_rate_cache() -> RatekitRateBook:
    """A rate book with one read and nothing run yet."""
    snapshot = rate_cache_snapshot()
    snapshot["sides"] = {"entry": {**snapshot["sides"]["entry"], "hits": 1}}
    snapshot["last_prewarm"] = None
    return snapshot


def test_collector_can_be_registered_in_a_callers_registry() -> None:
    registry = CollectorRegistry()
    registry.register(metrics.RatekitCollector(sample_runtime(), clock=lambda: NOW))

    assert registry.get_sample_value("ratekit_cache_hits_total", {"side": "entry"}) == 88


def test_the_docs_list_every_metric() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    reference = (docs / "rest-and-metrics.md").read_text()
    missing = [name for name in metrics.DOCUMENTED_METRICS if f"`{name}`" not in reference]
    assert not missing, missing
