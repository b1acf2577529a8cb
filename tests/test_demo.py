"""`freqtrade-ratekit demo` runs offline: emulators, a ratekit bot, a stock bot, live figures."""

import os
import subprocess
import sys

import pytest


@pytest.mark.e2e
def test_demo_runs_both_bots_and_stops_by_itself(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "freqtrade_ratekit.cli",
            "demo",
            "--duration",
            "6",
            "--trades",
            "3",
            "--poll-interval",
            "1",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "What a UI polling /profit and /status costs" in out
    assert "stock Freqtrade" in out
    assert "Inside ratekit" in out
    assert "pool REQUEST_WEIGHT" in out
    assert "demo finished" in out
    for label in ("ratekit", "stock Freqtrade"):
        assert (tmp_path / label / "bot.log").exists()
