"""Target the fiat converter: `freqtrade.rpc.rpc.CryptoToFiatConverter`, the module global
RPC builds its converter through, hands out ratekit's background converter (built by
`wiring`), one per bot like stock's singleton, started once and stopped with the bot.
"""

from __future__ import annotations

from typing import Any

from freqtrade_ratekit import runtime, wiring
from freqtrade_ratekit.patches._patcher import LOCK, PATCHER
from freqtrade_ratekit.patches._state import active_runtime

TARGET = PATCHER.target("fiat")


def _instrument() -> None:
    from freqtrade.rpc import rpc as rpc_module

    stock_converter = rpc_module.CryptoToFiatConverter

    def converter_for(config: dict[str, Any]) -> Any:
        rt = active_runtime()
        if rt is None or not rt.settings.fiat.background_refresh:
            return stock_converter(config)
        return _background_fiat(rt, config)

    TARGET.replace(rpc_module, "CryptoToFiatConverter", converter_for)


def _uninstrument() -> None:
    TARGET.restore()


def _background_fiat(rt: runtime.Runtime, config: dict[str, Any]) -> Any:
    from freqtrade.constants import SUPPORTED_FIAT
    from freqtrade.rpc.fiat_convert import coingecko_mapping

    from freqtrade_ratekit.fiat.converter import BackgroundFiatConverter

    with LOCK:
        if isinstance(rt.fiat, BackgroundFiatConverter):
            return rt.fiat
        coingecko = config.get("coingecko", {})
        converter = wiring.build_fiat_converter(
            rt.settings,
            supported_fiat=SUPPORTED_FIAT,
            symbol_overrides=coingecko_mapping,
            api_key=coingecko.get("api_key", ""),
            is_demo=coingecko.get("is_demo", True),
            user_data_dir=config.get("user_data_dir"),
            on_stop=rt.on_stop,
        )
        converter.start()
        rt.fiat = converter
        return converter
