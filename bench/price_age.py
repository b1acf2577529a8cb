"""Benchmark 6: the age of the price behind each trading decision, and pricing weight per minute:
stock vs ratekit's batch vs ratekit's stream.

Three bots run at the same time with N open trades (50), each against its own exchange
emulator (same seed, websocket market streams on): stock Freqtrade; ratekit with
`rate_cache.trading_batch` (one REST batch per iteration); ratekit with `rate_cache.stream`
too (websocket book tickers first, the REST batch as fallback). Trading loop with
`process_throttle_secs` 5, exchange latency 100 ms on REST and websocket alike, trades
force-entered and then held (`RatekitDemoStrategy` never trades on its own).

Measured over the window, per bot:
- pricing REST weight per minute (`ticker/24hr`, `ticker/bookTicker`, `ticker/price`, `depth`
  from the emulator's `/_sim/stats`), and the websocket messages the emulator pushed;
- the age of the data behind each trading read: ratekit's own record of every served read
  (`trading.served_age` of `/api/v1/ratekit/cache`, measured from the data's arrival, window
  deltas of its buckets; a quantile is shown as its bucket's upper bound), plus the reads it
  sent per pair (fresh, like stock's). Stock fetches each trading read's ticker at the read,
  so its age from arrival is ~0 and each read costs one round trip instead.

Targets, printed next to the figures (not asserted): stream pricing weight <= 1/100 of stock's;
p99 age of the price at a decision <= 1 s.

    .venv/bin/python bench/price_age.py                      # 50 trades, 3 min
    .venv/bin/python bench/price_age.py --quick              # smoke: 10 trades, 30 s
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PRICING_ENDPOINTS,
    SEED,
    console,
    endpoint_deltas,
    print_table,
    ratio,
    write_results,
)
from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.exchange import exchange_ccxt_config
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config

THROTTLE_S = 5
SIDES: dict[str, dict[str, Any] | None] = {
    "stock": None,
    "batch": {"enabled": True, "rate_cache": {"trading_batch": True, "stream": False}},
    "stream": {"enabled": True, "rate_cache": {"trading_batch": True, "stream": True}},
}
STREAM_WEIGHT_TARGET = 100.0
AGE_TARGET_S = 1.0


@dataclass
class Side:
    name: str
    trades: int
    workdir: Path
    exchange: Any = None
    coingecko: Any = None
    bot: BotProcess | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    cache_before: dict[str, Any] = field(default_factory=dict)
    cache_after: dict[str, Any] = field(default_factory=dict)

    def start(self) -> Side:
        self.exchange = start_exchange_emulator(seed=SEED)
        self.coingecko = start_coingecko_emulator(seed=SEED)
        pairs = self.exchange.emulator.universe.usdt_pairs()[: self.trades]
        ratekit = SIDES[self.name]
        config = make_bot_config(
            self.exchange.url,
            self.coingecko.url,
            find_free_port(),
            pairs=pairs,
            max_open_trades=self.trades,
            ratekit=ratekit,
            db_dir=self.workdir,
            extra={
                "exchange": exchange_ccxt_config(self.exchange.url, pairs, websocket=True),
                "internals": {"process_throttle_secs": THROTTLE_S, "heartbeat_interval": 0},
            },
        )
        self.bot = BotProcess(config, self.workdir, with_ratekit=ratekit is not None)
        self.bot.start(timeout=180)
        self.bot.open_trades(self.trades, timeout=600)
        return self

    def cache(self) -> dict[str, Any]:
        assert self.bot is not None
        if SIDES[self.name] is None:
            return {}
        status, body, _ = self.bot.get("/api/v1/ratekit/cache", timeout=30)
        return dict(body["trading"]) if status == 200 and body else {}

    def stop(self) -> None:
        if self.bot is not None:
            self.bot.stop(timeout=30)
        for emulator in (self.exchange, self.coingecko):
            if emulator is not None:
                emulator.stop()


def age_quantile(before: dict[str, Any], after: dict[str, Any], q: float) -> float | None:
    """The upper bound of the bucket holding quantile `q` of the window's served reads."""
    old = {str(le): count for le, count in before.get("buckets", [])}
    rows = [(le, count - old.get(str(le), 0)) for le, count in after.get("buckets", [])]
    total = rows[-1][1] if rows else 0
    if not total:
        return None
    for le, count in rows:
        if count >= q * total:
            return float("inf") if le == "+Inf" else float(le)
    return None


def measure(side: Side, minutes: float) -> dict[str, Any]:
    endpoints = endpoint_deltas(side.before, side.after)
    pricing = {name: row for name, row in endpoints.items() if name in PRICING_ENDPOINTS}
    result: dict[str, Any] = {
        "side": side.name,
        "open_trades": side.trades,
        "pricing_weight_per_min": sum(r["weight"] for r in pricing.values()) / minutes,
        "pricing_calls_per_min": sum(r["calls"] for r in pricing.values()) / minutes,
        "total_weight_per_min": sum(r["weight"] for r in endpoints.values()) / minutes,
        "endpoints": endpoints,
        "websocket": side.after.get("websocket"),
    }
    if side.cache_after:
        before, after = side.cache_before, side.cache_after
        served = after["served"] - before.get("served", 0)
        per_pair = after["per_pair"] - before.get("per_pair", 0)
        from_stream = after["served_from_stream"] - before.get("served_from_stream", 0)
        result.update(
            {
                "reads_served": served,
                "reads_from_stream": from_stream,
                "reads_per_pair": per_pair,
                "age_p50_le_s": age_quantile(before["served_age"], after["served_age"], 0.5),
                "age_p99_le_s": age_quantile(before["served_age"], after["served_age"], 0.99),
                "trading": after,
            }
        )
    return result


def fmt_age(value: float | None) -> str:
    if value is None:
        return "-"
    return "> 30 s" if value == float("inf") else f"≤ {value * 1000:,.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 trades, 30 s")
    parser.add_argument("--trades", type=int, help="open trades per bot (default 50)")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--minutes", type=float, help="measured window (default 3)")
    parser.add_argument("--warmup-s", type=float, help="before the window (default 30)")
    args = parser.parse_args(argv)
    trades = args.trades or (10 if args.quick else 50)
    minutes = args.minutes or (0.5 if args.quick else 3.0)
    warmup_s = args.warmup_s if args.warmup_s is not None else (15.0 if args.quick else 30.0)
    console.print(
        f"benchmark 6: {trades} open trades per bot, latency {args.latency_ms:g} ms, "
        f"process_throttle_secs {THROTTLE_S}, {minutes * 60:g} s after {warmup_s:g} s warm-up"
    )
    root = Path(tempfile.mkdtemp(prefix="ratekit-bench-age-"))
    sides = [Side(name, trades, root / name) for name in SIDES]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(sides)) as pool:
            for future in [pool.submit(side.start) for side in sides]:
                future.result()
        for side in sides:
            side.exchange.update(latency_ms=args.latency_ms, ws_delay_ms=args.latency_ms)
        time.sleep(warmup_s)
        for side in sides:
            side.before, side.cache_before = side.exchange.stats(), side.cache()
        time.sleep(minutes * 60)
        for side in sides:
            side.after, side.cache_after = side.exchange.stats(), side.cache()
        results = [measure(side, minutes) for side in sides]
    finally:
        with ThreadPoolExecutor(len(sides)) as pool:
            list(pool.map(Side.stop, sides))
    stock = results[0]
    rows = []
    for r in results:
        rows.append(
            [
                r["side"],
                f"{r['pricing_weight_per_min']:,.1f}",
                ratio(stock["pricing_weight_per_min"], r["pricing_weight_per_min"])
                if r is not stock
                else "",
                f"{r['total_weight_per_min']:,.0f}",
                str(r.get("reads_served", "-")),
                str(r.get("reads_from_stream", "-")),
                str(r.get("reads_per_pair", "all")),
                fmt_age(r.get("age_p50_le_s")) if r is not stock else "~0 (fetched per read)",
                fmt_age(r.get("age_p99_le_s")) if r is not stock else "~0 (fetched per read)",
            ]
        )
    print_table(
        f"Price age at each trading decision, {trades} open trades, exchange latency "
        f"{args.latency_ms:g} ms, {minutes * 60:g} s measured",
        [
            "side",
            "pricing weight/min",
            "stock / side",
            "total weight/min",
            "reads served",
            "from stream",
            "per pair",
            "age p50",
            "age p99",
        ],
        rows,
    )
    stream = results[2]
    limit = stock["pricing_weight_per_min"] / STREAM_WEIGHT_TARGET
    targets = [
        f"stream pricing weight <= 1/{STREAM_WEIGHT_TARGET:g} of stock's: "
        f"{stream['pricing_weight_per_min']:,.1f}/min vs limit {limit:,.1f}: "
        + ("met" if stream["pricing_weight_per_min"] <= limit else "MISSED"),
    ]
    for r in results[1:]:
        p99 = r.get("age_p99_le_s")
        met = p99 is not None and p99 <= AGE_TARGET_S
        targets.append(
            f"{r['side']}: p99 price age at a decision <= {AGE_TARGET_S:g} s: {fmt_age(p99)}: "
            + ("met" if met else "MISSED")
        )
    for line in targets:
        console.print(f"target: {line}")
    elapsed = time.monotonic() - started
    write_results(
        "price_age",
        {
            "settings": {
                "trades": trades,
                "exchange_latency_ms": args.latency_ms,
                "process_throttle_secs": THROTTLE_S,
                "window_s": minutes * 60,
                "warmup_s": warmup_s,
                "sides": SIDES,
                "seed": SEED,
            },
            "targets": targets,
            "seconds": round(elapsed, 1),
            "runs": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
