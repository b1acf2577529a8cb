"""Benchmark 1: `/api/v1/profit` and `/api/v1/status` latency, stock Freqtrade next to ratekit.

Real dry-run bots (stock via `freqtrade_ratekit.sim.stock`, ratekit via `freqtrade-ratekit`),
each against its own fresh exchange and CoinGecko emulators (same seed), N open trades,
exchange latency 200 ms, `fiat_display_currency` USD, and CoinGecko either slow (5 s per
answer) or hanging. Requests are sent one after another through the real REST API.

"After the fresh TTL", honestly:
- The bots' trading loops stay idle once the trades are open (`harness.IDLE_TRADING_LOOP`):
  with a running loop, `handle_trade` re-prices every open trade each iteration with
  `refresh=True`, so no cached rate would ever be older than one iteration in either bot.
- Stock caches each trade's exit rate while it opens it (the entry notification reads it), for
  its hard-coded 300 s. The full run really waits: 305 s pass after the last stock bot opened
  its trades before its first measured request. `--quick` does NOT wait: stock's exchange
  rates are still fresh there, so quick stock figures show only the CoinGecko effect.
  Either way the FIRST request is the one after the TTL; later ones within 300 s are served
  from stock's cache when N <= 100 (its maxsize is 100: with 200 trades every request evicts
  what the next one needs).
- Ratekit runs with `rate_cache.ttl` 10 s: its exit rates are cached once (a reader asks),
  then the cached rates are past their TTL before the first measured request (the states are
  recorded in the JSON; ratekit's own 60 s background refresh may renew some, as it would).
- Fiat: stock caches a CoinGecko price for 6 h once it got one. To measure the state after
  that TTL (waiting 6 h is not an option), CoinGecko answers 503 while the trades open, so
  neither side holds a price (stock returns 0.0 for a failed lookup and does not cache it).
  Then "slow" costs stock's first request 5 s; "hanging" costs every stock request until
  pycoingecko's 120 s timeout. Requests have a client timeout (`--timeout`); a request cut off
  there is counted at that value and marked ">"; it keeps running inside the bot.
- Stock samples are limited by a time budget per case; every case gets at least one /profit
  and one /status. The counts are in the table and the JSON.

    .venv/bin/python bench/profit_latency.py            # N = 10, 50, 200 (about 11 minutes)
    .venv/bin/python bench/profit_latency.py --quick    # N = 10, no 300 s wait (about 1.5 min)
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    SEED,
    console,
    fmt_ms,
    print_table,
    ratio,
    start_bot_with_trades,
    summary,
    write_results,
)
from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import BotProcess, wait_for

EXCHANGE_LATENCY_MS = 200
COINGECKO_MODES: dict[str, dict[str, Any]] = {
    "slow": {"latency_ms": 5000},
    "hang": {"hang": True},
}
STOCK_TTL_S = 300  # freqtrade/exchange/exchange.py: FtTTLCache(maxsize=100, ttl=300)
RATEKIT_TTL_S = 10
RATEKIT = {"enabled": True, "rate_cache": {"ttl": RATEKIT_TTL_S}}
ENDPOINTS = ("/api/v1/profit", "/api/v1/status")
RATEKIT_SAMPLES = 100  # per endpoint: a p99 of 20 samples would be just their maximum


@dataclass
class Case:
    side: str  # "stock" | "ratekit"
    trades: int
    coingecko: str
    bot: BotProcess
    exchange: Any
    coingecko_emulator: Any
    open_seconds: float
    ready_at: float = 0.0  # monotonic time the trades were open
    samples: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    timeouts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINTS, 0))
    unpriced: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINTS, 0))
    first: dict[str, float] = field(default_factory=dict)
    states_before: dict[str, int] = field(default_factory=dict)  # ratekit exit-rate states

    def stop(self) -> None:
        self.coingecko_emulator.update(hang=False, latency_ms=0, fail_rate=0.0)
        self.exchange.update(latency_ms=0)
        self.bot.stop(timeout=20)
        self.exchange.stop()
        self.coingecko_emulator.stop()


def prepare(side: str, trades: int, coingecko: str, workdir: Path) -> Case:
    exchange = start_exchange_emulator(seed=SEED)
    gecko = start_coingecko_emulator(seed=SEED)
    pairs = exchange.emulator.universe.usdt_pairs()[:trades]
    try:
        bot, seconds = start_bot_with_trades(
            workdir / f"{side}-{trades}-{coingecko}",
            exchange_url=exchange.url,
            coingecko_url=gecko.url,
            pairs=pairs,
            with_ratekit=side == "ratekit",
            ratekit=RATEKIT,
            before_trades=lambda: gecko.update(fail_rate=1.0),
        )
    except BaseException:
        exchange.stop()
        gecko.stop()
        raise
    console.print(f"  {side:7} N={trades:<3} {coingecko}: {trades} trades open in {seconds:.1f} s")
    case = Case(side, trades, coingecko, bot, exchange, gecko, seconds, ready_at=time.monotonic())
    if side == "ratekit":
        warm_ratekit(case)
    return case


def warm_ratekit(case: Case) -> None:
    """One reader asks for every exit rate; wait until all are cached, then past the TTL."""
    case.bot.get("/api/v1/status")
    wait_for(
        lambda: len(case.bot.get("/api/v1/ratekit/cache")[1]["sides"]["exit"]["entries"]),
        lambda cached: cached >= case.trades,
        60,
        f"ratekit bot N={case.trades}: every exit rate cached",
        interval=0.2,
    )
    case.ready_at = time.monotonic()


def measure(case: Case, *, samples: int, budget_s: float, timeout: float) -> None:
    """Alternate /profit and /status; stop at `samples` each or when the budget is spent."""
    case.exchange.update(latency_ms=EXCHANGE_LATENCY_MS)
    case.coingecko_emulator.update(fail_rate=0.0, **COINGECKO_MODES[case.coingecko])
    if case.side == "ratekit":
        _, body, _ = case.bot.get("/api/v1/ratekit/cache")
        for row in body["sides"]["exit"]["entries"]:
            case.states_before[row["state"]] = case.states_before.get(row["state"], 0) + 1
    started = time.monotonic()
    for _ in range(samples):
        for endpoint in ENDPOINTS:
            try:
                status, body, elapsed = case.bot.get(endpoint, timeout=timeout)
            except requests.Timeout:
                case.timeouts[endpoint] += 1
                status, body, elapsed = 0, None, timeout
            if status not in (0, 200):
                raise RuntimeError(f"{case.side} {endpoint} -> {status}: {body}")
            case.samples[endpoint].append(elapsed)
            case.first.setdefault(endpoint, elapsed)
            if endpoint == "/api/v1/status" and isinstance(body, list):
                case.unpriced[endpoint] += sum(
                    1
                    for t in body
                    if t.get("current_rate") is None or math.isnan(t["current_rate"])
                )
        if time.monotonic() - started > budget_s:
            break


def result_row(case: Case) -> dict[str, Any]:
    return {
        "side": case.side,
        "open_trades": case.trades,
        "coingecko": case.coingecko,
        "seconds_to_open_trades": round(case.open_seconds, 2),
        "ratekit_exit_rate_states_before": case.states_before or None,
        "endpoints": {
            endpoint: {
                **summary(case.samples[endpoint]),
                "first": case.first.get(endpoint),
                "client_timeouts": case.timeouts[endpoint],
                "unpriced_trades_in_status": case.unpriced[endpoint],
            }
            for endpoint in ENDPOINTS
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=10, no 300 s wait (see docstring)")
    parser.add_argument("--trades", type=int, nargs="*", help="override N (default 10 50 200)")
    parser.add_argument("--timeout", type=float, default=15.0, help="client timeout per request")
    args = parser.parse_args()
    counts = args.trades or ([10] if args.quick else [10, 50, 200])
    wait_for_stock_ttl = not args.quick
    workdir = Path(tempfile.mkdtemp(prefix="ratekit-bench-latency-"))
    console.print(
        f"benchmark 1: N={counts}, exchange latency {EXCHANGE_LATENCY_MS} ms, CoinGecko "
        f"{'/'.join(COINGECKO_MODES)}, stock TTL {STOCK_TTL_S} s "
        f"({'really waited' if wait_for_stock_ttl else 'quick: not waited, stock rates fresh'})"
        f", ratekit ttl {RATEKIT_TTL_S} s"
    )
    cases: list[Case] = []
    started = time.monotonic()
    try:
        for side in ("stock", "ratekit"):
            for trades in counts:
                for mode in COINGECKO_MODES:
                    cases.append(prepare(side, trades, mode, workdir))
        for case in cases:
            if case.side == "ratekit":
                wait = case.ready_at + RATEKIT_TTL_S + 1 - time.monotonic()
                time.sleep(max(0.0, wait))
                measure(case, samples=RATEKIT_SAMPLES, budget_s=60, timeout=args.timeout)
                case.stop()
        stock_cases = [c for c in cases if c.side == "stock"]
        if wait_for_stock_ttl and stock_cases:
            wait = max(c.ready_at for c in stock_cases) + STOCK_TTL_S + 5 - time.monotonic()
            console.print(f"waiting {max(0.0, wait):.0f} s for stock's 300 s TTL to pass")
            time.sleep(max(0.0, wait))
        for case in stock_cases:
            budget = 25 if case.coingecko == "hang" else 60
            measure(case, samples=10, budget_s=budget, timeout=args.timeout)
            case.stop()
    finally:
        for case in cases:
            if case.bot.process is not None and case.bot.process.poll() is None:
                case.stop()
    elapsed = time.monotonic() - started

    rows = []
    by_key = {(c.side, c.trades, c.coingecko): c for c in cases}
    for trades in counts:
        for mode in COINGECKO_MODES:
            stock, rk = by_key[("stock", trades, mode)], by_key[("ratekit", trades, mode)]
            for endpoint in ENDPOINTS:
                s, r = summary(stock.samples[endpoint]), summary(rk.samples[endpoint])
                cut = stock.timeouts[endpoint] > 0
                rows.append(
                    [
                        f"N={trades} CoinGecko {mode}",
                        endpoint.rsplit("/", 1)[-1],
                        f"{s['n']}/{r['n']}",
                        fmt_ms(
                            stock.first[endpoint], at_least=stock.first[endpoint] >= args.timeout
                        ),
                        *(
                            fmt_ms(s[q], at_least=cut and s[q] >= args.timeout)
                            for q in ("p50", "p99", "max")
                        ),
                        *(fmt_ms(r[q]) for q in ("p50", "p95", "p99", "max")),
                        ratio(s["p99"], r["p99"]),
                    ]
                )
    print_table(
        f"/profit and /status latency (ms), exchange latency {EXCHANGE_LATENCY_MS} ms, "
        f"after the TTL ({'stock waited 300 s' if wait_for_stock_ttl else 'quick mode'})",
        [
            "case",
            "route",
            "samples stock/rk",
            "stock first",
            "stock p50",
            "stock p99",
            "stock max",
            "ratekit p50",
            "ratekit p95",
            "ratekit p99",
            "ratekit max",
            "p99 ratio",
        ],
        rows,
    )
    console.print(
        "'>' = cut off by the client timeout; the bot kept working on it. "
        f"Run took {elapsed:.0f} s."
    )
    write_results(
        "profit_latency",
        {
            "mode": "quick" if args.quick else "full",
            "settings": {
                "exchange_latency_ms": EXCHANGE_LATENCY_MS,
                "coingecko_modes": COINGECKO_MODES,
                "stock_ttl_s": STOCK_TTL_S,
                "stock_ttl_really_waited": wait_for_stock_ttl,
                "ratekit": RATEKIT,
                "client_timeout_s": args.timeout,
                "seed": SEED,
            },
            "seconds": round(elapsed, 1),
            "cases": [result_row(c) for c in cases],
        },
    )


if __name__ == "__main__":
    main()
