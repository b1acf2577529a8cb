"""Bench-only launcher: a Freqtrade bot, stock or ratekit, whose trading-loop iterations are timed.

    python bench/_timed_bot.py stock|ratekit trade -c config.json --strategy ...

Every iteration (`FreqtradeBot.process`, as Freqtrade's worker calls it) appends one line to the
file named by `RATEKIT_BENCH_ITERATIONS`: `<start, unix s> <duration, s> <ok|error>`.
`stock` then runs `freqtrade_ratekit.sim.stock` (stock Freqtrade, CoinGecko pointed at the
emulator), `ratekit` runs `freqtrade_ratekit.cli`, which installs ratekit and runs Freqtrade's CLI:
both sides are timed by the same code, from before ratekit's install.

The timer is installed before anything of ratekit. It wraps `Worker._process_running` and, on
each call, times `self.freqtrade.process` as it resolves at that moment, so it measures the
whole of `process` with whatever is stacked on it, whenever that was put there (ratekit's hooks
activate at config load, after this launcher ran). A timer put on `FreqtradeBot.process` itself
would instead end up inside any wrapper ratekit later puts on that method, and miss the work the
wrapper does at the start of the iteration (the trading batch). What the worker does after an
iteration that raised (its retry sleep) is not counted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ITERATIONS_ENV = "RATEKIT_BENCH_ITERATIONS"
SIDES = ("stock", "ratekit")


def install_timer(out: TextIO) -> None:
    """Time every `FreqtradeBot.process` the worker runs; one line per iteration to `out`."""
    from freqtrade.worker import Worker

    original = Worker._process_running

    def _process_running(self: Any) -> None:
        bot = self.freqtrade
        process = bot.process  # resolved now: every patch on FreqtradeBot.process included

        def timed_process() -> None:
            started_at = time.time()
            started = time.perf_counter()
            outcome = "error"
            try:
                process()
                outcome = "ok"
            finally:
                duration = time.perf_counter() - started
                out.write(f"{started_at:.6f} {duration:.6f} {outcome}\n")
                out.flush()

        bot.process = timed_process  # shadows the class attribute for this one call
        try:
            original(self)
        finally:
            del bot.process

    Worker._process_running = _process_running


def main(argv: list[str]) -> int:
    import os

    if not argv or argv[0] not in SIDES:
        print(f"usage: {Path(__file__).name} stock|ratekit <freqtrade arguments>", file=sys.stderr)
        return 2
    side, freqtrade_args = argv[0], argv[1:]
    path = os.environ.get(ITERATIONS_ENV)
    if not path:
        print(f"{ITERATIONS_ENV} must name the file for the iteration times", file=sys.stderr)
        return 2
    with open(path, "a", encoding="utf-8") as out:
        install_timer(out)
        if side == "ratekit":
            from freqtrade_ratekit.cli import main as ratekit_main

            return ratekit_main(freqtrade_args)
        from freqtrade_ratekit.sim.stock import main as stock_main

        try:
            stock_main(freqtrade_args)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
