"""Exchange presets: named pools with their published limits, and which pools an endpoint uses.

An endpoint is identified the way ccxt's `fetch2(path, api, method, params, config)` sees it:
the api family (`api` joined with "/": "public", "fapiPublic", "public/spot"), the HTTP method
and the path ("ticker/bookTicker"). Rules are matched in order with shell patterns.

Default weights come from ccxt's own cost tables: ccxt encodes a weight `w` of a pool with
limit `L` per `T` seconds as `cost = w * k` with `k = 1000 * T / (rateLimit * L)`, so that its
throttle (`rateLimit * cost` ms between calls) stays under the limit. A rule converts back with
`weight = cost * weight_per_cost` where `weight_per_cost = 1 / k`. Binance spot: rateLimit 50 ms,
REQUEST_WEIGHT 6000/60 s ⇒ k = 0.2 and weight_per_cost = 5 (ccxt's own comment in binance.py:
"1 IP (api) => cost = 0.2"). Binance fapi/dapi encode cost = weight (k = 1), sapi k = 0.1.

Every published number carries its source and the date it was read.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any


class Priority(IntEnum):
    """Lower runs first: orders and cancels go ahead of account reads and market data."""

    ORDER = 0
    ACCOUNT = 1
    MARKET_DATA = 2


def classify_priority(api_family: str, method: str, path: str) -> Priority:
    """Order placement/cancel/amend first, other private calls next, market data last."""
    verb = method.upper()
    if verb in ("POST", "DELETE", "PUT") and "order" in path.lower():
        return Priority.ORDER
    family = api_family.lower()
    if "private" in family or family.startswith(("sapi", "papi")) or path.startswith("auth/"):
        return Priority.ACCOUNT
    return Priority.MARKET_DATA


@dataclass(frozen=True)
class PoolSpec:
    """One limit: at most `limit` weight in any `interval_s` seconds, per IP or per account.

    `per_endpoint` makes it a template: every endpoint gets its own pool named
    "<name>:<path>" (Gate.io, OKX and Bitfinex limit each endpoint separately).
    """

    name: str
    limit: float
    interval_s: float
    scope: str = "ip"
    per_endpoint: bool = False

    def __post_init__(self) -> None:
        if self.scope not in ("ip", "account"):
            raise ValueError(f"pool {self.name!r}: scope must be 'ip' or 'account'")
        if not (self.limit > 0 and self.interval_s > 0):
            raise ValueError(f"pool {self.name!r}: limit and interval must be positive")


@dataclass(frozen=True)
class PoolCharge:
    """How much one call costs in one pool: `cost * per_cost`, or `fixed` when given."""

    pool: str
    per_cost: float = 1.0
    fixed: float | None = None

    def weight(self, cost: float) -> float:
        value = self.fixed if self.fixed is not None else cost * self.per_cost
        return _clean(value)


@dataclass(frozen=True)
class EndpointRule:
    """Endpoints matched by (family, method, path) patterns and the pools they draw from.

    `header_pools` maps a usage header (kind, interval seconds or None) to the pool it reports.
    """

    api: str
    method: str
    path: str
    charges: tuple[PoolCharge, ...]
    header_pools: tuple[tuple[str, float | None, str], ...] = ()

    def matches(self, api_family: str, method: str, path: str) -> bool:
        return (
            fnmatch.fnmatchcase(api_family, self.api)
            and fnmatch.fnmatchcase(method.upper(), self.method)
            and fnmatch.fnmatchcase(path, self.path)
        )


@dataclass(frozen=True)
class Preset:
    """Everything the ledger needs to know about one exchange's limits."""

    name: str
    exchange_id: str
    trading_mode: str
    pools: tuple[PoolSpec, ...]
    rules: tuple[EndpointRule, ...]
    header_format: str
    default_retry_after_s: float = 5.0
    fallback: bool = False
    message: str = ""
    endpoint_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def pool(self, name: str) -> PoolSpec:
        """The concrete pool for `name` ("NAME" or "TEMPLATE:path")."""
        for spec in self.pools:
            if spec.name == name:
                return spec
        template, _, endpoint = name.partition(":")
        for spec in self.pools:
            if spec.per_endpoint and spec.name == template and endpoint:
                return replace(spec, name=name, per_endpoint=False)
        raise KeyError(name)

    def rule_for(self, api_family: str, method: str, path: str) -> EndpointRule:
        for rule in self.rules:
            if rule.matches(api_family, method, path):
                return rule
        raise LookupError(f"{self.name}: no rule for {api_family} {method} {path}")


def _clean(value: float) -> float:
    """Undo float noise of ccxt's fractional costs (0.8 * 5 = 4.000000000000001)."""
    rounded = round(value, 6)
    nearest = round(rounded)
    return float(nearest) if math.isclose(rounded, nearest, abs_tol=1e-9) else rounded


# --------------------------------------------------------------------------- Binance
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

# --------------------------------------------------------------------------- OKX
# https://www.okx.com/docs-v5/en/#overview-rate-limits (read 2026-11-21 through its mirror
# https://raw.githubusercontent.com/api-evangelist/okx/refs/heads/main/rate-limits/okx-rate-limits.yml
# and https://docs.atwallets.com/rcxt/okxtr): each endpoint has its own limit; public endpoints
# per IP, private ones per User ID; market tickers/books/candles 20 requests / 2 s
# (books and candles are 40 / 2 s in the endpoint reference); place/cancel order 60 / 2 s per
# User ID + instrument; account balance 10 / 2 s. Over the limit: HTTP 429, code 50011.
# Sub-account order limit 1000 / 2 s (https://aws.okx.com/help/fill-ratio-sub-account-rate-limit,
# updated 2024-04-04, read 2026-11-21). OKX sends no usage headers on REST.
_OKX_POOLS = (
    PoolSpec("OKX_PUBLIC", 20, 2, "ip", per_endpoint=True),
    PoolSpec("OKX_PUBLIC_40", 40, 2, "ip", per_endpoint=True),
    PoolSpec("OKX_PRIVATE", 20, 2, "account", per_endpoint=True),
    PoolSpec("OKX_ORDER", 60, 2, "account", per_endpoint=True),
    PoolSpec("OKX_BALANCE", 10, 2, "account", per_endpoint=True),
    PoolSpec("OKX_SUBACCOUNT_ORDERS", 1000, 2, "account"),
)
_OKX_RULES = (
    EndpointRule("public", "GET", "market/books", (PoolCharge("OKX_PUBLIC_40", fixed=1),)),
    EndpointRule("public", "GET", "market/candles", (PoolCharge("OKX_PUBLIC_40", fixed=1),)),
    EndpointRule(
        "private",
        "POST",
        "trade/*order*",
        (PoolCharge("OKX_ORDER", fixed=1), PoolCharge("OKX_SUBACCOUNT_ORDERS", fixed=1)),
    ),
    EndpointRule("private", "GET", "trade/orders-pending", (PoolCharge("OKX_ORDER", fixed=1),)),
    EndpointRule("private", "GET", "account/balance", (PoolCharge("OKX_BALANCE", fixed=1),)),
    EndpointRule("private*", "*", "*", (PoolCharge("OKX_PRIVATE", fixed=1),)),
    EndpointRule("*", "*", "*", (PoolCharge("OKX_PUBLIC", fixed=1),)),
)

# --------------------------------------------------------------------------- Gate.io
# https://www.gate.com/docs/developers/apiv4/en/#frequency-limit-rule (read 2026-11-21 via the
# mirrored API v4 doc text and https://bquan.live/th/announcements/article/33995, the
# 2024-01-14 announcement in force since 2024-01-22): public endpoints 200 requests / 10 s per
# endpoint per IP; private endpoints 200 / 10 s per endpoint per UID; spot order placement
# 10 / s per UID and market; spot cancels 200 / s per UID. Every response carries
# X-Gate-RateLimit-Requests-Remain, X-Gate-RateLimit-Limit and X-Gate-RateLimit-Reset-Timestamp.
_GATE_POOLS = (
    PoolSpec("GATE_PUBLIC", 200, 10, "ip", per_endpoint=True),
    PoolSpec("GATE_PRIVATE", 200, 10, "account", per_endpoint=True),
    PoolSpec("GATE_SPOT_ORDER", 10, 1, "account", per_endpoint=True),
    PoolSpec("GATE_SPOT_CANCEL", 200, 1, "account", per_endpoint=True),
)
_GATE_ENDPOINT_HEADERS = (("requests", None, "*"),)
_GATE_RULES = (
    EndpointRule(
        "private/spot",
        "POST",
        "*orders",
        (PoolCharge("GATE_SPOT_ORDER", fixed=1),),
        _GATE_ENDPOINT_HEADERS,
    ),
    EndpointRule(
        "private/spot",
        "DELETE",
        "*order*",
        (PoolCharge("GATE_SPOT_CANCEL", fixed=1),),
        _GATE_ENDPOINT_HEADERS,
    ),
    EndpointRule(
        "private*", "*", "*", (PoolCharge("GATE_PRIVATE", fixed=1),), _GATE_ENDPOINT_HEADERS
    ),
    EndpointRule("*", "*", "*", (PoolCharge("GATE_PUBLIC", fixed=1),), _GATE_ENDPOINT_HEADERS),
)

# --------------------------------------------------------------------------- Bitfinex
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
)
_BITFINEX_RULES = (
    EndpointRule("public", "GET", "tickers", (PoolCharge("BITFINEX_ENDPOINT_30", fixed=1),)),
    EndpointRule("public", "GET", "candles/*", (PoolCharge("BITFINEX_ENDPOINT_30", fixed=1),)),
    EndpointRule("public", "GET", "trades/*", (PoolCharge("BITFINEX_ENDPOINT_30", fixed=1),)),
    EndpointRule("*", "*", "*", (PoolCharge("BITFINEX_ENDPOINT", fixed=1),)),
)

_PRESETS: dict[str, Preset] = {
    "binance_spot": Preset(
        "binance_spot", "binance", "spot", _BINANCE_POOLS, _BINANCE_RULES, "binance"
    ),
    "binance_futures": Preset(
        "binance_futures", "binance", "futures", _BINANCE_POOLS, _BINANCE_RULES, "binance"
    ),
    "okx": Preset("okx", "okx", "spot", _OKX_POOLS, _OKX_RULES, "okx"),
    "gate": Preset("gate", "gate", "spot", _GATE_POOLS, _GATE_RULES, "gate"),
    "bitfinex": Preset(
        "bitfinex",
        "bitfinex",
        "spot",
        _BITFINEX_POOLS,
        _BITFINEX_RULES,
        "bitfinex",
        default_retry_after_s=60.0,
    ),
}
_AUTO: dict[tuple[str, str], str] = {
    ("binance", "spot"): "binance_spot",
    ("binance", "margin"): "binance_spot",
    ("binance", "futures"): "binance_futures",
    ("binanceusdm", "futures"): "binance_futures",
    ("okx", "spot"): "okx",
    ("okx", "futures"): "okx",
    ("gate", "spot"): "gate",
    ("gateio", "spot"): "gate",
    ("gate", "futures"): "gate",
    ("gateio", "futures"): "gate",
    ("bitfinex", "spot"): "bitfinex",
}


def preset_names() -> list[str]:
    return sorted(_PRESETS)


def preset_for(
    exchange_id: str,
    *,
    trading_mode: str = "spot",
    name: str = "auto",
    rate_limit_ms: float | None = None,
    pools: Mapping[str, Mapping[str, Any]] | None = None,
    endpoints: Mapping[str, Mapping[str, Any]] | None = None,
) -> Preset:
    """The preset for an exchange, with config overrides applied.

    Without a preset for the exchange, falls back to one pool modelled on ccxt's `rateLimit`
    (`rate_limit_ms`, or read from the ccxt class) and sets `fallback`/`message` for the log.
    """
    exchange = exchange_id.lower()
    if name != "auto":
        if name not in _PRESETS:
            raise ValueError(f"unknown weights preset {name!r}; known: {', '.join(preset_names())}")
        preset = _PRESETS[name]
    elif (exchange, trading_mode) in _AUTO:
        preset = _PRESETS[_AUTO[(exchange, trading_mode)]]
    elif (exchange, "spot") in _AUTO:
        preset = _PRESETS[_AUTO[(exchange, "spot")]]
    else:
        preset = fallback_preset(exchange, trading_mode, rate_limit_ms)
    preset = replace(preset, exchange_id=exchange, trading_mode=trading_mode)
    return apply_overrides(preset, pools=pools or {}, endpoints=endpoints or {})


def fallback_preset(exchange_id: str, trading_mode: str, rate_limit_ms: float | None) -> Preset:
    """One pool of 1000 / rateLimit ccxt cost units per second: what ccxt itself allows."""
    if rate_limit_ms is None:
        rate_limit_ms = _ccxt_rate_limit(exchange_id)
    per_second = 1000.0 / rate_limit_ms
    limit, interval = (per_second, 1.0) if per_second >= 1 else (1.0, rate_limit_ms / 1000.0)
    pool = PoolSpec("CCXT_RATE_LIMIT", _clean(limit), _clean(interval), "ip")
    return Preset(
        name="ccxt_rate_limit",
        exchange_id=exchange_id,
        trading_mode=trading_mode,
        pools=(pool,),
        rules=(EndpointRule("*", "*", "*", (PoolCharge(pool.name, per_cost=1),)),),
        header_format="ratelimit",
        fallback=True,
        message=(
            f"ratekit has no weight preset for {exchange_id!r}: using ccxt's rateLimit "
            f"({rate_limit_ms:g} ms => {per_second:g} cost units/s) as the only pool"
        ),
    )


def _ccxt_rate_limit(exchange_id: str) -> float:
    import ccxt

    exchange_class = getattr(ccxt, exchange_id, None)
    if exchange_class is None:
        return 1000.0
    return float(exchange_class().rateLimit)


def apply_overrides(
    preset: Preset,
    *,
    pools: Mapping[str, Mapping[str, Any]],
    endpoints: Mapping[str, Mapping[str, Any]],
) -> Preset:
    """`weights.pools` replaces a pool's limit/interval/scope (or adds a pool);
    `weights.endpoints` fixes an endpoint's weight and optionally its pools."""
    specs = {spec.name: spec for spec in preset.pools}
    for name, fields in pools.items():
        base = specs.get(name, PoolSpec(name, 1, 1))
        specs[name] = replace(
            base,
            limit=float(fields.get("limit", base.limit)),
            interval_s=float(fields.get("interval", base.interval_s)),
            scope=str(fields.get("scope", base.scope)),
        )
    for key, fields in endpoints.items():
        for pool in fields.get("pools", ()):
            if pool.split(":", 1)[0] not in specs:
                raise ValueError(f"weights.endpoints[{key!r}] names an unknown pool {pool!r}")
    if not pools and not endpoints:
        return preset
    return replace(preset, pools=tuple(specs.values()), endpoint_overrides=dict(endpoints))


def endpoint_key(api_family: str, method: str, path: str) -> str:
    return f"{api_family} {method.upper()} {path}"


def charges_for(
    preset: Preset, api_family: str, method: str, path: str, cost: float
) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float | None, str], ...]]:
    """(pool name, weight) per pool and the header map of one call, overrides applied."""
    rule = preset.rule_for(api_family, method, path)
    charges: Iterable[PoolCharge] = rule.charges
    override = preset.endpoint_overrides.get(
        endpoint_key(api_family, method, path)
    ) or preset.endpoint_overrides.get(path)
    if override is not None and "weight" in override:
        fixed = float(override["weight"])
        if override.get("pools"):
            charges = [PoolCharge(pool, fixed=fixed) for pool in override["pools"]]
        else:
            charges = [replace(rule.charges[0], fixed=fixed), *rule.charges[1:]]
    elif override is not None and override.get("pools"):
        charges = [replace(rule.charges[0], pool=pool) for pool in override["pools"]]
    weights = []
    for charge in charges:
        pool = charge.pool
        if _is_template(preset, pool):
            pool = f"{pool}:{path}"
        weights.append((pool, charge.weight(cost)))
    pool_names = [pool for pool, _ in weights]
    endpoint_pools = [p for p in pool_names if ":" in p] or pool_names[:1]
    headers: list[tuple[str, float | None, str]] = []
    for kind, interval, pool in rule.header_pools:
        targets = endpoint_pools if pool == "*" else [pool]
        headers.extend((kind, _window_of(preset, target, interval), target) for target in targets)
    return tuple(weights), tuple(headers)


def _window_of(preset: Preset, pool: str, published: float | None) -> float | None:
    """The window a usage header names is the pool's own (`X-MBX-USED-WEIGHT-10S` for a pool
    overridden to 10 s), so header sync keeps working with `weights.pools` overrides."""
    if published is None:
        return None
    try:
        return preset.pool(pool).interval_s
    except KeyError:
        return published


def _is_template(preset: Preset, name: str) -> bool:
    return any(spec.per_endpoint and spec.name == name for spec in preset.pools)
