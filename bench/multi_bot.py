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

    .venv/bin/python bench/multi_bot.py           # K = 1, 3, 6; 40 s per case (about 7 min)
    .venv/bin/python bench/multi_bot.py --quick   # K = 1, 3; 20 s per case (about 2.5 min)
    .venv/bin/python bench/multi_bot.py --headroom 0.9   # ratekit side closer to the limit
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

from bench._common import console, write_results
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 1, 3 and 20 s per case")
    parser.add_argument("--bots", type=int, nargs="+", help="K values (default 1 3 6)")
    parser.add_argument("--run-s", type=float, help="measured seconds per case (default 40)")
    parser.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM, help="ratekit side")
    args = parser.parse_args(argv)
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
