"""Point stock Freqtrade's CoinGecko client at an emulator, proxy or mirror.

For the stock side of benchmarks and tests (`sim.stock`); changes nothing else. The
replacement is recorded by ratekit's patcher, so `freqtrade_ratekit.uninstall()` restores it.
"""

from __future__ import annotations

import functools
from typing import Any

from freqtrade_ratekit.patches._patcher import PATCHER

TARGET = PATCHER.target("sim.coingecko")


def redirect_coingecko(url: str) -> None:
    """Every `FtCoinGeckoApi` built from now on talks to `url` (a second call re-points it)."""
    from freqtrade.util.coin_gecko import FtCoinGeckoApi

    base = url.rstrip("/") + "/"
    TARGET.restore()
    original = FtCoinGeckoApi.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.api_base_url = base

    TARGET.replace(FtCoinGeckoApi, "__init__", __init__)


def restore_coingecko() -> None:
    """Undo `redirect_coingecko` (also done by `uninstall()`)."""
    TARGET.restore()
