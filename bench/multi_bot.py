"""Benchmark 3: K bots on one IP against one exchange whose weight window binds.

For each K, K stock Freqtrade bots run against a fresh Binance emulator, then K ratekit bots
(mode `enforce`, headroom 0.8 unless `--headroom`, `weights.backend` one redis-server on
loopback, same `scope_id`) against
another fresh one. Every bot has the same greedy config: 30 pairs on 1m candles, entry and exit
priced from the order book (depth weight 5), 16 open trades whose exit price Freqtrade fetches
with `refresh=True` on every loop; that asks ~80 weight/s per bot, above the window's 60/s even
for K = 1. The trades are opened while the emulator still allows plenty; the limit is then set
(600 weight per 10 s, all bots share 127.0.0.1) and the emulator's counters are cleared for the
measured run. The emulator escalates to 418 bans (2 min, doubling) after 3 calls inside a
Retry-After, as Binance describes.

Reported per case, from the emulator's own counters: calls, 429s, 418s, weight accepted, and
the share of the limit (and of headroom x limit) that was used; for ratekit also each bot's
weight in the run (the spread shows how evenly the shared budget was drawn).

`--realistic` runs one other case instead: 8 bots x 40 open trades (`--bots`, `--trades`) on
one IP against one emulator at Binance's real published limit, REQUEST_WEIGHT 6000 per minute
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits, as cited in
`freqtrade_ratekit/rates/sources.py`), exchange latency 100 ms, trading loops running
(`process_throttle_secs` 5) with a strategy that never trades on its own: the trades are
force-entered, then held, and each iteration prices every one of them from a ticker, as
Freqtrade's defaults do. Stock, then ratekit (Redis budget shared by all bots, `enforce`,
headroom 0.8, `rate_cache.trading_batch` on when this checkout has it), each against a fresh
emulator. Reported: 429s, 418s, the share of the limit used, each bot's iteration duration
p50 / p99 (`FreqtradeBot.process`, timed by `bench/_timed_bot.py` on both sides), and for
ratekit the time its calls waited on the shared budget (`wait_s` of
`/api/v1/ratekit/weights`, per bot and endpoint). Results go to
`bench/results/multi_bot_realistic.json`.

    .venv/bin/python bench/multi_bot.py           # K = 1, 3, 6; 40 s per case (about 7 min)
    .venv/bin/python bench/multi_bot.py --quick   # K = 1, 3; 20 s per case (about 2.5 min)
    .venv/bin/python bench/multi_bot.py --headroom 0.9   # ratekit side closer to the limit
    .venv/bin/python bench/multi_bot.py --realistic      # 8 x 40 trades, 180 s per side
    .venv/bin/python bench/multi_bot.py --realistic --quick   # smoke: 2 x 10 trades, 20 s
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    console,
    endpoint_deltas,
    fmt_ms,
    iteration_durations,
    summary,
    timed_bot,
    trading_batch_settings,
    write_results,
)
from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import (
    GREEDY_TRADING,
    BotProcess,
    enforced_weights,
    find_free_port,
    make_bot_config,
)
from tests.redis_fixtures import RedisServer

WINDOW_S = 10
WEIGHT_LIMIT = 600
SETUP_WEIGHT_LIMIT = 10**9
DEFAULT_HEADROOM = 0.8  # ratekit's own default
PAIRS = 30
OPEN_TRADES = 16

# --realistic: Binance spot's published REQUEST_WEIGHT, 6000 per minute per IP
REALISTIC_WEIGHT_LIMIT = 6000
REALISTIC_WINDOW_S = 60
REALISTIC_BOTS = 8
REALISTIC_TRADES = 40
REALISTIC_RUN_S = 180.0
REALISTIC_LATENCY_MS = 100.0
REALISTIC_THROTTLE_S = 5


def bot_config(
    exchange_url: str,
    coingecko_url: str,
    pairs: list[str],
    workdir: Path,
    *,
    redis_url: str | None,
    bots: int,
    headroom: float,
) -> dict[str, Any]:
    ratekit = None
    if redis_url is not None:
        ratekit = {
            "enabled": True,
            "weights": enforced_weights(
                headroom,
                WEIGHT_LIMIT,
                WINDOW_S,
                backend=redis_url,
                scope_id="bench-host",
                expected_bots=bots,
            ),
        }
    return make_bot_config(
        exchange_url,
        coingecko_url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=OPEN_TRADES,
        ratekit=ratekit,
        db_dir=workdir,
        extra=GREEDY_TRADING,
    )


def start_with_trades(bot: BotProcess) -> None:
    bot.start(timeout=180)
    bot.open_trades(OPEN_TRADES, timeout=240)


def ledger_weight(bot: BotProcess) -> float:
    status, body, _ = bot.get("/api/v1/ratekit/weights", timeout=30)
    return float(body["totals"]["weight"]) if status == 200 else float("nan")


def run_case(
    bots_count: int, *, ratekit: bool, run_s: float, headroom: float, redis_server: RedisServer
) -> dict[str, Any]:
    side = "ratekit + Redis" if ratekit else "stock"
    console.print(f"K={bots_count} {side}: starting {bots_count} bot(s) ...")
    if ratekit:
        redis.Redis.from_url(redis_server.url).flushall()  # each case starts from an empty budget
    exchange = start_exchange_emulator(weight_limit=SETUP_WEIGHT_LIMIT, window_s=WINDOW_S)
    coingecko = start_coingecko_emulator()
    pairs = exchange.emulator.universe.usdt_pairs()[:PAIRS]
    root = Path(tempfile.mkdtemp(prefix=f"ratekit-multibot-k{bots_count}-"))
    bots = []
    for index in range(bots_count):
        workdir = root / f"{'ratekit' if ratekit else 'stock'}-{index}"
        config = bot_config(
            exchange.url,
            coingecko.url,
            pairs,
            workdir,
            redis_url=redis_server.url if ratekit else None,
            bots=bots_count,
            headroom=headroom,
        )
        bots.append(BotProcess(config, workdir, with_ratekit=ratekit))
    try:
        with ThreadPoolExecutor(bots_count) as pool:
            for started in [pool.submit(start_with_trades, bot) for bot in bots]:
                started.result()
        before = [ledger_weight(bot) for bot in bots] if ratekit else []  # stock: no ledger
        exchange.update(weight_limit=WEIGHT_LIMIT)
        exchange.reset()
        started_at = time.monotonic()
        time.sleep(run_s)
        totals = exchange.stats()["totals"]
        elapsed = time.monotonic() - started_at
        per_bot = [ledger_weight(bot) - b for bot, b in zip(bots, before, strict=False)]
    finally:
        with ThreadPoolExecutor(bots_count) as pool:
            list(pool.map(BotProcess.stop, bots))
        exchange.stop()
        coingecko.stop()
    published = WEIGHT_LIMIT * elapsed / WINDOW_S
    result = {
        "bots": bots_count,
        "side": side,
        "run_s": round(elapsed, 1),
        "calls": totals["calls"],
        "status_429": totals["status_429"],
        "status_418": totals["status_418"],
        "weight_accepted": totals["weight"],
        "share_of_limit": totals["weight"] / published,
        "share_of_headroom_budget": totals["weight"] / (headroom * published),
        "per_bot_weight": per_bot,
    }
    console.print(
        f"  429: {result['status_429']}, 418: {result['status_418']}, "
        f"limit used: {result['share_of_limit']:.0%}"
    )
    return result


def print_results(results: list[dict[str, Any]], run_s: float, headroom: float) -> None:
    table = Table(
        title=(
            f"K bots on one IP, {WEIGHT_LIMIT} weight / {WINDOW_S} s window, "
            f"{run_s:.0f} s per case (ratekit: enforce, headroom {headroom}, Redis)"
        ),
        title_justify="left",
    )
    for column in ("K", "side", "calls", "429", "418", "of limit", "of headroom", "per bot"):
        table.add_column(column, justify="left" if column == "side" else "right")
    for r in results:
        per_bot = r["per_bot_weight"]
        spread = f"{min(per_bot):,.0f}-{max(per_bot):,.0f}" if per_bot else "-"
        table.add_row(
            str(r["bots"]),
            r["side"],
            f"{r['calls']:,}",
            f"{r['status_429']:,}",
            f"{r['status_418']:,}",
            f"{r['share_of_limit']:.0%}",
            f"{r['share_of_headroom_budget']:.0%}",
            spread,
        )
    console.print(table)


def realistic_config(
    exchange_url: str,
    coingecko_url: str,
    pairs: list[str],
    workdir: Path,
    *,
    redis_url: str | None,
    bots: int,
    headroom: float,
) -> dict[str, Any]:
    """A bot as users run them: ticker pricing, the trading loop every 5 s, trades held."""
    ratekit = None
    if redis_url is not None:
        ratekit = {
            "enabled": True,
            "rate_cache": trading_batch_settings(),
            "weights": enforced_weights(
                headroom,
                REALISTIC_WEIGHT_LIMIT,
                REALISTIC_WINDOW_S,
                backend=redis_url,
                scope_id="bench-host",
                expected_bots=bots,
            ),
        }
    return make_bot_config(
        exchange_url,
        coingecko_url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=len(pairs),
        ratekit=ratekit,
        db_dir=workdir,
        extra={
            "internals": {"process_throttle_secs": REALISTIC_THROTTLE_S, "heartbeat_interval": 0}
        },
    )


def weights_document(bot: BotProcess) -> dict[str, Any] | None:
    status, body, _ = bot.get("/api/v1/ratekit/weights", timeout=30)
    return body if status == 200 and isinstance(body, dict) else None


def budget_waits(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """What a ratekit bot's calls waited on the budget between two `/ratekit/weights` reads."""
    if before is None or after is None:
        return {"wait_s": float("nan"), "endpoints": {}}
    old = {row["endpoint"]: row for row in before["endpoints"]}
    endpoints = {}
    for row in after["endpoints"]:
        prior = old.get(row["endpoint"], {"calls": 0, "wait_s": 0.0})
        calls, waited = row["calls"] - prior["calls"], row["wait_s"] - prior["wait_s"]
        if calls or waited:
            endpoints[row["endpoint"]] = {"calls": calls, "wait_s": round(waited, 3)}
    return {
        "wait_s": round(after["totals"]["wait_s"] - before["totals"]["wait_s"], 3),
        "endpoints": endpoints,
    }


def run_realistic_case(
    *,
    ratekit: bool,
    bots_count: int,
    trades: int,
    run_s: float,
    settle_s: float,
    latency_ms: float,
    headroom: float,
    redis_server: RedisServer,
) -> dict[str, Any]:
    side = "ratekit + Redis" if ratekit else "stock"
    console.print(f"realistic, {bots_count} {side} bot(s) x {trades} trades: starting ...")
    if ratekit:
        redis.Redis.from_url(redis_server.url).flushall()
    exchange = start_exchange_emulator(weight_limit=SETUP_WEIGHT_LIMIT, window_s=REALISTIC_WINDOW_S)
    coingecko = start_coingecko_emulator()
    pairs = exchange.emulator.universe.usdt_pairs()[:trades]
    root = Path(tempfile.mkdtemp(prefix=f"ratekit-multibot-realistic-{bots_count}-"))
    bots = []
    for index in range(bots_count):
        workdir = root / f"{'ratekit' if ratekit else 'stock'}-{index}"
        config = realistic_config(
            exchange.url,
            coingecko.url,
            pairs,
            workdir,
            redis_url=redis_server.url if ratekit else None,
            bots=bots_count,
            headroom=headroom,
        )
        bots.append(timed_bot(config, workdir, with_ratekit=ratekit))

    def start(bot: BotProcess) -> None:
        bot.start(timeout=300)
        bot.open_trades(trades, timeout=900)

    try:
        with ThreadPoolExecutor(bots_count) as pool:
            for started in [pool.submit(start, bot) for bot in bots]:
                started.result()
        console.print(f"  {bots_count * trades} trades open; limit {REALISTIC_WEIGHT_LIMIT}/min")
        exchange.update(weight_limit=REALISTIC_WEIGHT_LIMIT, latency_ms=latency_ms)
        exchange.reset()  # windows and bans: the set-up's weight is gone for the emulator
        # ... and, one window later, for ratekit's budget too: measure from there
        console.print(f"  settling for {settle_s:g} s, then {run_s:g} s measured ...")
        time.sleep(settle_s)
        stats_before = exchange.stats()
        before = [weights_document(bot) for bot in bots] if ratekit else []
        since = time.time()
        started_at = time.monotonic()
        time.sleep(run_s)
        endpoints = endpoint_deltas(stats_before, exchange.stats())
        elapsed = time.monotonic() - started_at
        until = time.time()
        totals = {
            key: sum(row[key] for row in endpoints.values())
            for key in ("calls", "weight", "status_429", "status_418")
        }
        after = [weights_document(bot) for bot in bots] if ratekit else []
        waits = [budget_waits(b, a) for b, a in zip(before, after, strict=True)]
        per_bot = []
        for index, bot in enumerate(bots):
            durations, errors = iteration_durations(bot, since, until)
            per_bot.append(
                {
                    "bot": index,
                    "iteration_s": summary(durations),
                    "iteration_errors": errors,
                    "open_trades_at_end": bot.open_trade_count(),
                    **({"budget": waits[index]} if ratekit else {}),
                }
            )
        pooled = [d for bot in bots for d in iteration_durations(bot, since, until)[0]]
    finally:
        with ThreadPoolExecutor(bots_count) as pool:
            list(pool.map(BotProcess.stop, bots))
        exchange.stop()
        coingecko.stop()
    published = REALISTIC_WEIGHT_LIMIT * elapsed / REALISTIC_WINDOW_S
    result: dict[str, Any] = {
        "side": side,
        "bots": bots_count,
        "open_trades_per_bot": trades,
        "run_s": round(elapsed, 1),
        "calls": totals["calls"],
        "status_429": totals["status_429"],
        "status_418": totals["status_418"],
        "weight_accepted": totals["weight"],
        "share_of_limit": totals["weight"] / published,
        "endpoints": endpoints,
        "iteration_s": summary(pooled),
        "bots_that_waited": (sum(1 for w in waits if w["wait_s"] > 0) if ratekit else None),
        "per_bot": per_bot,
    }
    console.print(
        f"  429: {result['status_429']}, 418: {result['status_418']}, "
        f"limit used: {result['share_of_limit']:.0%}, "
        f"iteration p50 {fmt_ms(result['iteration_s']['p50'])} ms"
    )
    return result


def print_realistic(results: list[dict[str, Any]], latency_ms: float) -> None:
    first = results[0]
    table = Table(
        title=(
            f"{first['bots']} bots x {first['open_trades_per_bot']} open trades on one IP, "
            f"{REALISTIC_WEIGHT_LIMIT} weight / min (Binance's published limit), latency "
            f"{latency_ms:g} ms, process_throttle_secs {REALISTIC_THROTTLE_S}, "
            f"{first['run_s']:.0f} s per side"
        ),
        title_justify="left",
    )
    columns = (
        "side",
        "calls",
        "429",
        "418",
        "of limit",
        "iteration p50 ms",
        "iteration p99 ms",
        "per-bot p50 ms",
        "per-bot p99 ms",
        "budget wait s",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "side" else "right")
    for r in results:
        p50s = [b["iteration_s"]["p50"] for b in r["per_bot"]]
        p99s = [b["iteration_s"]["p99"] for b in r["per_bot"]]
        waits = [b["budget"]["wait_s"] for b in r["per_bot"] if "budget" in b]
        table.add_row(
            r["side"],
            f"{r['calls']:,}",
            f"{r['status_429']:,}",
            f"{r['status_418']:,}",
            f"{r['share_of_limit']:.0%}",
            fmt_ms(r["iteration_s"]["p50"]),
            fmt_ms(r["iteration_s"]["p99"]),
            f"{fmt_ms(min(p50s))}-{fmt_ms(max(p50s))}",
            f"{fmt_ms(min(p99s))}-{fmt_ms(max(p99s))}",
            (f"{sum(waits):.2f} ({r['bots_that_waited']}/{r['bots']} bots)" if waits else "-"),
        )
    console.print(table)
    for r in results:
        for bot in r["per_bot"]:
            budget = bot.get("budget")
            if budget and budget["wait_s"] > 0:
                slowest = max(budget["endpoints"].items(), key=lambda kv: kv[1]["wait_s"])
                console.print(
                    f"  {r['side']} bot {bot['bot']} waited {budget['wait_s']:.2f} s on the "
                    f"budget, most on {slowest[0]} ({slowest[1]['wait_s']:.2f} s)"
                )


def main_realistic(args: argparse.Namespace) -> int:
    bots_count = args.bots[0] if args.bots else (2 if args.quick else REALISTIC_BOTS)
    trades = args.trades or (10 if args.quick else REALISTIC_TRADES)
    run_s = args.run_s or (20.0 if args.quick else REALISTIC_RUN_S)
    if args.settle_s is None:
        args.settle_s = 5.0 if args.quick else float(REALISTIC_WINDOW_S)
    batch = trading_batch_settings()
    if not batch:
        console.print(
            "[yellow]rate_cache.trading_batch is not in this checkout's config: the ratekit "
            "bots run without the trading batch"
        )
    results = []
    with RedisServer() as redis_server:
        for ratekit in (False, True):
            results.append(
                run_realistic_case(
                    ratekit=ratekit,
                    bots_count=bots_count,
                    trades=trades,
                    run_s=run_s,
                    settle_s=args.settle_s,
                    latency_ms=args.latency_ms,
                    headroom=args.headroom,
                    redis_server=redis_server,
                )
            )
    print_realistic(results, args.latency_ms)
    write_results(
        "multi_bot_realistic",
        {
            "mode": "quick" if args.quick else "full",
            "settings": {
                "weight_limit": REALISTIC_WEIGHT_LIMIT,
                "window_s": REALISTIC_WINDOW_S,
                "limit_source": "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits",
                "bots": bots_count,
                "open_trades_per_bot": trades,
                "exchange_latency_ms": args.latency_ms,
                "process_throttle_secs": REALISTIC_THROTTLE_S,
                "headroom": args.headroom,
                "rate_cache": batch,
                "trading_batch_available": bool(batch),
                "settle_s": args.settle_s,
                "run_s": run_s,
            },
            "cases": results,
        },
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="K = 1, 3 and 20 s per case (--realistic: 2 bots x 10 trades, 20 s)",
    )
    parser.add_argument(
        "--bots", type=int, nargs="+", help="K values (default 1 3 6; --realistic: one, 8)"
    )
    parser.add_argument(
        "--run-s", type=float, help="measured seconds per case (default 40; --realistic 180)"
    )
    parser.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM, help="ratekit side")
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="8 bots x 40 trades at Binance's 6000/min, trading loops running",
    )
    parser.add_argument("--trades", type=int, help="--realistic: open trades per bot (40)")
    parser.add_argument(
        "--latency-ms", type=float, default=REALISTIC_LATENCY_MS, help="--realistic only"
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        help="--realistic: seconds at the real limit before the measured run (one window, 60)",
    )
    args = parser.parse_args(argv)
    if args.realistic:
        return main_realistic(args)
    counts = args.bots or ([1, 3] if args.quick else [1, 3, 6])
    run_s = args.run_s or (20.0 if args.quick else 40.0)

    results = []
    with RedisServer() as redis_server:
        for bots_count in counts:
            for ratekit in (False, True):
                results.append(
                    run_case(
                        bots_count,
                        ratekit=ratekit,
                        run_s=run_s,
                        headroom=args.headroom,
                        redis_server=redis_server,
                    )
                )
    print_results(results, run_s, args.headroom)
    write_results(
        "multi_bot",
        {
            "mode": "quick" if args.quick else "full",
            "settings": {
                "weight_limit": WEIGHT_LIMIT,
                "window_s": WINDOW_S,
                "headroom": args.headroom,
                "pairs": PAIRS,
                "open_trades_per_bot": OPEN_TRADES,
                "run_s": run_s,
            },
            "cases": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
