"""Kraken spot (id kraken) and Kraken Futures (id krakenfutures; Freqtrade's futures on Kraken).

Kraken's private limits are counters that decay at a fixed rate, not windows. A pool of kind
`decay` with limit M and interval T is a counter of maximum M that falls by M / T per second.
The maximum and the decay depend on the account tier: the preset carries the lowest tier
(Starter); set yours with `weights.pools`, e.g. Intermediate `{"KRAKEN_PRIVATE": {"limit": 20,
"interval": 40}}` (20 / 0.5 per s), Pro `{"limit": 20, "interval": 20}`; the order counter
Intermediate `{"KRAKEN_ORDERS": {"limit": 125, "interval": 53.4}}` (125 / 2.34 per s), Pro
`{"limit": 180, "interval": 48}` (180 / 3.75 per s).
"""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# Spot REST: https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits (read 2026-12-02 as
# https://docs.kraken.com/exchange/guides/rest/ratelimits.md): every API key has a call counter;
# ledger and trade history calls add 2, every other call 1, except AddOrder and CancelOrder.
# Maximum / decay: Starter 15 / -0.33 per s, Intermediate 20 / -0.5, Pro 20 / -1.
# Over it: "EAPI:Rate limit exceeded" (HTTP 200), restricted "for a few seconds".
# Trading engine (AddOrder, CancelOrder): a counter per pair, threshold Starter 60 / Intermediate
# 125 / Pro 180, decay 1 / 2.34 / 3.75 per s; each order adds 1, a cancel adds a penalty that
# falls with the order's age (+8 within 5 s of placing, nothing after 300 s). The pair is a
# request parameter, so one pool holds every pair (stricter than Kraken); a cancel is charged
# 1, the penalty of an order older than a minute (Freqtrade cancels after `unfilledtimeout`).
# Public: https://support.kraken.com/articles/206548367-what-are-the-api-rate-limits- (read
# 2026-12-02): "Calling the public endpoints at a frequency of 1 per second (or less) would
# remain within the rate limits", per IP (and per pair for Trades and OHLC).
# Until the ledger counts decaying counters natively, a `decay` pool is admitted as a window of
# M per T seconds: never more than the counter allows, and the same sustained rate.
_PRIVATE = PoolCharge("KRAKEN_PRIVATE", fixed=1)
_PRIVATE_HISTORY = PoolCharge("KRAKEN_PRIVATE", fixed=2)
_ORDER = PoolCharge("KRAKEN_ORDERS", fixed=1)
_SPOT_POOLS = (
    PoolSpec("KRAKEN_PUBLIC", 1, 1, "ip"),
    PoolSpec("KRAKEN_PUBLIC_PAIR", 1, 1, "ip", per_endpoint=True),
    PoolSpec("KRAKEN_PRIVATE", 15, 45, "account", kind="decay"),  # 15 / 0.33 per s
    PoolSpec("KRAKEN_ORDERS", 60, 60, "account", kind="decay"),  # 60 / 1 per s
)
_SPOT_RULES = (
    EndpointRule("private", "POST", "AddOrder", (_ORDER,)),
    EndpointRule("private", "POST", "AddOrderBatch", (_ORDER,)),
    EndpointRule("private", "POST", "EditOrder", (_ORDER,)),
    EndpointRule("private", "POST", "AmendOrder", (_ORDER,)),
    EndpointRule("private", "POST", "CancelOrder", (_ORDER,)),
    EndpointRule("private", "POST", "CancelOrderBatch", (_ORDER,)),
    EndpointRule("private", "POST", "TradesHistory", (_PRIVATE_HISTORY,)),
    EndpointRule("private", "POST", "Ledgers", (_PRIVATE_HISTORY,)),
    EndpointRule("private", "*", "*", (_PRIVATE,)),
    EndpointRule("public", "GET", "OHLC", (PoolCharge("KRAKEN_PUBLIC_PAIR", fixed=1),)),
    EndpointRule("public", "GET", "Trades", (PoolCharge("KRAKEN_PUBLIC_PAIR", fixed=1),)),
    EndpointRule("*", "*", "*", (PoolCharge("KRAKEN_PUBLIC", fixed=1),)),
)
_CCXT_MARGIN = (
    "ccxt spaces OHLC and Depth 20% wider than 1/s (cost 1.2, 'triggers too many requests')"
)
_NOT_THROTTLED = "ccxt does not throttle AddOrder and CancelOrder (cost 0); Kraken counts them"
_SPOT_CHECKS = (
    CcxtCheck("markets", "fetch_markets", "publicGetAssetPairs"),
    CcxtCheck("tickers", "fetch_tickers", "publicGetTicker"),
    CcxtCheck("candles", "fetch_ohlcv", "publicGetOHLC", ratio=1.2, why=_CCXT_MARGIN),
    CcxtCheck("order book", "fetch_order_book", "publicGetDepth", ratio=1.2, why=_CCXT_MARGIN),
    CcxtCheck("create order", "create_order", "privatePostAddOrder", ratio=0, why=_NOT_THROTTLED),
    CcxtCheck(
        "cancel order", "cancel_order", "privatePostCancelOrder", ratio=0, why=_NOT_THROTTLED
    ),
    CcxtCheck("fetch order", "fetch_order", "privatePostQueryOrders"),
    CcxtCheck("balance", "fetch_balance", "privatePostBalanceEx"),
    CcxtCheck("my trades", "fetch_my_trades", "privatePostTradesHistory"),
)

# Futures: https://docs.kraken.com/api/docs/guides/futures-rate-limits (read 2026-12-02 as
# https://docs.kraken.com/exchange/guides/futures/ratelimits.md): "/derivatives endpoints,
# clients can spend up to 500 every 10 seconds"; costs: sendorder, editorder, cancelorder 10;
# accounts, openpositions, openorders, fills (without lastFillTime) 2; orders/status 1;
# cancelallorders 25. "Public endpoints do not have a cost": no figure for them, so the preset
# keeps ccxt's spacing (rateLimit 600 ms, cost 1: 5 calls / 3 s per IP); the /history and
# /charts budgets were not read, charts (candles) use the same ccxt-derived pool.
_DERIVATIVES = "KRAKEN_FUTURES_DERIVATIVES"
_FUTURES_POOLS = (
    PoolSpec(_DERIVATIVES, 500, 10, "account"),
    PoolSpec("KRAKEN_FUTURES_PUBLIC", 5, 3, "ip"),
)
_FUTURES_RULES = (
    *(
        EndpointRule("private", "POST", path, (PoolCharge(_DERIVATIVES, fixed=10),))
        for path in ("sendorder", "editorder", "cancelorder")
    ),
    EndpointRule("private", "POST", "cancelallorders*", (PoolCharge(_DERIVATIVES, fixed=25),)),
    EndpointRule("private", "*", "orders/status", (PoolCharge(_DERIVATIVES, fixed=1),)),
    EndpointRule("private", "*", "*", (PoolCharge(_DERIVATIVES, fixed=2),)),
    EndpointRule("*", "*", "*", (PoolCharge("KRAKEN_FUTURES_PUBLIC", fixed=1),)),
)
_FUTURES_ORDER_WHY = "500 / 10 s at cost 10 is 5 orders/s; ccxt spaces every call at 600 ms"
_FUTURES_READ_WHY = "500 / 10 s at cost 2 is 25 calls/s; ccxt spaces every call at 600 ms"
_FUTURES_CHECKS = (
    CcxtCheck("markets", "fetch_markets", "publicGetInstruments"),
    CcxtCheck("tickers", "fetch_tickers", "publicGetTickers"),
    CcxtCheck("candles", "fetch_ohlcv", "chartsGetPriceTypeSymbolInterval"),
    CcxtCheck("order book", "fetch_order_book", "publicGetOrderbook"),
    CcxtCheck(
        "create order", "create_order", "privatePostSendorder", ratio=3, why=_FUTURES_ORDER_WHY
    ),
    CcxtCheck(
        "cancel order", "cancel_order", "privatePostCancelorder", ratio=3, why=_FUTURES_ORDER_WHY
    ),
    CcxtCheck(
        "fetch order",
        "fetch_order",
        "privateGetOrdersStatus",
        ratio=30,
        why="orders/status costs 1 of 500 / 10 s (50/s); ccxt spaces every call at 600 ms",
        via="fetch_orders",
    ),
    CcxtCheck("balance", "fetch_balance", "privateGetAccounts", ratio=15, why=_FUTURES_READ_WHY),
    CcxtCheck("my trades", "fetch_my_trades", "privateGetFills", ratio=15, why=_FUTURES_READ_WHY),
)

PRESETS = (
    Preset(
        "kraken",
        "kraken",
        "spot",
        _SPOT_POOLS,
        _SPOT_RULES,
        "kraken",
        sources=(
            "https://docs.kraken.com/api/docs/guides/spot-rest-ratelimits",
            "https://support.kraken.com/articles/206548367-what-are-the-api-rate-limits-",
        ),
        read_on="2026-12-02",
        ccxt_id="kraken",
        ccxt_checks=_SPOT_CHECKS,
    ),
    Preset(
        "krakenfutures",
        "krakenfutures",
        "futures",
        _FUTURES_POOLS,
        _FUTURES_RULES,
        "kraken",
        sources=("https://docs.kraken.com/api/docs/guides/futures-rate-limits",),
        read_on="2026-12-02",
        ccxt_id="krakenfutures",
        ccxt_checks=_FUTURES_CHECKS,
    ),
)
AUTO = {
    ("kraken", "spot"): "kraken",
    ("krakenfutures", "futures"): "krakenfutures",
}
