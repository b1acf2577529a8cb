"""Hyperliquid (id hyperliquid; Freqtrade trades spot and perpetual futures)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits (read
# 2026-12-02): per IP, "REST requests share an aggregated weight limit of 1200 per minute".
# exchange (actions): weight 1 + floor(batch_length / 40), 1 for a single order or cancel.
# info: weight 2 for l2Book, allMids, clearinghouseState, orderStatus, spotClearinghouseState,
# exchangeStatus; 60 for userRole; 20 for every other documented info request. candleSnapshot
# adds 1 per 60 candles returned and the fill histories 1 per 20 items: not known before the
# call, so the preset charges the base weight (a 5000-candle fetch really costs 20 + 83).
# Address-based limits (1 action per 1 USDC traded, 10000 at first, then one per 10 s) count
# per wallet address on actions only; they depend on trading volume and are not modelled.
# Hyperliquid sends no usage headers. Every request is a POST whose `type` sets the weight.
_WEIGHT = "HYPERLIQUID_WEIGHT"
_TWO = ("l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState")
_INFO = PoolCharge(
    _WEIGHT,
    fixed=20,
    param="type",
    by_value=(*((name, 2.0) for name in (*_TWO, "exchangeStatus")), ("userRole", 60.0)),
)
_POOLS = (PoolSpec(_WEIGHT, 1200, 60, "ip"),)
_RULES = (
    EndpointRule("private", "POST", "exchange", (PoolCharge(_WEIGHT, fixed=1),)),
    EndpointRule("*", "*", "*", (_INFO,)),
)
_TWENTY = "Hyperliquid weighs this info request 20; ccxt's default info cost is 10"
_CHECKS = (
    CcxtCheck(
        "markets",
        "fetch_markets",
        "publicPostInfo",
        params=(("type", "metaAndAssetCtxs"),),
        ratio=0.5,
        why=_TWENTY,
        via="fetch_swap_markets",
    ),
    CcxtCheck(
        "tickers",
        "fetch_tickers",
        "publicPostInfo",
        params=(("type", "metaAndAssetCtxs"),),
        ratio=0.5,
        why=_TWENTY,
        via="fetch_swap_markets",
    ),
    CcxtCheck(
        "candles",
        "fetch_ohlcv",
        "publicPostInfo",
        params=(("type", "candleSnapshot"),),
        ratio=0.2,
        why="Hyperliquid weighs candleSnapshot 20 (+1 per 60 candles); ccxt's cost is 4",
    ),
    CcxtCheck("order book", "fetch_order_book", "publicPostInfo", params=(("type", "l2Book"),)),
    CcxtCheck("create order", "create_order", "privatePostExchange", via="create_orders"),
    CcxtCheck("cancel order", "cancel_order", "privatePostExchange", via="cancel_orders"),
    CcxtCheck("fetch order", "fetch_order", "publicPostInfo", params=(("type", "orderStatus"),)),
    CcxtCheck(
        "balance", "fetch_balance", "publicPostInfo", params=(("type", "clearinghouseState"),)
    ),
    CcxtCheck(
        "my trades",
        "fetch_my_trades",
        "publicPostInfo",
        params=(("type", "userFillsByTime"),),
        ratio=0.5,
        why=_TWENTY,
    ),
)
PRESETS = (
    Preset(
        "hyperliquid",
        "hyperliquid",
        "futures",
        _POOLS,
        _RULES,
        "hyperliquid",
        sources=("https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits",),
        read_on="2026-12-02",
        ccxt_id="hyperliquid",
        ccxt_checks=_CHECKS,
    ),
)
AUTO = {("hyperliquid", "spot"): "hyperliquid", ("hyperliquid", "futures"): "hyperliquid"}
