"""Small shared helpers for tests: configs, a fake clock, trades.

The one poll loop (`wait_for`) and the one free-port helper (`find_free_port`) live in
`freqtrade_ratekit.sim.harness`, which the benchmarks and the demo use too; they are
re-exported here for tests that need nothing else from the harness.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from freqtrade_ratekit.sim.harness import find_free_port, wait_for

__all__ = [
    "API_PASSWORD",
    "API_USER",
    "FakeClock",
    "find_free_port",
    "make_trade",
    "minimal_config",
    "ratekit_threads",
    "wait_for",
    "write_config",
]

API_USER = "ratekit"
API_PASSWORD = "test-password-123"


def minimal_config(ratekit: Any, api_port: int = 8080) -> dict[str, Any]:
    """A config for `webserver` mode: no exchange traffic, real REST API."""
    config: dict[str, Any] = {
        "exchange": {"name": "binance", "key": "", "secret": "", "pair_whitelist": ["BTC/USDT"]},
        "stake_currency": "USDT",
        "dry_run": True,
        "pairlists": [{"method": "StaticPairList"}],
        "api_server": {
            "enabled": True,
            "listen_ip_address": "127.0.0.1",
            "listen_port": api_port,
            "username": API_USER,
            "password": API_PASSWORD,
            "jwt_secret_key": "j" * 40,
            "ws_token": "w" * 40,
            "CORS_origins": [],
        },
    }
    if ratekit is not None:
        config["ratekit"] = ratekit
    return config


def write_config(directory: Path, ratekit: Any, api_port: int = 8080) -> Path:
    config = minimal_config(ratekit, api_port)
    config["user_data_dir"] = str(directory / "user_data")
    (directory / "user_data").mkdir(exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


class FakeClock:
    """An injectable clock that only moves when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def ratekit_threads(name: str | None = None) -> set[threading.Thread]:
    """The live threads ratekit started (each is named ``ratekit-<name>``), or only those of
    one `name`. A test takes this set before starting a component and checks, after stopping
    it, that none outside the earlier set is alive: a stop whose join timed out then fails."""
    prefix = "ratekit-" if name is None else f"ratekit-{name}"
    return {
        t
        for t in threading.enumerate()
        if t.name == prefix or (name is None and t.name.startswith(prefix))
    }


def make_trade(pair: str, *, is_open: bool = True) -> Any:
    """A Freqtrade `Trade` of 1 unit at 20 USDT on binance, opened now (not yet in a session)."""
    from datetime import UTC, datetime

    from freqtrade.persistence import Trade

    return Trade(
        pair=pair,
        stake_amount=20,
        amount=1,
        amount_requested=1,
        open_rate=20,
        fee_open=0.001,
        fee_close=0.001,
        exchange="binance",
        open_date=datetime.now(UTC),
        is_open=is_open,
        leverage=1,
    )
