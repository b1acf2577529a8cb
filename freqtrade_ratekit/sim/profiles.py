"""The exchange profiles the bundled emulator serves, by Freqtrade exchange name.

A profile is an emulator class, how to start it, and the ``exchange`` config block that points
the unmodified ccxt class (and Freqtrade) at it. ``binance`` is the default everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from freqtrade_ratekit.sim.exchange import exchange_ccxt_config, start_exchange_emulator
from freqtrade_ratekit.sim.okx import okx_ccxt_config, start_okx_emulator
from freqtrade_ratekit.sim.server import RunningEmulator

DEFAULT_EXCHANGE = "binance"


@dataclass(frozen=True)
class ExchangeProfile:
    name: str
    start: Callable[..., RunningEmulator[Any]]
    config_block: Callable[[str, list[str] | None], dict[str, Any]]
    default_window_s: int


PROFILES: dict[str, ExchangeProfile] = {
    "binance": ExchangeProfile("binance", start_exchange_emulator, exchange_ccxt_config, 60),
    "okx": ExchangeProfile("okx", start_okx_emulator, okx_ccxt_config, 2),
}


def profile(name: str) -> ExchangeProfile:
    """The profile for ``name``; ValueError naming the ones there are."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"no emulator profile for exchange {name!r}; one of: {', '.join(PROFILES)}"
        ) from None


def exchange_config_block(name: str, url: str, pairs: list[str] | None = None) -> dict[str, Any]:
    """Freqtrade's ``exchange`` block for profile ``name``, pointing ccxt at ``url``."""
    return profile(name).config_block(url, pairs)
