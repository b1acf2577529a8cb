"""Reproduces the README's `freqtrade-ratekit status` capture.

Starts the emulators and a ratekit bot (4 open trades, enforce mode), makes a few UI reads,
waits for one background refresh, then runs `freqtrade-ratekit status` against it with
NO_COLOR=1 COLUMNS=128 and prints what it printed.

    .venv/bin/python bench/capture_status.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config

RATEKIT = {
    "enabled": True,
    "rate_cache": {"ttl": 30, "refresh_interval": 10},
    "weights": {"mode": "enforce"},
}


def main() -> int:
    with start_exchange_emulator(latency_ms=50) as exchange, start_coingecko_emulator() as gecko:
        workdir = Path(tempfile.mkdtemp(prefix="ratekit-status-"))
        config = make_bot_config(
            exchange.url,
            gecko.url,
            find_free_port(),
            pairs=exchange.emulator.universe.usdt_pairs()[:6],
            max_open_trades=4,
            db_dir=workdir,
            ratekit=RATEKIT,
        )
        with BotProcess(config, workdir, with_ratekit=True) as bot:
            bot.open_trades(4)
            for _ in range(3):
                bot.get("/api/v1/profit")
                bot.get("/api/v1/status")
            time.sleep(12)  # one background refresh
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "freqtrade_ratekit.cli",
                    "status",
                    "--url",
                    bot.api_url,
                    "--username",
                    bot.username,
                    "--password",
                    bot.password,
                    "--top",
                    "5",
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "COLUMNS": "128", "NO_COLOR": "1"},
                check=False,
            )
            print(result.stdout)
            return result.returncode


if __name__ == "__main__":
    sys.exit(main())
