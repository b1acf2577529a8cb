"""Bybit v5 (ids bybit, bybiteu; Freqtrade trades spot and USDT futures, category linear)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import (
    CcxtCheck,
    EndpointRule,
    PoolCharge,
    PoolSpec,
    Preset,
)

# https://bybit-exchange.github.io/docs/v5/rate-limit (read 2026-12-02):
# - "600 requests within a 5-second window per IP" for all traffic to api.bybit.com; over it,
#   HTTP 403 "access too frequent" and a ban of at least 10 minutes.
# - per UID and endpoint, a rolling one-second window; every response carries X-Bapi-Limit
#   (the endpoint's limit), X-Bapi-Limit-Status (remaining) and X-Bapi-Limit-Reset-Timestamp
#   (ms); over it, retCode 10006 "Too many visits!" (with HTTP 200).
# - POST /v5/order/create (and cancel, amend): 10/s for inverse and linear, 20/s for spot.
#   https://bybit-exchange.github.io/docs/v5/rate-limit/rules-for-pros/introduction (read
#   2026-12-02) gives the same default UID limits: Futures 10/s, Spot 20/s.
# - GET order/realtime, order/history, execution/list, position/list, account/wallet-balance:
#   50/s. The rows of the exchange's table past order/amend were cut off in the copy read; the
#   50/s is from a transcription of that table in a public repository's Bybit notes (found
#   2026-12-02). The headers correct it if Bybit's figure for an account differs.
# - any other private endpoint: no figure read; 10/s, ccxt's default (cost 5 at rateLimit 20 ms).
_IP = PoolCharge("BYBIT_IP", fixed=1)
_ENDPOINT_HEADERS = (("requests", None, "*"),)
_READS_50 = ("v5/order/realtime", "v5/order/history", "v5/execution/list", "v5/position/list")


def _pools(order_limit: int) -> tuple[PoolSpec, ...]:
    return (
        PoolSpec("BYBIT_IP", 600, 5, "ip"),
        PoolSpec("BYBIT_ORDER", order_limit, 1, "account", per_endpoint=True),
        PoolSpec("BYBIT_READ", 50, 1, "account", per_endpoint=True),
        PoolSpec("BYBIT_PRIVATE", 10, 1, "account", per_endpoint=True),
    )


def _charged(pool: str) -> tuple[PoolCharge, ...]:
    return (PoolCharge(pool, fixed=1), _IP)


_RULES = (
    EndpointRule("private", "POST", "v5/order/create", _charged("BYBIT_ORDER"), _ENDPOINT_HEADERS),
    EndpointRule("private", "POST", "v5/order/cancel", _charged("BYBIT_ORDER"), _ENDPOINT_HEADERS),
    EndpointRule("private", "POST", "v5/order/amend", _charged("BYBIT_ORDER"), _ENDPOINT_HEADERS),
    *(
        EndpointRule("private", "GET", path, _charged("BYBIT_READ"), _ENDPOINT_HEADERS)
        for path in (*_READS_50, "v5/account/wallet-balance")
    ),
    EndpointRule("private", "*", "*", _charged("BYBIT_PRIVATE"), _ENDPOINT_HEADERS),
    EndpointRule("*", "*", "*", (_IP,)),  # public: the IP limit only, no usage headers
)

_PUBLIC_WHY = (
    "Bybit publishes only the IP limit (600 / 5 s) for market data; ccxt spaces every public "
    "call at 10/s (cost 5)"
)
_READ_WHY = "Bybit's table: 50/s per UID; ccxt still spaces it at 10/s (cost 5)"


def _checks(order_ratio: float, order_why: str) -> tuple[CcxtCheck, ...]:
    return (
        CcxtCheck(
            "markets",
            "fetch_markets",
            "publicGetV5MarketInstrumentsInfo",
            ratio=12,
            why=_PUBLIC_WHY,
            via="fetch_spot_markets",
        ),
        CcxtCheck(
            "tickers", "fetch_tickers", "publicGetV5MarketTickers", ratio=12, why=_PUBLIC_WHY
        ),
        CcxtCheck("candles", "fetch_ohlcv", "publicGetV5MarketKline", ratio=12, why=_PUBLIC_WHY),
        CcxtCheck(
            "order book",
            "fetch_order_book",
            "publicGetV5MarketOrderbook",
            ratio=12,
            why=_PUBLIC_WHY,
        ),
        CcxtCheck(
            "create order",
            "create_order",
            "privatePostV5OrderCreate",
            ratio=order_ratio,
            why=order_why,
        ),
        CcxtCheck(
            "cancel order",
            "cancel_order",
            "privatePostV5OrderCancel",
            ratio=order_ratio,
            why=order_why,
        ),
        CcxtCheck(
            "fetch order", "fetch_order", "privateGetV5OrderRealtime", ratio=5, why=_READ_WHY
        ),
        CcxtCheck("balance", "fetch_balance", "privateGetV5AccountWalletBalance"),
        CcxtCheck(
            "my trades", "fetch_my_trades", "privateGetV5ExecutionList", ratio=5, why=_READ_WHY
        ),
    )


_SOURCES = (
    "https://bybit-exchange.github.io/docs/v5/rate-limit",
    "https://bybit-exchange.github.io/docs/v5/rate-limit/rules-for-pros/introduction",
)
PRESETS = (
    Preset(
        "bybit_spot",
        "bybit",
        "spot",
        _pools(20),
        _RULES,
        "bybit",
        sources=_SOURCES,
        read_on="2026-12-02",
        ccxt_id="bybit",
        ccxt_checks=_checks(1, ""),
    ),
    Preset(
        "bybit_futures",
        "bybit",
        "futures",
        _pools(10),
        _RULES,
        "bybit",
        sources=_SOURCES,
        read_on="2026-12-02",
        ccxt_id="bybit",
        ccxt_checks=_checks(
            0.5, "Bybit allows linear orders 10/s per UID; ccxt spaces every order at 20/s"
        ),
    ),
)
AUTO = {
    ("bybit", "spot"): "bybit_spot",
    ("bybit", "futures"): "bybit_futures",
    ("bybiteu", "spot"): "bybit_spot",
}
