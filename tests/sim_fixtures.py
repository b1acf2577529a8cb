"""Pytest fixtures for the bundled emulators (imported by test modules and tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest
import requests

from freqtrade_ratekit.sim import (
    CoinGeckoEmulator,
    ExchangeEmulator,
    OkxEmulator,
    RunningEmulator,
    exchange_ccxt_config,
    okx_ccxt_config,
    start_coingecko_emulator,
    start_exchange_emulator,
    start_okx_emulator,
)
from freqtrade_ratekit.sim.server import SettingsError


@pytest.fixture
def exchange_emulator() -> Iterator[RunningEmulator[ExchangeEmulator]]:
    """A fresh Binance emulator on a free loopback port (default limits: 6000 per 60 s)."""
    with start_exchange_emulator() as emulator:
        yield emulator


class SimClock:
    """A wall clock that only moves when a test moves it."""

    def __init__(self, now: float = 1_790_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()


@pytest.fixture
def clocked_exchange_emulator(sim_clock: SimClock) -> Iterator[RunningEmulator[ExchangeEmulator]]:
    """A Binance emulator whose market data is served at `sim_clock`'s time (windows, bans and
    latency keep the real monotonic clock), so two calls see exactly the same prices."""
    with RunningEmulator(ExchangeEmulator(wall_clock=sim_clock)).start() as emulator:
        yield emulator


@pytest.fixture
def okx_emulator() -> Iterator[RunningEmulator[OkxEmulator]]:
    """A fresh OKX emulator on a free loopback port (published limits, 2 s windows)."""
    with start_okx_emulator() as emulator:
        yield emulator


@pytest.fixture
def clocked_okx_emulator(sim_clock: SimClock) -> Iterator[RunningEmulator[OkxEmulator]]:
    """An OKX emulator whose request windows run on `sim_clock` (market data keeps the real
    wall clock), so a test decides when a window has passed."""
    with RunningEmulator(OkxEmulator(clock=sim_clock)).start() as emulator:
        yield emulator


def make_okx_client(url: str, **overrides: Any) -> ccxt.okx:
    """An unmodified ccxt okx pointed at the emulator, as Freqtrade would configure it."""
    config = okx_ccxt_config(url)["ccxt_config"]
    return ccxt.okx({**config, **overrides})


@pytest.fixture
def okx_client(okx_emulator: RunningEmulator[OkxEmulator]) -> ccxt.okx:
    client = make_okx_client(okx_emulator.url)
    client.load_markets()
    return client


@pytest.fixture
def coingecko_emulator() -> Iterator[RunningEmulator[CoinGeckoEmulator]]:
    with start_coingecko_emulator() as emulator:
        yield emulator


def make_binance_client(url: str, **overrides: Any) -> ccxt.binance:
    """An unmodified ccxt binance pointed at the emulator, as Freqtrade would configure it."""
    config = exchange_ccxt_config(url)["ccxt_config"]
    return ccxt.binance({**config, **overrides})


@pytest.fixture
def binance_client(exchange_emulator: RunningEmulator[ExchangeEmulator]) -> ccxt.binance:
    client = make_binance_client(exchange_emulator.url)
    client.load_markets()
    return client


def put_settings_raw(url: str, body: bytes) -> requests.Response:
    """PUT `body` as it is to an emulator's settings (bytes a JSON client would not send)."""
    return requests.put(
        f"{url}/_sim/settings", data=body, headers={"Content-Type": "application/json"}
    )


def assert_setting_refused(
    emulator: RunningEmulator[Any], key: str, value: Any, shown: str
) -> None:
    """`{key: value}` is refused over HTTP (a 400 naming the key and the value) and by
    `update`, and changes nothing."""
    before = emulator.settings()
    # json.dumps writes NaN / Infinity, which Python's JSON reader (and aiohttp's) accepts
    response = put_settings_raw(emulator.url, json.dumps({key: value}).encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert key in error and shown in error
    assert emulator.settings() == before
    with pytest.raises(SettingsError, match=key):
        emulator.update(**{key: value})
