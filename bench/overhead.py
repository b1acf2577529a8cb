"""Benchmark 4: what ratekit adds per call, next to what stock Freqtrade pays anyway.

Three measurements, each stock and ratekit side by side:
1. Weight accounting, called directly (no HTTP): one `Ledger.charge_for` + `acquire` +
   `on_response` (with the headers of a Binance answer in a requests CaseInsensitiveDict,
   as ccxt's sync client hands them over) per call, in `observe` and `enforce` mode, memory
   backend and Redis backend (a real redis-server on loopback). Limits are set far above
   what the loop uses, so nothing ever waits: this is the pure bookkeeping cost. Targets:
   <= 50 us per call (memory), <= 2 ms (Redis).
2. End to end: `fetch_order_book` through a bare ccxt `binance` (stock) and through ccxt
   instrumented by ratekit, against the Binance emulator running in its own process. Calls
   of all clients are interleaved (each round in a new random order) so drift hits every
   client alike; the overhead is the difference of medians. ccxt's own throttle is off on
   every client (it sleeps on purpose, which is not overhead). A loopback round trip takes
   ~1.8 ms with a jitter of tens of µs, so this difference is only good to about ±20 µs.
   The same calls are therefore also made against one recorded emulator response replayed
   by the HTTP session (everything ccxt and ratekit do runs: request building, usage
   headers, JSON and order-book parsing; only the socket is gone): the overhead measured
   there is the one the target is checked on. Target: <= 50 us per call (memory backend).
3. A cache read: ratekit's `RateCache.get` (trading path) and `RateCache.read` (reader path)
   against Freqtrade's `FtTTLCache.get`, bare and under a lock as `Exchange.get_rate` does.

    .venv/bin/python bench/overhead.py           # full run (about 2 minutes)
    .venv/bin/python bench/overhead.py --quick   # smoke run (a few seconds)
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import console, print_table, write_results
from freqtrade_ratekit.sim.exchange import exchange_ccxt_config
from freqtrade_ratekit.weights import (
    Ledger,
    MemoryBackend,
    RedisBackend,
    instrument,
    preset_for,
    scope_digest,
)
from tests.redis_fixtures import RedisServer

MEMORY_TARGET_US = 50.0
REDIS_TARGET_US = 2000.0
UNBOUNDED_POOLS = {  # far above anything the benchmark sends: acquire never waits
    "REQUEST_WEIGHT": {"limit": 10**12, "interval": 60},
    "RAW_REQUESTS": {"limit": 10**12, "interval": 300},
}
# The headers of a Binance spot REST answer (served through CloudFront): the ledger scans all
# of them on every response, so the direct measurement gets the full set, not just the two
# usage headers.
USAGE_HEADERS = {
    "Content-Type": "application/json;charset=UTF-8",
    "Content-Length": "1843",
    "Connection": "keep-alive",
    "Date": "Sat, 21 Nov 2026 10:00:00 GMT",
    "Server": "nginx",
    "x-mbx-uuid": "6f1c7f7e-2f4f-4c53-9d0b-2d7c1d3b9c1a",
    "x-mbx-used-weight": "125",
    "x-mbx-used-weight-1m": "125",
    "Strict-Transport-Security": "max-age=31536000; includeSubdomains",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Xss-Protection": "1; mode=block",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "0",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "X-Cache": "Miss from cloudfront",
    "Via": "1.1 0c1b3a4e5f.cloudfront.net (CloudFront)",
}
RESPONSE_HEADERS = CaseInsensitiveDict(USAGE_HEADERS)  # what ccxt's sync client passes on
ORDER_BOOK_PARAMS = {"symbol": "BTCUSDT", "limit": 50}


# ----------------------------------------------------------------------------- helpers
def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def micro_summary(samples_s: Sequence[float]) -> dict[str, float]:
    """Mean / p50 / p99 in microseconds."""
    us = [s * 1e6 for s in samples_s]
    return {
        "n": len(us),
        "mean_us": statistics.fmean(us),
        "p50_us": percentile(us, 50),
        "p99_us": percentile(us, 99),
    }


def us(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def make_ledger(mode: str, redis_url: str | None) -> Ledger:
    preset = preset_for("binance", pools=UNBOUNDED_POOLS)
    backend: Any = MemoryBackend()
    if redis_url is not None:
        backend = RedisBackend(
            redis_url,
            exchange="binance",
            ip_scope_id=scope_digest("ip", "bench"),
            account_scope_id=scope_digest("account", "binance", "no-key"),
        )
    return Ledger(preset, mode=mode, headroom=0.8, backend=backend)


def ledger_cases(redis_url: str) -> list[tuple[str, str, str | None, float]]:
    return [
        ("observe, memory", "observe", None, MEMORY_TARGET_US),
        ("enforce, memory", "enforce", None, MEMORY_TARGET_US),
        ("observe, Redis (loopback)", "observe", redis_url, REDIS_TARGET_US),
        ("enforce, Redis (loopback)", "enforce", redis_url, REDIS_TARGET_US),
    ]


# ----------------------------------------------------------------------------- 1. ledger
def time_ledger_path(ledger: Ledger, calls: int) -> list[float]:
    """Per call: what the ccxt hooks do around one request (charge, admit, read the answer)."""
    samples = []
    clock = time.perf_counter
    for _ in range(calls):
        started = clock()
        charge = ledger.charge_for("public", "GET", "depth", ORDER_BOOK_PARAMS, 1.0)
        ledger.acquire(charge)
        ledger.on_response(charge, 200, RESPONSE_HEADERS)
        samples.append(clock() - started)
    return samples


def bench_ledger(redis_url: str, memory_calls: int, redis_calls: int) -> list[dict[str, Any]]:
    results = []
    for label, mode, url, target in ledger_cases(redis_url):
        ledger = make_ledger(mode, url)
        calls = redis_calls if url else memory_calls
        time_ledger_path(ledger, min(calls, 500))  # warm-up: caches, script load, connection
        summary = micro_summary(time_ledger_path(ledger, calls))
        close = getattr(ledger.backend, "close", None)
        if close is not None:
            close()
        results.append({"case": label, "target_us": target, **summary})
    return results


# ----------------------------------------------------------------------------- 2. ccxt e2e
@contextmanager
def emulator_process() -> Iterator[str]:
    """The bundled emulators in their own process (the benchmark's GIL stays its own)."""
    process = subprocess.Popen(  # our own argv, no shell
        [
            sys.executable,
            "-m",
            "freqtrade_ratekit.cli",
            "emulator",
            "--weight-limit",
            str(10**9),
            "--window-s",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("the emulator exited before printing its URL")
            match = re.match(r"exchange: (http://\S+)", line)
            url = match.group(1) if match else None
        if url is None:
            raise RuntimeError("the emulator did not print its URL in time")
        drain = threading.Thread(target=process.stdout.read, daemon=True)
        drain.start()
        yield url
    finally:
        process.terminate()
        process.wait(10)


def make_client(url: str) -> Any:
    import ccxt

    config = exchange_ccxt_config(url, spot_only=True)["ccxt_config"]
    client = ccxt.binance({**config, "enableRateLimit": False})
    client.load_markets()
    return client


BARE = "bare ccxt (stock)"


def overhead_rows(samples: dict[str, list[float]], bare_name: str = BARE) -> list[dict[str, Any]]:
    bare = statistics.median(samples[bare_name])
    rows = []
    for name, values in samples.items():
        summary = micro_summary(values)
        rows.append({"client": name, **summary, "overhead_p50_us": summary["p50_us"] - bare * 1e6})
    return rows


def bench_ccxt(url: str, redis_url: str, rounds: int) -> dict[str, Any]:
    """Memory and Redis clients are timed in separate interleaved groups, each next to its
    own bare client: a Redis client's round trips between the memory clients' calls would
    otherwise count against them (about 10 us in trial runs)."""
    rows = []
    for group in (None, redis_url):
        bare_name = BARE if group is None else f"{BARE}, Redis group"
        clients: dict[str, Any] = {bare_name: make_client(url)}
        ledgers = []
        for label, mode, backend_url, _ in ledger_cases(redis_url):
            if backend_url == group:
                client = make_client(url)
                ledger = make_ledger(mode, backend_url)
                instrument(client, ledger)
                clients[f"ratekit {label}"] = client
                ledgers.append(ledger)
        samples = interleaved(clients, rounds, warmup=20)
        for ledger in ledgers:
            close = getattr(ledger.backend, "close", None)
            if close is not None:
                close()
        rows += overhead_rows(samples, bare_name)
    return {"rounds": rounds, "call": "fetch_order_book('BTC/USDT', 50)", "clients": rows}


class ReplaySession(requests.Session):
    """Answers every request with one recorded response, built anew each time as requests
    would (a CaseInsensitiveDict of headers, the raw body)."""

    def __init__(self, recorded: requests.Response) -> None:
        super().__init__()
        self._status = recorded.status_code
        self._reason = recorded.reason
        self._headers = dict(recorded.headers)
        self._body = recorded.content

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        response = requests.Response()
        response.status_code = self._status
        response.reason = self._reason
        response.headers = CaseInsensitiveDict(self._headers)
        response._content = self._body
        response.url = str(url)
        return response


def record_order_book(url: str) -> requests.Response:
    response = requests.get(f"{url}/api/v3/depth", params=ORDER_BOOK_PARAMS, timeout=10)
    response.raise_for_status()
    return response


def bench_replay(url: str, rounds: int) -> dict[str, Any]:
    recorded = record_order_book(url)
    clients: dict[str, Any] = {BARE: make_client(url)}
    for label, mode, backend_url, _ in ledger_cases(""):
        if backend_url is None:
            client = make_client(url)
            instrument(client, make_ledger(mode, None))
            clients[f"ratekit {label}"] = client
    for client in clients.values():
        client.session = ReplaySession(recorded)
    samples = interleaved(clients, rounds, warmup=200)
    rows = overhead_rows(samples)
    return {
        "rounds": rounds,
        "call": "fetch_order_book('BTC/USDT', 50), recorded emulator response replayed",
        "response_headers": len(recorded.headers),
        "clients": rows,
    }


def interleaved(clients: dict[str, Any], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Per client, the seconds of each `fetch_order_book`; clients take turns in a new random
    order every round, so drift (other processes, CPU frequency) hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    order = list(clients)
    shuffler = random.Random(42)
    for round_index in range(rounds + warmup):
        shuffler.shuffle(order)
        for name in order:
            client = clients[name]
            started = time.perf_counter()
            client.fetch_order_book("BTC/USDT", 50)
            elapsed = time.perf_counter() - started
            if round_index >= warmup:  # the first rounds warm connections and caches
                samples[name].append(elapsed)
    return samples


# ----------------------------------------------------------------------------- 3. cache
def time_batch(function: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Seconds per call: the best of `repeats` batches (timer cost spread over the batch)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def bench_cache(calls: int) -> list[dict[str, Any]]:
    from freqtrade.util import FtTTLCache

    from freqtrade_ratekit.rates.cache import RateCache

    pairs = [f"P{i}/USDT" for i in range(100)]
    stock = FtTTLCache(maxsize=100, ttl=300)
    ratekit = RateCache(maxsize=1000, ttl=300, stale_ttl=3600, negative_ttl=300)
    for index, pair in enumerate(pairs):
        stock[pair] = ratekit[pair] = 1.0 + index
    lock = threading.RLock()
    pair = pairs[50]

    def stock_locked() -> object:
        with lock:  # Exchange.get_rate reads its FtTTLCache under `_cache_lock`
            return stock.get(pair)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("FtTTLCache.get (stock)", lambda: stock.get(pair)),
        ("FtTTLCache.get under _cache_lock (stock get_rate)", stock_locked),
        ("ratekit RateCache.get (trading read)", lambda: ratekit.get(pair)),
        ("ratekit RateCache.read (REST reader)", lambda: ratekit.read(pair)),
    ]
    return [{"case": name, "ns": time_batch(fn, calls) * 1e9} for name, fn in cases]


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (smoke run)")
    args = parser.parse_args(argv)
    memory_calls, redis_calls, rounds, replay_rounds, cache_calls = (
        (5_000, 1_000, 200, 1_000, 50_000)
        if args.quick
        else (100_000, 20_000, 4_000, 20_000, 500_000)
    )

    with RedisServer() as redis_server:
        console.print("1/3 weight accounting, called directly ...")
        ledger = bench_ledger(redis_server.url, memory_calls, redis_calls)
        console.print("2/3 fetch_order_book, bare vs instrumented: emulator, then replayed ...")
        with emulator_process() as url:
            ccxt_results = bench_ccxt(url, redis_server.url, rounds)
            replay = bench_replay(url, replay_rounds)
    console.print("3/3 cache reads ...")
    cache = bench_cache(cache_calls)

    print_table(
        "Weight accounting per call: charge_for + acquire + on_response (no HTTP)",
        ["ratekit case", "calls", "mean µs", "p50 µs", "p99 µs", "target µs", "within"],
        [
            [
                r["case"],
                f"{r['n']:,}",
                us(r["mean_us"]),
                us(r["p50_us"]),
                us(r["p99_us"]),
                f"≤ {r['target_us']:,.0f}",
                "yes" if r["mean_us"] <= r["target_us"] else "NO",
            ]
            for r in ledger
        ],
    )
    print_table(
        f"{ccxt_results['call']} against the emulator, {rounds:,} interleaved rounds",
        ["client", "p50 µs", "mean µs", "p99 µs", "p50 overhead µs"],
        [
            [
                r["client"],
                us(r["p50_us"]),
                us(r["mean_us"]),
                us(r["p99_us"]),
                "-" if r["client"].startswith("bare") else f"{r['overhead_p50_us']:+,.1f}",
            ]
            for r in ccxt_results["clients"]
        ],
    )
    print_table(
        f"{replay['call']}, {replay_rounds:,} interleaved rounds (no socket)",
        ["client", "p50 µs", "mean µs", "p99 µs", "p50 overhead µs", "target µs", "within"],
        [
            [
                r["client"],
                us(r["p50_us"]),
                us(r["mean_us"]),
                us(r["p99_us"]),
                "-" if r["client"].startswith("bare") else f"{r['overhead_p50_us']:+,.1f}",
                "-" if r["client"].startswith("bare") else f"≤ {MEMORY_TARGET_US:,.0f}",
                "-"
                if r["client"].startswith("bare")
                else ("yes" if r["overhead_p50_us"] <= MEMORY_TARGET_US else "NO"),
            ]
            for r in replay["clients"]
        ],
    )
    stock_get = cache[0]["ns"]
    print_table(
        "Rate cache read (hit), per call",
        ["case", "ns", "vs FtTTLCache.get"],
        [[r["case"], f"{r['ns']:,.0f}", f"{r['ns'] / stock_get:.1f}x"] for r in cache],
    )
    write_results(
        "overhead",
        {
            "mode": "quick" if args.quick else "full",
            "targets_us": {"memory": MEMORY_TARGET_US, "redis": REDIS_TARGET_US},
            "ledger_path": ledger,
            "ccxt_end_to_end": ccxt_results,
            "ccxt_replayed_response": replay,
            "cache_read": cache,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
