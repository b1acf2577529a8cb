"""KuCoin (ids kucoin, kucoineu; Freqtrade trades spot)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://www.kucoin.com/docs-new/rate-limit (read 2026-12-02, the page's text as mirrored in
# the code corpus, "Modified at 4 days ago"): each resource pool has a quota per 30 s that
# depends on the VIP level; VIP0: Spot (incl. margin) 4000 / 30 s, Futures 2000, Management
# 2000, Earn 2000, CopyTrading 2000, Public 2000 / 30 s. The Public pool is per IP, all others
# per UID. Each endpoint's weight is deducted from its pool; the count restarts 30 s after the
# first request. Over the quota: HTTP 429 with code 429000, retry after the header's time.
# Every response carries gw-ratelimit-limit (the pool's quota), gw-ratelimit-remaining and
# gw-ratelimit-reset (countdown in ms). A 429000 without those headers is server overload.
# Higher VIP levels: set `weights.pools` (VIP5: {"KUCOIN_SPOT": {"limit": 16000}}).
# Weights: ccxt's table carries the published weights (its comment: "Spot => 4000/30s, Weight =
# x"; kucoin.py, rateLimit 7.5 ms = 4000 / 30 s), the source of the figures below; the weights
# were not read on the exchange's endpoint pages. ccxt charges the Public and Management weights
# against the 4000 / 30 s budget too; the preset puts them in their 2000 / 30 s pools.
# Order book depth is a request parameter: level2_20 weighs 2, level2_100 weighs 4.
_HEADERS = (("requests", None, "*"),)
_SPOT = PoolCharge("KUCOIN_SPOT", per_cost=1)
_MANAGEMENT = PoolCharge("KUCOIN_MANAGEMENT", per_cost=1)
_PUBLIC = PoolCharge("KUCOIN_PUBLIC", per_cost=1)
_BOOK = PoolCharge("KUCOIN_PUBLIC", per_cost=1, param="limit", by_value=(("20", 2), ("100", 4)))
_POOLS = (
    PoolSpec("KUCOIN_SPOT", 4000, 30, "account"),
    PoolSpec("KUCOIN_MANAGEMENT", 2000, 30, "account"),
    PoolSpec("KUCOIN_PUBLIC", 2000, 30, "ip"),
)
_MANAGEMENT_PATHS = (
    "accounts*",
    "user*",
    "sub*",
    "deposit*",
    "hist-deposits",
    "withdrawals*",
    "hist-withdrawals",
    "transfer-list",
    "base-fee",
    "trade-fees",
)
_RULES = (
    *(EndpointRule("private", "GET", path, (_MANAGEMENT,), _HEADERS) for path in _MANAGEMENT_PATHS),
    EndpointRule("private", "*", "*", (_SPOT,), _HEADERS),
    EndpointRule("public", "GET", "market/orderbook/level{level}_{limit}", (_BOOK,), _HEADERS),
    EndpointRule("*", "*", "*", (_PUBLIC,), _HEADERS),
)
_HALF = "ccxt charges this 2000 / 30 s pool's weight against the 4000 / 30 s spot budget"
_CHECKS = (
    CcxtCheck("markets", "fetch_markets", "publicGetSymbols", ratio=0.5, why=_HALF),
    CcxtCheck("tickers", "fetch_tickers", "publicGetMarketAllTickers", ratio=0.5, why=_HALF),
    CcxtCheck(
        "candles",
        "fetch_ohlcv",
        "publicGetMarketCandles",
        ratio=0.5,
        why=_HALF,
        via="fetch_spot_ohlcv",
    ),
    CcxtCheck(
        "order book",
        "fetch_order_book",
        "publicGetMarketOrderbookLevelLevelLimit",
        params=(("level", 2), ("limit", 20)),
        why="ccxt's cost 4 is level2_100's weight; level2_20 weighs 2 in the 2000 / 30 s pool",
    ),
    CcxtCheck("create order", "create_order", "privatePostHfOrders", via="create_spot_order"),
    CcxtCheck(
        "cancel order", "cancel_order", "privateDeleteHfOrdersOrderId", via="cancel_spot_order"
    ),
    CcxtCheck("fetch order", "fetch_order", "privateGetHfOrdersOrderId", via="fetch_spot_order"),
    CcxtCheck("balance", "fetch_balance", "privateGetAccounts", ratio=0.5, why=_HALF),
    CcxtCheck("my trades", "fetch_my_trades", "privateGetHfFills", via="fetch_my_spot_trades"),
)
PRESETS = (
    Preset(
        "kucoin",
        "kucoin",
        "spot",
        _POOLS,
        _RULES,
        "kucoin",
        sources=("https://www.kucoin.com/docs-new/rate-limit",),
        read_on="2026-12-02",
        ccxt_id="kucoin",
        ccxt_checks=_CHECKS,
    ),
)
AUTO = {("kucoin", "spot"): "kucoin", ("kucoineu", "spot"): "kucoin"}
