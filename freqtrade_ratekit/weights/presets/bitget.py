"""Bitget v2 (id bitget; Freqtrade trades spot and USDT futures, the "mix" API)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://www.bitget.com/api-doc/common/quick-start (read 2026-12-02 through its mirrors
# https://bitget.fit/api-doc/common/quick-start and https://docs.atwallets.com/rcxt/bitget):
# "The rate limit of each API endpoint is marked on the doc page; the rate limit of each API
# interface is calculated independently; the overall rate limit is 6000/IP/Min"; over it,
# HTTP 429. Public endpoints are limited per IP, private ones per UID.
# The per-endpoint figures were not read on the endpoint pages: they are ccxt's (bitget.py,
# rateLimit 50 ms = 20 cost units/s, cost 1 for market data = 20 req/s, cost 2 for orders,
# fills and assets = 10 req/s), kept per endpoint as Bitget counts them.
_IP = PoolCharge("BITGET_IP", fixed=1)
_POOLS = (
    PoolSpec("BITGET_IP", 6000, 60, "ip"),
    PoolSpec("BITGET_PUBLIC", 20, 1, "ip", per_endpoint=True),
    PoolSpec("BITGET_PRIVATE", 20, 1, "account", per_endpoint=True),
)
_RULES = (
    EndpointRule("private*", "*", "*", (PoolCharge("BITGET_PRIVATE", per_cost=1), _IP)),
    EndpointRule("*", "*", "*", (PoolCharge("BITGET_PUBLIC", per_cost=1), _IP)),
)


def _checks(family: str) -> tuple[CcxtCheck, ...]:
    """`family` is ccxt's spot or mix (futures) naming: SpotGetV2Spot... or MixGetV2Mix..."""
    spot = family == "spot"
    return (
        CcxtCheck(
            "markets",
            "fetch_markets",
            "publicSpotGetV2SpotPublicSymbols" if spot else "publicMixGetV2MixMarketContracts",
            via="fetch_default_markets",
        ),
        CcxtCheck(
            "tickers",
            "fetch_tickers",
            "publicSpotGetV2SpotMarketTickers" if spot else "publicMixGetV2MixMarketTickers",
        ),
        CcxtCheck(
            "candles",
            "fetch_ohlcv",
            "publicSpotGetV2SpotMarketCandles" if spot else "publicMixGetV2MixMarketCandles",
        ),
        CcxtCheck(
            "order book",
            "fetch_order_book",
            "publicSpotGetV2SpotMarketOrderbook" if spot else "publicMixGetV2MixMarketMergeDepth",
        ),
        CcxtCheck(
            "create order",
            "create_order",
            "privateSpotPostV2SpotTradePlaceOrder"
            if spot
            else "privateMixPostV2MixOrderPlaceOrder",
        ),
        CcxtCheck(
            "cancel order",
            "cancel_order",
            "privateSpotPostV2SpotTradeCancelOrder"
            if spot
            else "privateMixPostV2MixOrderCancelOrder",
        ),
        CcxtCheck(
            "fetch order",
            "fetch_order",
            "privateSpotGetV2SpotTradeOrderInfo" if spot else "privateMixGetV2MixOrderDetail",
        ),
        CcxtCheck(
            "balance",
            "fetch_balance",
            "privateSpotGetV2SpotAccountAssets" if spot else "privateMixGetV2MixAccountAccounts",
        ),
        CcxtCheck(
            "my trades",
            "fetch_my_trades",
            "privateSpotGetV2SpotTradeFills" if spot else "privateMixGetV2MixOrderFills",
        ),
    )


_SOURCES = ("https://www.bitget.com/api-doc/common/quick-start",)
PRESETS = (
    Preset(
        "bitget_spot",
        "bitget",
        "spot",
        _POOLS,
        _RULES,
        "bitget",
        sources=_SOURCES,
        read_on="2026-12-02",
        ccxt_id="bitget",
        ccxt_checks=_checks("spot"),
    ),
    Preset(
        "bitget_futures",
        "bitget",
        "futures",
        _POOLS,
        _RULES,
        "bitget",
        sources=_SOURCES,
        read_on="2026-12-02",
        ccxt_id="bitget",
        ccxt_checks=_checks("mix"),
    ),
)
AUTO = {("bitget", "spot"): "bitget_spot", ("bitget", "futures"): "bitget_futures"}
