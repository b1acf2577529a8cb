"""OKX (ids okx, myokx; Freqtrade trades spot and futures)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CONNECTION_POOL,
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://www.okx.com/docs-v5/en/#overview-rate-limits (read 2026-11-21 through its mirror
# https://raw.githubusercontent.com/api-evangelist/okx/refs/heads/main/rate-limits/okx-rate-limits.yml
# and https://docs.atwallets.com/rcxt/okxtr): each endpoint has its own limit; public endpoints
# per IP, private ones per User ID; market tickers/books/candles 20 requests / 2 s
# (books and candles are 40 / 2 s in the endpoint reference); place/cancel order 60 / 2 s per
# User ID + instrument; account balance 10 / 2 s. Over the limit: HTTP 429, code 50011.
# Sub-account order limit 1000 / 2 s (https://aws.okx.com/help/fill-ratio-sub-account-rate-limit,
# updated 2024-04-04, read 2026-11-21). OKX sends no usage headers on REST.
# public/time: 10 requests / 2 s per IP (OKX v5 docs, "Get system time", read 2026-12-02
# through the dated mirror github.com/qiuham/crypto-api-docs docs/okx/, fetched 2026-06-15;
# ccxt's cost 2 for it works out to about 9 / 2 s).
# Not read on OKX's pages (2026-12-02, from ccxt's okx.py at rateLimit 110 ms): order details
# (GET trade/order, cost 1/3) 60 / 2 s like placing, fills history (cost 2) 10 / 2 s.
_OKX_POOLS = (
    PoolSpec("OKX_PUBLIC", 20, 2, "ip", per_endpoint=True),
    PoolSpec("OKX_PUBLIC_40", 40, 2, "ip", per_endpoint=True),
    PoolSpec("OKX_PUBLIC_10", 10, 2, "ip", per_endpoint=True),
    PoolSpec("OKX_PRIVATE", 20, 2, "account", per_endpoint=True),
    PoolSpec("OKX_ORDER", 60, 2, "account", per_endpoint=True),
    PoolSpec("OKX_BALANCE", 10, 2, "account", per_endpoint=True),
    PoolSpec("OKX_PRIVATE_10", 10, 2, "account", per_endpoint=True),
    PoolSpec("OKX_SUBACCOUNT_ORDERS", 1000, 2, "account"),
    # Websocket: 3 connection requests per second per IP; 480 subscribe/unsubscribe/login
    # requests per hour per connection (https://www.okx.com/docs-v5/en/#overview-websocket,
    # read 2026-12-02 through nautilus_trader's OKX_WS_QUOTA docs, which quote it).
    PoolSpec(CONNECTION_POOL, 3, 1, "ip"),
)
_OKX_RULES = (
    EndpointRule("public", "GET", "market/books", (PoolCharge("OKX_PUBLIC_40", fixed=1),)),
    EndpointRule("public", "GET", "market/candles", (PoolCharge("OKX_PUBLIC_40", fixed=1),)),
    EndpointRule("public", "GET", "public/time", (PoolCharge("OKX_PUBLIC_10", fixed=1),)),
    EndpointRule(
        "private",
        "POST",
        "trade/*order*",
        (PoolCharge("OKX_ORDER", fixed=1), PoolCharge("OKX_SUBACCOUNT_ORDERS", fixed=1)),
    ),
    EndpointRule("private", "GET", "trade/orders-pending", (PoolCharge("OKX_ORDER", fixed=1),)),
    EndpointRule("private", "GET", "trade/order", (PoolCharge("OKX_ORDER", fixed=1),)),
    EndpointRule("private", "GET", "trade/fills-history", (PoolCharge("OKX_PRIVATE_10", fixed=1),)),
    EndpointRule("private", "GET", "account/balance", (PoolCharge("OKX_BALANCE", fixed=1),)),
    EndpointRule("private*", "*", "*", (PoolCharge("OKX_PRIVATE", fixed=1),)),
    EndpointRule("*", "*", "*", (PoolCharge("OKX_PUBLIC", fixed=1),)),
)

_TOLERANCE = "ccxt spaces OKX calls 10% wider (rateLimit 110 ms, '100 plus 10% tolerance')"
_OKX_CHECKS = (
    CcxtCheck(
        "markets", "fetch_markets", "publicGetPublicInstruments", via="fetch_markets_by_type"
    ),
    CcxtCheck("tickers", "fetch_tickers", "publicGetMarketTickers"),
    CcxtCheck("candles", "fetch_ohlcv", "publicGetMarketCandles"),
    CcxtCheck("order book", "fetch_order_book", "publicGetMarketBooks"),
    CcxtCheck("create order", "create_order", "privatePostTradeOrder", ratio=1.1, why=_TOLERANCE),
    CcxtCheck(
        "cancel order", "cancel_order", "privatePostTradeCancelOrder", ratio=1.1, why=_TOLERANCE
    ),
    CcxtCheck("fetch order", "fetch_order", "privateGetTradeOrder", ratio=1.1, why=_TOLERANCE),
    CcxtCheck("balance", "fetch_balance", "privateGetAccountBalance"),
    CcxtCheck("my trades", "fetch_my_trades", "privateGetTradeFillsHistory"),
)
PRESETS = (
    Preset(
        "okx",
        "okx",
        "spot",
        _OKX_POOLS,
        _OKX_RULES,
        "okx",
        sources=("https://www.okx.com/docs-v5/en/#overview-rate-limits",),
        read_on="2026-11-21",
        ccxt_id="okx",
        ccxt_checks=_OKX_CHECKS,
    ),
)
AUTO = {
    ("okx", "spot"): "okx",
    ("okx", "futures"): "okx",
    ("myokx", "spot"): "okx",
    ("myokx", "futures"): "okx",
}
