"""Shared benchmark helpers: percentiles, a rich table, JSON results, bots with open trades."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from freqtrade_ratekit.config import DEFAULTS
from freqtrade_ratekit.sim.harness import (
    IDLE_TRADING_LOOP,
    BotProcess,
    find_free_port,
    make_bot_config,
)

RESULTS_DIR = Path(__file__).parent / "results"
TIMED_BOT = Path(__file__).parent / "_timed_bot.py"
ITERATIONS_ENV = "RATEKIT_BENCH_ITERATIONS"  # read by _timed_bot.py
ITERATIONS_FILE = "iterations.txt"
SEED = 42
PRICING_ENDPOINTS = (
    "/api/v3/ticker/24hr",
    "/api/v3/ticker/bookTicker",
    "/api/v3/ticker/price",
    "/api/v3/depth",
)
"""The emulator endpoints a bot reads prices from (tickers and order books)."""
# The trading loop stays idle (one iteration per day and hour): force-entered trades fill at
# once and afterwards only REST readers price them. With a running loop, Freqtrade's
# handle_trade prices every open trade with get_rate(refresh=True) on each iteration, in stock
# and ratekit alike (design rule 1), so the rate cache is not what would be measured.

console = Console(width=None if sys.stdout.isatty() else 170)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


def fmt_ms(seconds: float, *, at_least: bool = False) -> str:
    if math.isnan(seconds):
        return "-"
    text = f"{seconds * 1000:,.0f}" if seconds >= 0.1 else f"{seconds * 1000:.1f}"
    return f">{text}" if at_least else text


def ratio(stock: float, ratekit: float) -> str:
    if math.isnan(stock) or math.isnan(ratekit) or ratekit <= 0:
        return "-"
    return f"{stock / ratekit:,.0f}x" if stock / ratekit >= 10 else f"{stock / ratekit:.1f}x"


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 2 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/<name>.json, with what the figures were measured on."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "freqtrade_version": _freqtrade_version(),
        **payload,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    console.print(f"results written to {path}")
    return path


def _freqtrade_version() -> str:
    import freqtrade

    return str(freqtrade.__version__)


def start_bot_with_trades(
    workdir: Path,
    *,
    exchange_url: str,
    coingecko_url: str,
    pairs: list[str],
    with_ratekit: bool,
    ratekit: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    before_trades: Callable[[], object] | None = None,
) -> tuple[BotProcess, float]:
    """Start a bot (stock or ratekit), force-enter one trade per pair; (bot, seconds to open).

    `before_trades` runs once the bot answers and before the first trade (e.g. to make
    CoinGecko fail so that no fiat price gets cached while the trades open).
    """
    config = make_bot_config(
        exchange_url,
        coingecko_url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=len(pairs),
        ratekit=ratekit if with_ratekit else None,
        fiat_display_currency="USD",
        extra={**IDLE_TRADING_LOOP, **(extra or {})},
    )
    bot = BotProcess(config, workdir, with_ratekit=with_ratekit).start()
    started = time.monotonic()
    try:
        if before_trades is not None:
            before_trades()
        bot.open_trades(len(pairs), timeout=300)
    except BaseException:
        bot.stop()
        raise
    return bot, time.monotonic() - started


def trading_batch_settings() -> dict[str, Any]:
    """The `ratekit.rate_cache` keys that switch the trading-iteration batch on (issue 13):
    `trading_batch` true and `trading_max_age` at its default, or `{}` when this checkout's
    config does not know them yet (its validator would refuse them, and ratekit's trading reads
    then go to the exchange as stock's do)."""
    rate_cache: dict[str, Any] = DEFAULTS["rate_cache"]
    if "trading_batch" not in rate_cache:
        return {}
    settings: dict[str, Any] = {"trading_batch": True}
    if "trading_max_age" in rate_cache:
        settings["trading_max_age"] = rate_cache["trading_max_age"]
    return settings


def timed_bot(config: dict[str, Any], workdir: Path, *, with_ratekit: bool) -> BotProcess:
    """A bot started through `_timed_bot.py`: every trading-loop iteration's duration goes to
    `workdir / ITERATIONS_FILE` (read it with `iteration_durations`)."""
    side = "ratekit" if with_ratekit else "stock"
    return BotProcess(
        config,
        workdir,
        with_ratekit=with_ratekit,
        launcher=[sys.executable, str(TIMED_BOT), side],
        env={ITERATIONS_ENV: str(Path(workdir) / ITERATIONS_FILE)},
    )


def iteration_durations(bot: BotProcess, since: float, until: float) -> tuple[list[float], int]:
    """(durations in s, errors) of the iterations that started at or after `since` and ended
    by `until` (unix times), from a `timed_bot`'s file."""
    path = bot.workdir / ITERATIONS_FILE
    durations: list[float] = []
    errors = 0
    if not path.exists():
        return durations, errors
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # a line being written
        started, duration = float(parts[0]), float(parts[1])
        if started >= since and started + duration <= until:
            durations.append(duration)
            errors += parts[2] != "ok"
    return durations, errors


def endpoint_deltas(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per endpoint, what an emulator's `/_sim/stats` counters grew by between two snapshots."""
    keys = ("calls", "weight", "status_429", "status_418", "errors")
    zero = dict.fromkeys(keys, 0)
    rows = {}
    for name, row in after["endpoints"].items():
        old = before["endpoints"].get(name, zero)
        delta = {key: row[key] - old[key] for key in keys}
        if any(delta.values()):
            rows[name] = delta
    return rows
