"""Benchmark 5: a running bot's trading loop with N open trades: weight per minute, iteration time.

For each N, a stock Freqtrade bot and a ratekit bot (`rate_cache.trading_batch` on) run at the
same time, each against its own exchange and CoinGecko emulators (same seed), so each
emulator's counters are one bot's traffic. Both bots run the trading loop
(`process_throttle_secs` 5, `RatekitDemoStrategy`: it never enters or exits on its own) with N
trades force-entered through the REST API (`max_open_trades` = N: no entry after that), priced
from tickers as Freqtrade's defaults do. Then the exchange latency is set (100 ms), and after a
warm-up the window starts. Every iteration, stock's `handle_trade` prices each open trade with
`get_rate(refresh=True)`: one `fetch_ticker` round trip per trade, one after another. Ratekit
serves those reads from one batched call (all book tickers, weight 4) fetched at the start of
the iteration, while younger than `trading_max_age`.

Measured over the window, per bot:
- pricing weight per minute: what the bot's emulator charged on `ticker/24hr`,
  `ticker/bookTicker`, `ticker/price` and `depth` (the ratekit side includes its background
  refresher), and the total weight per minute (candles, markets, ... too);
- the iteration duration (`FreqtradeBot.process`) p50 / p99, timed the same way on both sides by
  `bench/_timed_bot.py`, installed before ratekit.

Targets, printed next to the figures, not asserted: ratekit's pricing weight at N = 50 at most
1/10 of stock's; ratekit's iteration p50 at N = 200 at most one exchange round trip + 100 ms.

    .venv/bin/python bench/trading_loop.py                           # N = 10, 50, 200; 3 min each
    .venv/bin/python bench/trading_loop.py --quick   # smoke: N = 10, 30 s (about 1 min)
    .venv/bin/python bench/trading_loop.py --trades 50 --minutes 5 --latency-ms 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PRICING_ENDPOINTS,
    SEED,
    console,
    endpoint_deltas,
    fmt_ms,
    iteration_durations,
    print_table,
    ratio,
    summary,
    timed_bot,
    trading_batch_settings,
    write_results,
)
from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config

DEFAULT_TRADES = (10, 50, 200)
DEFAULT_LATENCY_MS = 100.0
DEFAULT_MINUTES = 3.0
DEFAULT_WARMUP_S = 30.0
THROTTLE_S = 5
PRICING_TARGET_TRADES, PRICING_TARGET_RATIO = 50, 10.0
ITERATION_TARGET_TRADES, ITERATION_TARGET_EXTRA_S = 200, 0.100
SIDES = ("stock", "ratekit")


@dataclass
class Side:
    name: str
    trades: int
    workdir: Path
    exchange: Any = None
    coingecko: Any = None
    bot: BotProcess | None = None
    opened_s: float = 0.0
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def start(self, ratekit: dict[str, Any]) -> Side:
        self.exchange = start_exchange_emulator(seed=SEED)
        self.coingecko = start_coingecko_emulator(seed=SEED)
        pairs = self.exchange.emulator.universe.usdt_pairs()[: self.trades]
        config = make_bot_config(
            self.exchange.url,
            self.coingecko.url,
            find_free_port(),
            pairs=pairs,
            max_open_trades=self.trades,
            ratekit=ratekit if self.name == "ratekit" else None,
            db_dir=self.workdir,
            extra={"internals": {"process_throttle_secs": THROTTLE_S, "heartbeat_interval": 0}},
        )
        self.bot = timed_bot(config, self.workdir, with_ratekit=self.name == "ratekit")
        started = time.monotonic()
        self.bot.start(timeout=180)
        self.bot.open_trades(self.trades, timeout=600)
        self.opened_s = time.monotonic() - started
        return self

    def stop(self) -> None:
        if self.bot is not None:
            self.bot.stop(timeout=30)
        for emulator in (self.exchange, self.coingecko):
            if emulator is not None:
                emulator.stop()


def round_trip_s(url: str, samples: int = 5) -> float:
    """Median time of an exchange call (`ping`) from this process at the current latency."""
    times = []
    with requests.Session() as session:
        for _ in range(samples):
            started = time.perf_counter()
            session.get(f"{url}/api/v3/ping", timeout=30).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(side: Side, since: float, until: float) -> dict[str, Any]:
    assert side.bot is not None
    minutes = (until - since) / 60
    endpoints = endpoint_deltas(side.before, side.after)
    pricing = {name: row for name, row in endpoints.items() if name in PRICING_ENDPOINTS}
    durations, errors = iteration_durations(side.bot, since, until)
    open_trades = side.bot.open_trade_count()
    result: dict[str, Any] = {
        "side": side.name,
        "open_trades": side.trades,
        "open_trades_at_end": open_trades,
        "seconds_to_open_trades": round(side.opened_s, 1),
        "window_s": round(until - since, 1),
        "pricing_weight_per_min": sum(r["weight"] for r in pricing.values()) / minutes,
        "pricing_calls_per_min": sum(r["calls"] for r in pricing.values()) / minutes,
        "total_weight_per_min": sum(r["weight"] for r in endpoints.values()) / minutes,
        "total_calls_per_min": sum(r["calls"] for r in endpoints.values()) / minutes,
        "status_429": sum(r["status_429"] for r in endpoints.values()),
        "iteration_s": summary(durations),
        "iteration_errors": errors,
        "endpoints": endpoints,
    }
    if side.name == "ratekit":
        status, body, _ = side.bot.get("/api/v1/ratekit/status", timeout=30)
        result["ratekit_rate_cache"] = body.get("rate_cache") if status == 200 and body else None
    if open_trades != side.trades:
        console.print(f"  [yellow]{side.name} N={side.trades}: {open_trades} trades open at end")
    return result


def run_case(
    trades: int,
    *,
    root: Path,
    ratekit: dict[str, Any],
    latency_ms: float,
    warmup_s: float,
    window_s: float,
) -> tuple[list[dict[str, Any]], float]:
    sides = [Side(name, trades, root / f"{name}-{trades}") for name in SIDES]
    try:
        with ThreadPoolExecutor(len(sides)) as pool:
            for started in [pool.submit(side.start, ratekit) for side in sides]:
                started.result()
        for side in sides:
            console.print(f"  {side.name:7} N={trades:<3}: trades open in {side.opened_s:.1f} s")
            side.exchange.update(latency_ms=latency_ms)
        rtt = round_trip_s(sides[0].exchange.url)
        console.print(
            f"  exchange latency {latency_ms:g} ms (round trip {rtt * 1000:.0f} ms); "
            f"warm-up {warmup_s:g} s, then {window_s:g} s measured ..."
        )
        time.sleep(warmup_s)
        for side in sides:
            side.before = side.exchange.stats()
        since = time.time()
        time.sleep(window_s)
        for side in sides:
            side.after = side.exchange.stats()
        until = time.time()
        results = [measure(side, since, until) for side in sides]
    finally:
        with ThreadPoolExecutor(len(sides)) as pool:
            list(pool.map(Side.stop, sides))
    return results, rtt


def target_lines(results: list[dict[str, Any]], rtts: dict[int, float]) -> list[str]:
    def find(side: str, trades: int) -> dict[str, Any] | None:
        for r in results:
            if r["side"] == side and r["open_trades"] == trades:
                return r
        return None

    lines = []
    stock, rk = find("stock", PRICING_TARGET_TRADES), find("ratekit", PRICING_TARGET_TRADES)
    head = f"pricing weight at N={PRICING_TARGET_TRADES} <= 1/{PRICING_TARGET_RATIO:g} of stock's"
    if stock and rk:
        limit = stock["pricing_weight_per_min"] / PRICING_TARGET_RATIO
        met = rk["pricing_weight_per_min"] <= limit
        lines.append(
            f"{head}: ratekit {rk['pricing_weight_per_min']:,.0f}/min vs stock "
            f"{stock['pricing_weight_per_min']:,.0f}/min (limit {limit:,.0f}): "
            + ("met" if met else "MISSED")
        )
    else:
        lines.append(f"{head}: not measured (N={PRICING_TARGET_TRADES} not in this run)")
    rk = find("ratekit", ITERATION_TARGET_TRADES)
    head = f"iteration p50 at N={ITERATION_TARGET_TRADES} <= one round trip + 100 ms"
    if rk:
        limit = rtts[ITERATION_TARGET_TRADES] + ITERATION_TARGET_EXTRA_S
        p50 = rk["iteration_s"]["p50"]
        lines.append(
            f"{head}: ratekit p50 {fmt_ms(p50)} ms (limit {fmt_ms(limit)} ms): "
            + ("met" if p50 <= limit else "MISSED")
        )
    else:
        lines.append(f"{head}: not measured (N={ITERATION_TARGET_TRADES} not in this run)")
    return lines


def print_results(
    results: list[dict[str, Any]], rtts: dict[int, float], latency_ms: float, window_s: float
) -> list[str]:
    rows = []
    for trades in sorted({r["open_trades"] for r in results}):
        stock, rk = (
            next(r for r in results if r["side"] == side and r["open_trades"] == trades)
            for side in SIDES
        )
        for r in (stock, rk):
            it = r["iteration_s"]
            rows.append(
                [
                    f"N={trades}",
                    r["side"],
                    f"{r['pricing_weight_per_min']:,.0f}",
                    f"{r['pricing_calls_per_min']:,.1f}",
                    f"{r['total_weight_per_min']:,.0f}",
                    fmt_ms(it["p50"]),
                    fmt_ms(it["p99"]),
                    f"{it['n']}",
                    f"{r['status_429']}",
                ]
            )
        rows.append(
            [
                "",
                "stock / ratekit",
                ratio(stock["pricing_weight_per_min"], rk["pricing_weight_per_min"]),
                ratio(stock["pricing_calls_per_min"], rk["pricing_calls_per_min"]),
                ratio(stock["total_weight_per_min"], rk["total_weight_per_min"]),
                ratio(stock["iteration_s"]["p50"], rk["iteration_s"]["p50"]),
                ratio(stock["iteration_s"]["p99"], rk["iteration_s"]["p99"]),
                "",
                f"RTT {rtts[trades] * 1000:.0f} ms",
            ]
        )
    print_table(
        f"Trading loop with N open trades: process_throttle_secs {THROTTLE_S}, exchange latency "
        f"{latency_ms:g} ms, {window_s:g} s measured per case",
        [
            "open trades",
            "side",
            "pricing weight/min",
            "pricing calls/min",
            "total weight/min",
            "iteration p50 ms",
            "iteration p99 ms",
            "iterations",
            "429",
        ],
        rows,
    )
    lines = target_lines(results, rtts)
    for line in lines:
        console.print(f"target: {line}")
    return lines


def parse_trades(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of counts, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"counts must be at least 1, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: N=10, 30 s, 15 s warm-up")
    parser.add_argument("--trades", type=parse_trades, help="N, e.g. 10,50,200 (the default)")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS)
    parser.add_argument("--minutes", type=float, help="window per N (default 3)")
    parser.add_argument("--warmup-s", type=float, help="before each window (default 30)")
    parser.add_argument(
        "--results-name",
        default="trading_loop",
        help="bench/results/NAME.json (default trading_loop)",
    )
    args = parser.parse_args(argv)
    args.trades = args.trades or ([10] if args.quick else list(DEFAULT_TRADES))
    args.minutes = args.minutes or (0.5 if args.quick else DEFAULT_MINUTES)
    if args.warmup_s is None:
        args.warmup_s = 15.0 if args.quick else DEFAULT_WARMUP_S
    window_s = args.minutes * 60
    batch = trading_batch_settings()
    ratekit = {"enabled": True, "rate_cache": batch}
    console.print(
        f"benchmark 5: N={args.trades}, process_throttle_secs {THROTTLE_S}, exchange latency "
        f"{args.latency_ms:g} ms, {window_s:g} s per case after {args.warmup_s:g} s warm-up"
    )
    if not batch:
        console.print(
            "[yellow]rate_cache.trading_batch is not in this checkout's config: the ratekit bot "
            "runs without the trading batch (its trading reads go to the exchange, as stock's)"
        )
    root = Path(tempfile.mkdtemp(prefix="ratekit-bench-loop-"))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    rtts: dict[int, float] = {}
    for trades in args.trades:
        case, rtts[trades] = run_case(
            trades,
            root=root,
            ratekit=ratekit,
            latency_ms=args.latency_ms,
            warmup_s=args.warmup_s,
            window_s=window_s,
        )
        results.extend(case)
    elapsed = time.monotonic() - started
    lines = print_results(results, rtts, args.latency_ms, window_s)
    console.print(f"Run took {elapsed:.0f} s.")
    write_results(
        args.results_name,
        {
            "mode": "quick" if args.quick else "full",
            "settings": {
                "trades": args.trades,
                "exchange_latency_ms": args.latency_ms,
                "process_throttle_secs": THROTTLE_S,
                "window_s": window_s,
                "warmup_s": args.warmup_s,
                "ratekit": ratekit,
                "trading_batch_available": bool(batch),
                "pricing_endpoints": list(PRICING_ENDPOINTS),
                "seed": SEED,
            },
            "round_trip_s": {str(n): round(s, 4) for n, s in rtts.items()},
            "targets": lines,
            "seconds": round(elapsed, 1),
            "runs": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
