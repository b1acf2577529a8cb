"""Benchmark 2: exchange weight spent keeping N open trades priced while a UI polls.

A stock bot and a ratekit bot per N run side by side (each against its own fresh exchange and
CoinGecko emulators, same seed, exchange latency 200 ms). Once their N trades are open, a
poller per bot sends `/api/v1/status` then `/api/v1/profit` every 5 s (as FreqUI does) for the
window; the weight is what the exchange emulator charged (Binance weights) inside the window.

What is measured, honestly:
- The trading loops stay idle after the trades are open (`harness.IDLE_TRADING_LOOP`), so only
  the UI's reads price the trades. With a running loop, Freqtrade's `handle_trade` prices every open
  trade with `get_rate(refresh=True)` on each iteration, in stock and ratekit alike (design
  rule 1: trading never gets a cached price), and that weight would be the same on both sides.
- Ratekit runs with its defaults (ttl 300 s, refresh_interval 60 s), stock with its hard-coded
  300 s TTL and 100-entry cache. The full window (610 s) spans two stock TTL periods.
- `--quick` uses N = 10 and a 60 s window: shorter than stock's TTL, so stock pays its first
  lookup only and the ratio is NOT representative; it is a smoke run.

    .venv/bin/python bench/weight_spent.py           # N = 10, 50, 200, 610 s window
    .venv/bin/python bench/weight_spent.py --quick   # N = 10, 60 s window (about 1.5 min)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    SEED,
    console,
    print_table,
    ratio,
    start_bot_with_trades,
    write_results,
)
from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import BotProcess

EXCHANGE_LATENCY_MS = 200
POLL_INTERVAL_S = 5.0
RATEKIT: dict[str, Any] = {"enabled": True}  # every rate_cache setting at its default
ROUTES = ("/api/v1/status", "/api/v1/profit")


@dataclass
class Run:
    side: str
    trades: int
    bot: BotProcess
    exchange: Any
    coingecko: Any
    polls: int = 0
    slowest_poll_s: float = 0.0
    failed_polls: int = 0
    start_totals: dict[str, Any] = field(default_factory=dict)
    end_totals: dict[str, Any] = field(default_factory=dict)

    def counters(self) -> dict[str, Any]:
        stats = self.exchange.stats()
        return {"totals": stats["totals"], "endpoints": stats["endpoints"]}

    def poll_until(self, deadline: float) -> None:
        """FreqUI's rhythm: both routes every 5 s (at once again when a poll overran)."""
        next_poll = time.monotonic()
        while next_poll < deadline:
            time.sleep(max(0.0, next_poll - time.monotonic()))
            started = time.monotonic()
            for route in ROUTES:
                try:
                    status, _, _ = self.bot.get(route, timeout=max(1.0, deadline - started))
                except requests.RequestException:
                    status = 0
                self.failed_polls += status != 200
            self.polls += 1
            self.slowest_poll_s = max(self.slowest_poll_s, time.monotonic() - started)
            next_poll += POLL_INTERVAL_S

    def stop(self) -> None:
        self.bot.stop(timeout=20)
        self.exchange.stop()
        self.coingecko.stop()


def spent(run: Run) -> dict[str, Any]:
    """Weight and calls per endpoint inside the window (counters, not the bounded call log)."""
    before = run.start_totals["endpoints"]
    endpoints = {}
    for name, row in run.end_totals["endpoints"].items():
        old = before.get(name, {"calls": 0, "weight": 0})
        calls, weight = row["calls"] - old["calls"], row["weight"] - old["weight"]
        if calls:
            endpoints[name] = {"calls": calls, "weight": weight}
    return {
        "weight": sum(row["weight"] for row in endpoints.values()),
        "calls": sum(row["calls"] for row in endpoints.values()),
        "status_429": run.end_totals["totals"]["status_429"]
        - run.start_totals["totals"]["status_429"],
        "endpoints": endpoints,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=10, 60 s window (smoke run)")
    parser.add_argument("--trades", type=int, nargs="*", help="override N (default 10 50 200)")
    parser.add_argument("--window", type=float, help="seconds of polling (default 610, quick 60)")
    args = parser.parse_args()
    counts = args.trades or ([10] if args.quick else [10, 50, 200])
    window = args.window or (60.0 if args.quick else 610.0)
    workdir = Path(tempfile.mkdtemp(prefix="ratekit-bench-weight-"))
    console.print(
        f"benchmark 2: N={counts}, UI polls /status + /profit every {POLL_INTERVAL_S:.0f} s for "
        f"{window:.0f} s, exchange latency {EXCHANGE_LATENCY_MS} ms"
        + (
            " (quick: window shorter than stock's 300 s TTL, not representative)"
            if args.quick
            else ""
        )
    )
    runs: list[Run] = []
    started = time.monotonic()
    try:
        for trades in counts:
            for side in ("stock", "ratekit"):
                exchange = start_exchange_emulator(seed=SEED)
                gecko = start_coingecko_emulator(seed=SEED)
                runs.append(Run(side, trades, None, exchange, gecko))  # type: ignore[arg-type]
                bot, seconds = start_bot_with_trades(
                    workdir / f"{side}-{trades}",
                    exchange_url=exchange.url,
                    coingecko_url=gecko.url,
                    pairs=exchange.emulator.universe.usdt_pairs()[:trades],
                    with_ratekit=side == "ratekit",
                    ratekit=RATEKIT,
                )
                runs[-1].bot = bot
                console.print(f"  {side:7} N={trades:<3}: {trades} trades open in {seconds:.1f} s")
        for run in runs:
            run.exchange.update(latency_ms=EXCHANGE_LATENCY_MS)
            run.start_totals = run.counters()
        deadline = time.monotonic() + window
        pollers = [threading.Thread(target=run.poll_until, args=(deadline,)) for run in runs]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
        for run in runs:
            run.end_totals = run.counters()
    finally:
        for run in runs:
            if run.bot is not None:
                run.stop()
            else:
                run.exchange.stop()
                run.coingecko.stop()
    elapsed = time.monotonic() - started

    results = {(run.side, run.trades): (run, spent(run)) for run in runs}
    rows = []
    for trades in counts:
        (stock, s), (rk, r) = results[("stock", trades)], results[("ratekit", trades)]
        rows.append(
            [
                f"N={trades}",
                f"{window:.0f} s",
                f"{s['weight']:,.0f}",
                f"{s['calls']:,}",
                f"{r['weight']:,.0f}",
                f"{r['calls']:,}",
                ratio(s["weight"], r["weight"]),
                f"{stock.polls}/{rk.polls}",
                f"{stock.slowest_poll_s:.1f}/{rk.slowest_poll_s:.2f}",
            ]
        )
    print_table(
        "Exchange weight spent keeping N open trades priced, UI polling every 5 s",
        [
            "open trades",
            "window",
            "stock weight",
            "stock calls",
            "ratekit weight",
            "ratekit calls",
            "stock / ratekit",
            "polls stock/rk",
            "slowest poll s stock/rk",
        ],
        rows,
    )
    console.print(f"Run took {elapsed:.0f} s.")
    write_results(
        "weight_spent",
        {
            "mode": "quick" if args.quick else "full",
            "settings": {
                "exchange_latency_ms": EXCHANGE_LATENCY_MS,
                "poll_interval_s": POLL_INTERVAL_S,
                "window_s": window,
                "ratekit": RATEKIT,
                "seed": SEED,
            },
            "seconds": round(elapsed, 1),
            "runs": [
                {
                    "side": run.side,
                    "open_trades": run.trades,
                    "polls": run.polls,
                    "failed_polls": run.failed_polls,
                    "slowest_poll_s": round(run.slowest_poll_s, 3),
                    **data,
                }
                for run, data in results.values()
            ],
        },
    )


if __name__ == "__main__":
    main()
