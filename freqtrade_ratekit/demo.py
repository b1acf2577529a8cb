"""`freqtrade-ratekit demo`: the whole story, offline, with real bots.

Starts the bundled exchange and CoinGecko emulators on 127.0.0.1 (one pair per bot, same seed
and latency), runs a real Freqtrade dry-run bot with ratekit and, for comparison, a stock
Freqtrade bot, opens trades on both, polls `/profit` and `/status` like a UI would, and shows
live what each bot's requests cost: latency, exchange calls and weight, CoinGecko calls, and
ratekit's cache, fiat and weight figures. Stops on Ctrl-C or after `--duration` seconds.

By default 110 trades are opened: stock's rate cache holds 100 rates, so each of its reads
fetches tickers one by one; and the trading loops stay idle once the trades are open, so the
figures show what the UI's reads cost (`--live-loop` keeps them running: then both bots also
re-price every trade on each iteration, as Freqtrade does).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from freqtrade_ratekit.documents import RatekitStatus, is_active
from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import (
    IDLE_TRADING_LOOP,
    BotProcess,
    find_free_port,
    make_bot_config,
)

READ_PATHS = ("/api/v1/profit", "/api/v1/status")


@dataclass
class DemoBot:
    """One bot with its own emulators, and what its polled reads cost."""

    label: str
    exchange: Any
    coingecko: Any
    bot: BotProcess
    latencies: dict[str, deque[float]] = field(
        default_factory=lambda: {path: deque(maxlen=500) for path in READ_PATHS}
    )
    errors: int = 0
    polling_since: float | None = None

    def poll_once(self) -> None:
        for path in READ_PATHS:
            try:
                status, _, seconds = self.bot.get(path, timeout=120)
            except Exception:
                self.errors += 1
                continue
            if status != 200:
                self.errors += 1
            self.latencies[path].append(seconds * 1000)

    def exchange_cost(self) -> dict[str, float]:
        stats = self.exchange.stats(since=self.polling_since)
        log = stats.get("log", [])
        return {
            "calls": len(log),
            "weight": sum(entry.get("weight", 0) for entry in log),
            "429": sum(1 for entry in log if entry.get("status") == 429),
            "418": sum(1 for entry in log if entry.get("status") == 418),
        }

    def coingecko_calls(self) -> int:
        return int(self.coingecko.stats().get("totals", {}).get("calls", 0))


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="freqtrade-ratekit demo", description=__doc__)
    parser.add_argument("--duration", type=float, default=0, help="seconds; 0 = until Ctrl-C")
    parser.add_argument("--trades", type=int, default=110, help="open trades per bot")
    parser.add_argument("--exchange-latency-ms", type=int, default=150)
    parser.add_argument("--coingecko-latency-ms", type=int, default=1500)
    parser.add_argument("--poll-interval", type=float, default=2.0, help="UI poll period")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-stock", action="store_true", help="run only the ratekit bot")
    parser.add_argument(
        "--live-loop", action="store_true", help="keep the bots' trading loops running"
    )
    parser.add_argument("--workdir", type=Path, help="where bot files go (default: temp dir)")
    return parser.parse_args(list(argv))


DEMO_RATEKIT = {
    "enabled": True,
    "rate_cache": {"ttl": 20, "stale_ttl": 600, "refresh_interval": 10},
    "fiat": {"refresh_interval": 30},
    "weights": {"mode": "enforce", "headroom": 0.8},
}


def _start_bot(
    label: str, args: argparse.Namespace, workdir: Path, stack: ExitStack, ratekit: bool
) -> DemoBot:
    exchange = stack.enter_context(
        start_exchange_emulator(seed=args.seed, latency_ms=args.exchange_latency_ms)
    )
    coingecko = stack.enter_context(
        start_coingecko_emulator(seed=args.seed, latency_ms=args.coingecko_latency_ms)
    )
    pairs = exchange.emulator.universe.usdt_pairs()[: max(args.trades, 1) + 2]
    bot_dir = workdir / label
    bot_dir.mkdir(parents=True, exist_ok=True)
    config = make_bot_config(
        exchange.url,
        coingecko.url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=args.trades,
        ratekit=DEMO_RATEKIT if ratekit else None,
        db_dir=bot_dir,
        extra={
            **({} if args.live_loop else IDLE_TRADING_LOOP),
            "bot_name": f"demo-{label}",
            "user_data_dir": str(bot_dir / "user_data"),
        },
    )
    bot = BotProcess(config, bot_dir, with_ratekit=ratekit)
    stack.callback(bot.stop)
    bot.start()
    return DemoBot(label, exchange, coingecko, bot)


def _ms(values: deque[float]) -> str:
    if not values:
        return "-"
    return f"{values[-1]:.0f} last · {statistics.median(values):.0f} p50 · {max(values):.0f} max"


def _comparison(bots: list[DemoBot]) -> Table:
    table = Table(title="What a UI polling /profit and /status costs", expand=True)
    table.add_column("")
    for bot in bots:
        table.add_column(bot.label, justify="right")
    costs = [bot.exchange_cost() for bot in bots]
    rows: list[tuple[str, list[str]]] = [
        ("open trades", [str(bot.bot.open_trade_count()) for bot in bots]),
        ("/profit ms", [_ms(bot.latencies["/api/v1/profit"]) for bot in bots]),
        ("/status ms", [_ms(bot.latencies["/api/v1/status"]) for bot in bots]),
        ("reads answered", [str(len(bot.latencies["/api/v1/profit"])) for bot in bots]),
        ("exchange calls since polling", [f"{c['calls']:.0f}" for c in costs]),
        ("exchange weight since polling", [f"{c['weight']:.0f}" for c in costs]),
        ("429 / 418", [f"{c['429']:.0f} / {c['418']:.0f}" for c in costs]),
        ("CoinGecko calls", [str(bot.coingecko_calls()) for bot in bots]),
        ("failed reads", [str(bot.errors) for bot in bots]),
    ]
    for label, values in rows:
        table.add_row(label, *values)
    return table


def _bar(used: float, limit: float, width: int = 24) -> str:
    filled = round(width * min(used / limit, 1.0)) if limit else 0
    return "█" * filled + "·" * (width - filled)


def _inside(bot: DemoBot) -> Table:
    table = Table(title="Inside ratekit", expand=True, show_header=False)
    table.add_column("what")
    table.add_column("figures")
    try:
        _, status, _ = bot.bot.get("/api/v1/ratekit/status", timeout=10)
    except Exception as exc:
        table.add_row("status", f"unavailable: {exc}")
        return table
    document = cast(RatekitStatus, status)  # the JSON of the status route
    cache = document["rate_cache"]
    if is_active(cache):
        for side, figures in cache["sides"].items():
            states: dict[str, int] = {}
            for entry in figures["entries"]:
                states[entry["state"]] = states.get(entry["state"], 0) + 1
            table.add_row(
                f"rate cache ({side})",
                f"hit ratio {figures['hit_ratio']:.0%} · {figures['hits']} hits · "
                f"{figures['stale_reads']} stale reads · {figures['misses']} misses · "
                + " ".join(f"{n} {state}" for state, n in sorted(states.items())),
            )
        for label, run in (
            ("last_prewarm", cache["last_prewarm"]),
            ("last_refresh", cache["last_refresh"]),
        ):
            if run:
                table.add_row(
                    label.replace("_", " ").replace("prewarm", "pre-warm"),
                    f"{run['pairs']} pairs · {run['seconds']:.2f} s · "
                    f"{run['method']} · {run['failed']} failing",
                )
    fiat = document["fiat"]
    for pair in fiat["pairs"] if is_active(fiat) else []:
        age = pair["age_s"]
        table.add_row(
            f"fiat {pair['pair']}",
            f"{pair['price']} · {pair['state']} · "
            + (f"{age:.0f} s old" if age is not None else "never fetched"),
        )
    weights = document["weights"]
    if is_active(weights):
        for pool in weights["pools"]:
            if not pool["used"]:
                continue
            table.add_row(
                f"pool {pool['name']}",
                f"{_bar(pool['used'], pool['effective_limit'])} {pool['used']:.0f} / "
                f"{pool['effective_limit']:.0f} (headroom of {pool['limit']}) · mode "
                f"{weights['mode']}",
            )
    return table


def _render(bots: list[DemoBot], started: float, args: argparse.Namespace) -> Group:
    elapsed = time.monotonic() - started
    until = f" of {args.duration:.0f}" if args.duration else " (Ctrl-C to stop)"
    head = Panel(
        "\n".join(
            f"{bot.label}: REST API {bot.bot.api_url} (user {bot.bot.username}, "
            f"password {bot.bot.password})"
            for bot in bots
        )
        + f"\nexchange latency {args.exchange_latency_ms} ms · CoinGecko latency "
        f"{args.coingecko_latency_ms} ms · {elapsed:.0f} s{until}"
        + "\nstock's rate cache holds 100 rates for 300 s; past either, every read fetches one "
        "ticker per open trade, one after another"
        + (
            ""
            if args.live_loop
            else "\ntrading loops idle: the figures are what the UI's reads cost"
        ),
        title="freqtrade-ratekit demo",
    )
    return Group(head, _comparison(bots), _inside(bots[0]))


def _poll(bot: DemoBot, interval: float, stop: threading.Event) -> None:
    """One poller per bot: a slow bot must not hold back the other one's polls."""
    while not stop.is_set():
        bot.poll_once()
        stop.wait(interval)


def main(argv: Sequence[str]) -> int:
    args = _parse(argv)
    console = Console()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ratekit-demo-"))
    stop = threading.Event()
    with ExitStack() as stack:
        with console.status("starting emulators and bots ..."):
            bots = [_start_bot("ratekit", args, workdir, stack, ratekit=True)]
            if not args.no_stock:
                bots.append(_start_bot("stock Freqtrade", args, workdir, stack, ratekit=False))
        with console.status(f"opening {args.trades} trades per bot ..."):
            openers = [
                threading.Thread(target=bot.bot.open_trades, args=(args.trades,), daemon=True)
                for bot in bots
            ]
            for opener in openers:
                opener.start()
            for opener in openers:
                opener.join()
            for bot in bots:
                bot.polling_since = time.time()
        pollers = [
            threading.Thread(target=_poll, args=(bot, args.poll_interval, stop), daemon=True)
            for bot in bots
        ]
        for poller in pollers:
            poller.start()
        started = time.monotonic()
        try:
            with Live(_render(bots, started, args), console=console, refresh_per_second=1) as live:
                while not args.duration or time.monotonic() - started < args.duration:
                    time.sleep(1)
                    live.update(_render(bots, started, args))
        except KeyboardInterrupt:
            console.print("stopping ...")
        finally:
            stop.set()
            for poller in pollers:
                poller.join(timeout=30)
    console.print(f"demo finished; bot files are in {workdir}")
    return 0
