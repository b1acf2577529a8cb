"""BitMart (id bitmart; spot). ccxt 4.5.90 has no bitmart class: a bot cannot reach BitMart
through the installed ccxt, and no cost table can be checked (tests say so)."""

from __future__ import annotations

from freqtrade_ratekit.weights.presets._model import EndpointRule, PoolCharge, PoolSpec, Preset

# https://developer.bitmart.com/en/limit/ (read 2026-12-02): with an API key the limit is per
# user, without one per IP; "There is a separate description on each interface. If there is
# not, the rate limit is 10 times per second in general"; over it, HTTP 429. Every response
# carries X-BM-RateLimit-Remaining (in the page's example: the requests already made),
# X-BM-RateLimit-Limit and X-BM-RateLimit-Reset (the window in seconds). Funding account:
# /account/v1/wallet 5 times/s per key.
# Spot figures: https://apis.io/rate-limits/bitmart/bitmart-rate-limits/ (a profile of
# BitMart's docs, read 2026-12-02): market data 8 to 15 requests / 2 s per IP and endpoint;
# submit, batch and cancel order 40 / 2 s per UID; order queries 50 / 2 s per key.
# Market data uses the lowest of that range (8 / 2 s) for every endpoint; the per-endpoint
# figures were not read.
_POOLS = (
    PoolSpec("BITMART_MARKET", 8, 2, "ip", per_endpoint=True),
    PoolSpec("BITMART_ORDER", 40, 2, "account", per_endpoint=True),
    PoolSpec("BITMART_QUERY", 50, 2, "account", per_endpoint=True),
    PoolSpec("BITMART_WALLET", 5, 1, "account", per_endpoint=True),
    PoolSpec("BITMART_DEFAULT", 10, 1, "account", per_endpoint=True),
)
_HEADERS = (("requests", None, "*"),)


def _rule(api: str, method: str, path: str, pool: str) -> EndpointRule:
    return EndpointRule(api, method, path, (PoolCharge(pool, fixed=1),), _HEADERS)


_RULES = (
    _rule("private", "POST", "spot/v*/submit_order", "BITMART_ORDER"),
    _rule("private", "POST", "spot/v*/batch_orders", "BITMART_ORDER"),
    _rule("private", "POST", "spot/v*/cancel_order*", "BITMART_ORDER"),
    _rule("private", "POST", "spot/v4/query/*", "BITMART_QUERY"),
    _rule("private", "GET", "*wallet", "BITMART_WALLET"),
    _rule("private", "*", "*", "BITMART_DEFAULT"),
    _rule("*", "*", "*", "BITMART_MARKET"),
)
PRESETS = (
    Preset(
        "bitmart",
        "bitmart",
        "spot",
        _POOLS,
        _RULES,
        "bitmart",
        sources=(
            "https://developer.bitmart.com/en/limit/",
            "https://apis.io/rate-limits/bitmart/bitmart-rate-limits/",
        ),
        read_on="2026-12-02",
        ccxt_id="bitmart",
    ),
)
AUTO = {("bitmart", "spot"): "bitmart"}
