"""HTX, formerly Huobi (ids htx, huobi; Freqtrade trades spot)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# Private, per UID and endpoint: https://www.htx.com/support/900001168066 ("HTX is going to
# change rate limit policy for part of REST API endpoints", 2020-06-03, in force since
# 2020-06-04; read 2026-12-02): accounts and account balance 100 times / 2 s, place an order
# 100 / 2 s, submit cancel 100 / 2 s, get all open orders 50 / 2 s.
# Public, per IP: https://huobiapi.github.io/docs/spot/v1/en/#rate-limiting-rule, read
# 2026-12-02 through its summary
# https://raw.githubusercontent.com/api-evangelist/htx/refs/heads/main/rate-limits/htx-rate-limits.yml
# (generated 2026-07-19 from those docs): market data (/market/*) 800 requests / s per IP,
# other public endpoints 120 / 3 s per IP.
# Not read: the order detail and match results limits. They are ccxt's (htx.py, rateLimit
# 100 ms; v1/order/orders/{order-id} cost 0.4 = 50 / 2 s, v1/order/matchresults cost 1 =
# 20 / 2 s), and so is the fallback of any other private endpoint (cost 1 = 20 / 2 s).
_POOLS = (
    PoolSpec("HTX_MARKET", 800, 1, "ip"),
    PoolSpec("HTX_PUBLIC", 120, 3, "ip"),
    PoolSpec("HTX_PRIVATE_100", 100, 2, "account", per_endpoint=True),
    PoolSpec("HTX_PRIVATE_50", 50, 2, "account", per_endpoint=True),
    PoolSpec("HTX_PRIVATE_20", 20, 2, "account", per_endpoint=True),
)
_FAST = (
    "v1/account/accounts",
    "v1/account/accounts/{account-id}/balance",
    "v1/order/orders/place",
    "v1/order/orders/{order-id}/submitcancel",
    "v1/order/orders/submitCancelClientOrder",
)
_MEDIUM = ("v1/order/openOrders", "v1/order/orders/{order-id}", "v1/order/orders/getClientOrder")
_RULES = (
    *(
        EndpointRule("spot/private", "*", p, (PoolCharge("HTX_PRIVATE_100", fixed=1),))
        for p in _FAST
    ),
    *(
        EndpointRule("spot/private", "*", p, (PoolCharge("HTX_PRIVATE_50", fixed=1),))
        for p in _MEDIUM
    ),
    EndpointRule("spot/private", "*", "*", (PoolCharge("HTX_PRIVATE_20", fixed=1),)),
    EndpointRule("*", "GET", "market/*", (PoolCharge("HTX_MARKET", fixed=1),)),
    EndpointRule("*", "*", "*", (PoolCharge("HTX_PUBLIC", fixed=1),)),
)
_MARKET_WHY = "HTX allows 800 market-data requests / s per IP; ccxt spaces them at 10/s"
_CHECKS = (
    CcxtCheck(
        "markets",
        "fetch_markets",
        "spotPublicGetV1CommonSymbols",
        ratio=4,
        why="HTX allows 120 / 3 s for reference data; ccxt spaces it at 10/s",
        via="fetch_markets_by_type_and_sub_type",
    ),
    CcxtCheck("tickers", "fetch_tickers", "spotPublicGetMarketTickers", ratio=80, why=_MARKET_WHY),
    CcxtCheck(
        "candles", "fetch_ohlcv", "spotPublicGetMarketHistoryKline", ratio=80, why=_MARKET_WHY
    ),
    CcxtCheck(
        "order book", "fetch_order_book", "spotPublicGetMarketDepth", ratio=80, why=_MARKET_WHY
    ),
    CcxtCheck("create order", "create_order", "spotPrivatePostV1OrderOrdersPlace"),
    CcxtCheck("cancel order", "cancel_order", "spotPrivatePostV1OrderOrdersOrderIdSubmitcancel"),
    CcxtCheck("fetch order", "fetch_order", "spotPrivateGetV1OrderOrdersOrderId"),
    CcxtCheck("balance", "fetch_balance", "spotPrivateGetV1AccountAccountsAccountIdBalance"),
    CcxtCheck("my trades", "fetch_my_trades", "spotPrivateGetV1OrderMatchresults"),
)
PRESETS = (
    Preset(
        "htx",
        "htx",
        "spot",
        _POOLS,
        _RULES,
        "htx",
        sources=(
            "https://www.htx.com/support/900001168066",
            "https://huobiapi.github.io/docs/spot/v1/en/#rate-limiting-rule",
        ),
        read_on="2026-12-02",
        ccxt_id="htx",
        ccxt_checks=_CHECKS,
    ),
)
AUTO = {("htx", "spot"): "htx", ("huobi", "spot"): "htx"}
