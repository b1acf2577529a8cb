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

from freqtrade_ratekit.sim.harness import (
    IDLE_TRADING_LOOP,
    BotProcess,
    find_free_port,
    make_bot_config,
)

RESULTS_DIR = Path(__file__).parent / "results"
SEED = 42
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
