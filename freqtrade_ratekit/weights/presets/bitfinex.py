"""Bitfinex (id bitfinex; spot)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CONNECTION_POOL,
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://docs.bitfinex.com/v1 (read 2026-11-21): "If an IP address exceeds a certain number of
# requests per minute (between 10 and 90) to a specific REST API endpoint ... blocked for
# 10-60 seconds ... {"error": "ERR_RATE_LIMIT"}". ccxt models every endpoint at 90 / min
# (bitfinex.py: cost 2.7 at rateLimit 250). The 30 / min of the tickers, candles and trades
# endpoints is from the v2 endpoint reference pages (docs.bitfinex.com/reference/rest-public-*);
# not re-read on 2026-11-21: lower it with `weights.pools` if Bitfinex answers 429.
# Bitfinex sends no usage headers; a block is waited out for 60 s (the documented maximum).
_BITFINEX_POOLS = (
    PoolSpec("BITFINEX_ENDPOINT", 90, 60, "ip", per_endpoint=True),
    PoolSpec("BITFINEX_ENDPOINT_30", 30, 60, "ip", per_endpoint=True),
    # Public websocket (wss://api-pub.bitfinex.com): 20 connections per minute, 25 channels per
    # connection (https://docs.bitfinex.com/docs/ws-public, read 2026-12-02).
    PoolSpec(CONNECTION_POOL, 20, 60, "ip"),
)
_BITFINEX_RULES = (
    EndpointRule("public", "GET", "tickers", (PoolCharge("BITFINEX_ENDPOINT_30", fixed=1),)),
    EndpointRule("public", "GET", "candles/*", (PoolCharge("BITFINEX_ENDPOINT_30", fixed=1),)),
    EndpointRule("public", "GET", "trades/*", (PoolCharge("BITFINEX_ENDPOINT_30", fixed=1),)),
    EndpointRule("*", "*", "*", (PoolCharge("BITFINEX_ENDPOINT", fixed=1),)),
)

_THIRTY = "the v2 reference's 30 / min (see above); ccxt models every endpoint at 90 / min"
_BITFINEX_CHECKS = (
    CcxtCheck("markets", "fetch_markets", "publicGetConfConfig"),
    CcxtCheck("tickers", "fetch_tickers", "publicGetTickers", ratio=0.338, why=_THIRTY),
    CcxtCheck(
        "candles",
        "fetch_ohlcv",
        "publicGetCandlesTradeTimeframeSymbolHist",
        ratio=0.338,
        why=_THIRTY,
    ),
    CcxtCheck(
        "order book",
        "fetch_order_book",
        "publicGetBookSymbolPrecision",
        ratio=0.375,
        why="ccxt allows the book 240 / min (cost 1); the preset keeps Bitfinex's 90 / min",
    ),
    CcxtCheck("create order", "create_order", "privatePostAuthWOrderSubmit"),
    CcxtCheck("cancel order", "cancel_order", "privatePostAuthWOrderCancel"),
    CcxtCheck("fetch order", "fetch_order", "privatePostAuthROrdersSymbol"),
    CcxtCheck("balance", "fetch_balance", "privatePostAuthRWallets"),
    CcxtCheck("my trades", "fetch_my_trades", "privatePostAuthRTradesSymbolHist"),
)
PRESETS = (
    Preset(
        "bitfinex",
        "bitfinex",
        "spot",
        _BITFINEX_POOLS,
        _BITFINEX_RULES,
        "bitfinex",
        default_retry_after_s=60.0,
        sources=("https://docs.bitfinex.com/v1",),
        read_on="2026-11-21",
        ccxt_id="bitfinex",
        ccxt_checks=_BITFINEX_CHECKS,
    ),
)
AUTO = {("bitfinex", "spot"): "bitfinex"}
