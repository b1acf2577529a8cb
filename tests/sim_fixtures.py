"""Pytest fixtures for the bundled emulators (imported by test modules and tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ccxt
import pytest

from freqtrade_ratekit.sim import (
    CoinGeckoEmulator,
    ExchangeEmulator,
    RunningEmulator,
    exchange_ccxt_config,
    start_coingecko_emulator,
    start_exchange_emulator,
)


@pytest.fixture
def exchange_emulator() -> Iterator[RunningEmulator[ExchangeEmulator]]:
    """A fresh Binance emulator on a free loopback port (default limits: 6000 per 60 s)."""
    with start_exchange_emulator() as emulator:
        yield emulator


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
