"""BingX (id bingx; Freqtrade trades spot)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://bingx.com/en/support/articles/31103871611289 ("API rate limit upgrade", from
# 2025-10-16; read 2026-12-02): "All spot and futures market data interfaces share a limit of
# 500 requests per 10 seconds per IP"; the overall IP limit of the account interfaces is
# 2000 requests / 10 s (since 2025-09-10). Spot, per user: place an order 5 times/s, cancel
# an order 5 times/s, query an order 10 times/s. The limits are per UID and endpoint, with
# X-RateLimit-Requests-Remain and X-RateLimit-Requests-Expire headers
# (https://bingx-api.github.io/docs/#/en-us/spot/base-info.html#Rate%20limit, through
# https://docs.atwallets.com/rcxt/bingx, read 2026-12-02). Over a limit: 429, then 418.
# Not read: balance and my trades; they are ccxt's (bingx.py, rateLimit 100 ms, cost 2 =
# 5 req/s), as is any other account endpoint (cost 1 = 10 req/s).
_MARKET = PoolCharge("BINGX_MARKET", fixed=1)
_ACCOUNT = PoolCharge("BINGX_ACCOUNT", fixed=1)
_POOLS = (
    PoolSpec("BINGX_MARKET", 500, 10, "ip"),
    PoolSpec("BINGX_ACCOUNT", 2000, 10, "ip"),
    PoolSpec("BINGX_ENDPOINT", 10, 1, "account", per_endpoint=True),
)
_ENDPOINT = PoolCharge("BINGX_ENDPOINT", per_cost=1)  # ccxt cost 1 = 10/s, cost 2 = 5/s
_RULES = (
    EndpointRule("*private", "*", "*", (_ENDPOINT, _ACCOUNT)),
    EndpointRule("*", "*", "*", (_MARKET,)),
)
_MARKET_WHY = "BingX shares 500 / 10 s per IP among market data; ccxt spaces each call at 10/s"
_CHECKS = (
    CcxtCheck(
        "markets",
        "fetch_markets",
        "spotV1PublicGetCommonSymbols",
        ratio=5,
        why=_MARKET_WHY,
        via="fetch_spot_markets",
    ),
    CcxtCheck("tickers", "fetch_tickers", "spotV1PublicGetTicker24hr", ratio=5, why=_MARKET_WHY),
    CcxtCheck("candles", "fetch_ohlcv", "spotV1PublicGetMarketKline", ratio=5, why=_MARKET_WHY),
    CcxtCheck(
        "order book", "fetch_order_book", "spotV1PublicGetMarketDepth", ratio=5, why=_MARKET_WHY
    ),
    CcxtCheck("create order", "create_order", "spotV1PrivatePostTradeOrder"),
    CcxtCheck("cancel order", "cancel_order", "spotV1PrivatePostTradeCancel"),
    CcxtCheck("fetch order", "fetch_order", "spotV1PrivateGetTradeQuery"),
    CcxtCheck("balance", "fetch_balance", "spotV1PrivateGetAccountBalance"),
    CcxtCheck("my trades", "fetch_my_trades", "spotV1PrivateGetTradeMyTrades"),
)
PRESETS = (
    Preset(
        "bingx",
        "bingx",
        "spot",
        _POOLS,
        _RULES,
        "bingx",
        sources=(
            "https://bingx.com/en/support/articles/31103871611289",
            "https://bingx-api.github.io/docs/#/en-us/spot/base-info.html",
        ),
        read_on="2026-12-02",
        ccxt_id="bingx",
        ccxt_checks=_CHECKS,
    ),
)
AUTO = {("bingx", "spot"): "bingx"}
