"""Bundled emulators (Binance spot REST, OKX v5 spot REST, CoinGecko) and the end-to-end
harness.

Used by ``freqtrade-ratekit demo`` / ``emulator``, the tests and the benchmarks. Importing this
package does not import Freqtrade; the harness does, lazily, when a bot is started.
"""

from freqtrade_ratekit.sim.coingecko import CoinGeckoEmulator, start_coingecko_emulator
from freqtrade_ratekit.sim.exchange import (
    ExchangeEmulator,
    exchange_ccxt_config,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.okx import OkxEmulator, okx_ccxt_config, start_okx_emulator
from freqtrade_ratekit.sim.server import RunningEmulator, SettingsError

__all__ = [
    "CoinGeckoEmulator",
    "ExchangeEmulator",
    "OkxEmulator",
    "RunningEmulator",
    "SettingsError",
    "exchange_ccxt_config",
    "okx_ccxt_config",
    "start_coingecko_emulator",
    "start_exchange_emulator",
    "start_okx_emulator",
]
