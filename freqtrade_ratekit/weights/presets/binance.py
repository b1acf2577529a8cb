"""Binance spot and USDⓈ-M futures (ids binance, binanceusdm; Freqtrade trades both)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CONNECTION_POOL,
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# Spot limits: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits
# (read 2026-11-21): X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter) on every response,
# X-MBX-ORDER-COUNT-* on successful orders, 429 then 418 bans from 2 minutes to 3 days,
# Retry-After in seconds. The numbers are the ones exchangeInfo returns
# (https://developers.binance.com/docs/binance-spot-api-docs/testnet/web-socket-api/connection-limits
# shows REQUEST_WEIGHT 1 MINUTE limit 6000, read 2026-11-21):
#   REQUEST_WEIGHT 6000 / 1 min per IP; RAW_REQUESTS 61000 / 5 min per IP;
#   ORDERS 100 / 10 s and 200000 / 1 day per account (older docs: 50 / 10 s, 160000 / day).
# sapi: 12000 weight / min per IP (ccxt binance.py comment "IP (sapi) request rate limit of
#   12 000 per minute", from https://developers.binance.com/docs/wallet, read 2026-11-21).
# USDⓈ-M futures: https://www.binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3
# (last updated 2024-12-27, read 2026-11-21): 2400 weight / min per IP, 1200 orders / min per
# account and 300 orders / 10 s. COIN-M (dapi) shares the same published defaults.
_BINANCE_POOLS = (
    PoolSpec("REQUEST_WEIGHT", 6000, 60, "ip"),
    PoolSpec("RAW_REQUESTS", 61000, 300, "ip"),
    PoolSpec("ORDERS_10S", 100, 10, "account"),
    PoolSpec("ORDERS_1D", 200000, 86400, "account"),
    PoolSpec("SAPI_IP", 12000, 60, "ip"),
    PoolSpec("FAPI_REQUEST_WEIGHT", 2400, 60, "ip"),
    PoolSpec("FAPI_ORDERS_10S", 300, 10, "account"),
    PoolSpec("FAPI_ORDERS_1M", 1200, 60, "account"),
    PoolSpec("DAPI_REQUEST_WEIGHT", 2400, 60, "ip"),
    # Websocket market streams: 300 connection attempts per 5 minutes per IP
    # (https://developers.binance.com/en/docs/products/spot/web-socket-streams, "WebSocket
    # Limits", read 2026-12-02; the same figure in nautilus_trader's BINANCE_WS_CONNECTION_QUOTA
    # docs). Charged by the price stream (`rates.stream`) for every connect.
    PoolSpec(CONNECTION_POOL, 300, 300, "ip"),
)
_SPOT_HEADERS = (
    ("weight", 60.0, "REQUEST_WEIGHT"),
    ("orders", 10.0, "ORDERS_10S"),
    ("orders", 86400.0, "ORDERS_1D"),
)
_FAPI_HEADERS = (
    ("weight", 60.0, "FAPI_REQUEST_WEIGHT"),
    ("orders", 10.0, "FAPI_ORDERS_10S"),
    ("orders", 60.0, "FAPI_ORDERS_1M"),
)
_SPOT_WEIGHT = PoolCharge("REQUEST_WEIGHT", per_cost=5)  # ccxt: 1 weight = cost 0.2
_RAW = PoolCharge("RAW_REQUESTS", fixed=1)
_SPOT_ORDER = (
    _SPOT_WEIGHT,
    _RAW,
    PoolCharge("ORDERS_10S", fixed=1),
    PoolCharge("ORDERS_1D", fixed=1),
)
_FAPI_WEIGHT = PoolCharge("FAPI_REQUEST_WEIGHT", per_cost=1)  # ccxt: fapi cost = weight
_FAPI_ORDER = (
    _FAPI_WEIGHT,
    PoolCharge("FAPI_ORDERS_10S", fixed=1),
    PoolCharge("FAPI_ORDERS_1M", fixed=1),
)
_BINANCE_RULES = (
    EndpointRule("sapi*", "*", "*", (PoolCharge("SAPI_IP", per_cost=10),)),  # sapi: 1 = 0.1
    EndpointRule("private", "POST", "*order/test", (_SPOT_WEIGHT, _RAW), _SPOT_HEADERS),
    EndpointRule("private", "POST", "order*", _SPOT_ORDER, _SPOT_HEADERS),
    EndpointRule("private", "POST", "orderList/*", _SPOT_ORDER, _SPOT_HEADERS),
    EndpointRule("private", "POST", "sor/order", _SPOT_ORDER, _SPOT_HEADERS),
    EndpointRule("fapiPrivate*", "POST", "*rder*", _FAPI_ORDER, _FAPI_HEADERS),
    EndpointRule("fapi*", "*", "*", (_FAPI_WEIGHT,), _FAPI_HEADERS),
    EndpointRule(
        "dapi*",
        "*",
        "*",
        (PoolCharge("DAPI_REQUEST_WEIGHT", per_cost=1),),
        (("weight", 60.0, "DAPI_REQUEST_WEIGHT"),),
    ),
    EndpointRule("*", "*", "*", (_SPOT_WEIGHT, _RAW), _SPOT_HEADERS),
)

_SOURCES = (
    "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits",
    "https://www.binance.com/en/support/faq/rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3",
)
_ORDERS_NOT_IN_CCXT = (
    "ccxt spaces orders by request weight only; ORDERS_1D (200000 a day, 2.3/s sustained) and "
    "ORDERS_10S are tighter"
)
_FAPI_1200 = (
    "Binance publishes 2400 weight / min for USDⓈ-M; ccxt's fapi costs still encode 1200 / min "
    "(cost = weight at rateLimit 50 ms)"
)
_SPOT_CHECKS = (
    CcxtCheck("markets", "fetch_markets", "publicGetExchangeInfo"),
    CcxtCheck("tickers", "fetch_tickers", "publicGetTicker24hr"),
    CcxtCheck("candles", "fetch_ohlcv", "publicGetKlines", params=(("limit", 1000),)),
    CcxtCheck("order book", "fetch_order_book", "publicGetDepth", params=(("limit", 100),)),
    CcxtCheck(
        "create order", "create_order", "privatePostOrder", ratio=0.0231, why=_ORDERS_NOT_IN_CCXT
    ),
    CcxtCheck("cancel order", "cancel_order", "privateDeleteOrder"),
    CcxtCheck("fetch order", "fetch_order", "privateGetOrder"),
    CcxtCheck("balance", "fetch_balance", "privateGetAccount"),
    CcxtCheck("my trades", "fetch_my_trades", "privateGetMyTrades"),
)
_FUTURES_CHECKS = (
    CcxtCheck("markets", "fetch_markets", "fapiPublicGetExchangeInfo", ratio=2, why=_FAPI_1200),
    CcxtCheck("tickers", "fetch_tickers", "fapiPublicGetTicker24hr", ratio=2, why=_FAPI_1200),
    CcxtCheck(
        "candles",
        "fetch_ohlcv",
        "fapiPublicGetKlines",
        params=(("limit", 1000),),
        ratio=2,
        why=_FAPI_1200,
    ),
    CcxtCheck(
        "order book",
        "fetch_order_book",
        "fapiPublicGetDepth",
        params=(("limit", 100),),
        ratio=2,
        why=_FAPI_1200,
    ),
    CcxtCheck("create order", "create_order", "fapiPrivatePostOrder", ratio=2, why=_FAPI_1200),
    CcxtCheck("cancel order", "cancel_order", "fapiPrivateDeleteOrder", ratio=2, why=_FAPI_1200),
    CcxtCheck("fetch order", "fetch_order", "fapiPrivateGetOrder", ratio=2, why=_FAPI_1200),
    CcxtCheck("balance", "fetch_balance", "fapiPrivateV3GetAccount", ratio=2, why=_FAPI_1200),
    CcxtCheck("my trades", "fetch_my_trades", "fapiPrivateGetUserTrades", ratio=2, why=_FAPI_1200),
)
PRESETS = (
    Preset(
        "binance_spot",
        "binance",
        "spot",
        _BINANCE_POOLS,
        _BINANCE_RULES,
        "binance",
        sources=_SOURCES,
        read_on="2026-11-21",
        ccxt_id="binance",
        ccxt_checks=_SPOT_CHECKS,
    ),
    Preset(
        "binance_futures",
        "binance",
        "futures",
        _BINANCE_POOLS,
        _BINANCE_RULES,
        "binance",
        sources=_SOURCES,
        read_on="2026-11-21",
        ccxt_id="binance",
        ccxt_checks=_FUTURES_CHECKS,
    ),
)
AUTO = {
    ("binance", "spot"): "binance_spot",
    ("binance", "margin"): "binance_spot",
    ("binance", "futures"): "binance_futures",
    ("binanceusdm", "futures"): "binance_futures",
}
