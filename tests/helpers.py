"""Small shared helpers for tests: configs, free ports, HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

API_USER = "ratekit"
API_PASSWORD = "test-password-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Poll `read` until `done` holds; the assertion message carries the last value read."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:g}s; last value: {value!r}")
        time.sleep(0.1)


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
