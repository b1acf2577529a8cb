"""Shared fixtures: the bundled emulators on free ports (see tests/sim_fixtures.py)."""

from tests.sim_fixtures import (  # noqa: F401 - pytest discovers fixtures by name
    binance_client,
    coingecko_emulator,
    exchange_emulator,
)
