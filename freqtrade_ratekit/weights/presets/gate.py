"""Gate.io (ids gate, gateio, gateeu; Freqtrade trades spot and futures)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://www.gate.com/docs/developers/apiv4/en/#frequency-limit-rule (read 2026-11-21 via the
# mirrored API v4 doc text and https://bquan.live/th/announcements/article/33995, the
# 2024-01-14 announcement in force since 2024-01-22): public endpoints 200 requests / 10 s per
# endpoint per IP; private endpoints 200 / 10 s per endpoint per UID; spot order placement
# 10 / s per UID and market; spot cancels 200 / s per UID. Every response carries
# X-Gate-RateLimit-Requests-Remain, X-Gate-RateLimit-Limit and X-Gate-RateLimit-Reset-Timestamp.
_GATE_POOLS = (
    PoolSpec("GATE_PUBLIC", 200, 10, "ip", per_endpoint=True),
    PoolSpec("GATE_PRIVATE", 200, 10, "account", per_endpoint=True),
    PoolSpec("GATE_SPOT_ORDER", 10, 1, "account", per_endpoint=True),
    PoolSpec("GATE_SPOT_CANCEL", 200, 1, "account", per_endpoint=True),
)
_GATE_ENDPOINT_HEADERS = (("requests", None, "*"),)
_GATE_RULES = (
    EndpointRule(
        "private/spot",
        "POST",
        "*orders",
        (PoolCharge("GATE_SPOT_ORDER", fixed=1),),
        _GATE_ENDPOINT_HEADERS,
    ),
    EndpointRule(
        "private/spot",
        "DELETE",
        "*order*",
        (PoolCharge("GATE_SPOT_CANCEL", fixed=1),),
        _GATE_ENDPOINT_HEADERS,
    ),
    EndpointRule(
        "private*", "*", "*", (PoolCharge("GATE_PRIVATE", fixed=1),), _GATE_ENDPOINT_HEADERS
    ),
    EndpointRule("*", "*", "*", (PoolCharge("GATE_PUBLIC", fixed=1),), _GATE_ENDPOINT_HEADERS),
)

_GATE_CHECKS = (
    CcxtCheck("markets", "fetch_markets", "publicSpotGetCurrencyPairs", via="fetch_spot_markets"),
    CcxtCheck("tickers", "fetch_tickers", "publicSpotGetTickers"),
    CcxtCheck("candles", "fetch_ohlcv", "publicSpotGetCandlesticks"),
    CcxtCheck("order book", "fetch_order_book", "publicSpotGetOrderBook"),
    CcxtCheck(
        "create order",
        "create_order",
        "privateSpotPostOrders",
        ratio=0.2,
        why="Gate: 10 spot orders / s per UID and market (one pool for every market here); "
        "ccxt allows 50 / s",
    ),
    CcxtCheck(
        "cancel order",
        "cancel_order",
        "privateSpotDeleteOrdersOrderId",
        ratio=2.67,
        why="Gate: 200 spot cancels / s per UID; ccxt spaces cancels at 75 / s",
    ),
    CcxtCheck("fetch order", "fetch_order", "privateSpotGetOrdersOrderId"),
    CcxtCheck("balance", "fetch_balance", "privateSpotGetAccounts"),
    CcxtCheck("my trades", "fetch_my_trades", "privateSpotGetMyTrades"),
)
PRESETS = (
    Preset(
        "gate",
        "gate",
        "spot",
        _GATE_POOLS,
        _GATE_RULES,
        "gate",
        sources=("https://www.gate.com/docs/developers/apiv4/en/#frequency-limit-rule",),
        read_on="2026-11-21",
        ccxt_id="gate",
        ccxt_checks=_GATE_CHECKS,
    ),
)
AUTO = {
    ("gate", "spot"): "gate",
    ("gateio", "spot"): "gate",
    ("gateeu", "spot"): "gate",
    ("gate", "futures"): "gate",
    ("gateio", "futures"): "gate",
}
