"""Exchange presets: named pools with their published limits, and which pools an endpoint uses.

One module per exchange (`binance`, `bybit`, ...) holds its figures with the page each was read
on and the date; each exports `PRESETS` and `AUTO` (which (exchange id, trading mode) picks
which preset). This module gathers them and resolves the preset of a bot. The shapes and the
conversion from ccxt's cost tables are in `_model`.

Every published number carries its source and the date it was read. Where no published figure
could be read, the module says so and derives it from ccxt's `rateLimit` and cost table, naming
ccxt as the source. `tests/test_weights_ccxt_costs.py` holds every preset to ccxt's cost table
for the calls a bot makes, within what the preset's `ccxt_checks` document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from freqtrade_ratekit.weights.presets import (
    binance,
    bingx,
    bitfinex,
    bitget,
    bitmart,
    bybit,
    gate,
    htx,
    hyperliquid,
    kraken,
    kucoin,
    okx,
)
from freqtrade_ratekit.weights.presets._model import (
    CONNECTION_POOL,
    FREQTRADE_CALLS,
    POOL_KINDS,
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
    Priority,
    _clean,
    apply_overrides,
    charges_for,
    classify_priority,
    endpoint_key,
    sustained_rate,
)

__all__ = [
    "CONNECTION_POOL",
    "FREQTRADE_CALLS",
    "POOL_KINDS",
    "CcxtCheck",
    "EndpointRule",
    "PoolCharge",
    "PoolSpec",
    "Preset",
    "Priority",
    "all_presets",
    "apply_overrides",
    "charges_for",
    "classify_priority",
    "endpoint_key",
    "fallback_preset",
    "preset_for",
    "preset_names",
    "preset_targets",
    "sustained_rate",
]

_MODULES = (
    binance,
    okx,
    gate,
    bitfinex,
    bybit,
    kraken,
    kucoin,
    hyperliquid,
    bitget,
    htx,
    bitmart,
    bingx,
)
_PRESETS: dict[str, Preset] = {p.name: p for module in _MODULES for p in module.PRESETS}
_AUTO: dict[tuple[str, str], str] = {
    target: name for module in _MODULES for target, name in module.AUTO.items()
}


def preset_names() -> list[str]:
    return sorted(_PRESETS)


def all_presets() -> list[Preset]:
    """Every preset as published (no overrides), by name."""
    return [_PRESETS[name] for name in preset_names()]


def preset_targets(name: str) -> list[tuple[str, str]]:
    """The (exchange id, trading mode) pairs `weights.preset: auto` resolves to `name`."""
    return sorted(target for target, preset in _AUTO.items() if preset == name)


def preset_for(
    exchange_id: str,
    *,
    trading_mode: str = "spot",
    name: str = "auto",
    rate_limit_ms: float | None = None,
    pools: Mapping[str, Mapping[str, Any]] | None = None,
    endpoints: Mapping[str, Mapping[str, Any]] | None = None,
) -> Preset:
    """The preset for an exchange, with config overrides applied.

    Without a preset for the exchange, falls back to one pool modelled on ccxt's `rateLimit`
    (`rate_limit_ms`, or read from the ccxt class) and sets `fallback`/`message` for the log.
    """
    exchange = exchange_id.lower()
    if name != "auto":
        if name not in _PRESETS:
            raise ValueError(f"unknown weights preset {name!r}; known: {', '.join(preset_names())}")
        preset = _PRESETS[name]
    elif (exchange, trading_mode) in _AUTO:
        preset = _PRESETS[_AUTO[(exchange, trading_mode)]]
    elif (exchange, "spot") in _AUTO:
        preset = _PRESETS[_AUTO[(exchange, "spot")]]
    else:
        preset = fallback_preset(exchange, trading_mode, rate_limit_ms)
    preset = replace(preset, exchange_id=exchange, trading_mode=trading_mode)
    return apply_overrides(preset, pools=pools or {}, endpoints=endpoints or {})


def fallback_preset(exchange_id: str, trading_mode: str, rate_limit_ms: float | None) -> Preset:
    """One pool of 1000 / rateLimit ccxt cost units per second: what ccxt itself allows."""
    if rate_limit_ms is None:
        rate_limit_ms = _ccxt_rate_limit(exchange_id)
    per_second = 1000.0 / rate_limit_ms
    limit, interval = (per_second, 1.0) if per_second >= 1 else (1.0, rate_limit_ms / 1000.0)
    pool = PoolSpec("CCXT_RATE_LIMIT", _clean(limit), _clean(interval), "ip")
    return Preset(
        name="ccxt_rate_limit",
        exchange_id=exchange_id,
        trading_mode=trading_mode,
        pools=(pool,),
        rules=(EndpointRule("*", "*", "*", (PoolCharge(pool.name, per_cost=1),)),),
        header_format="ratelimit",
        fallback=True,
        message=(
            f"ratekit has no weight preset for {exchange_id!r}: using ccxt's rateLimit "
            f"({rate_limit_ms:g} ms => {per_second:g} cost units/s) as the only pool"
        ),
    )


def _ccxt_rate_limit(exchange_id: str) -> float:
    import ccxt

    exchange_class = getattr(ccxt, exchange_id, None)
    if exchange_class is None:
        return 1000.0
    return float(exchange_class().rateLimit)
