"""The shapes every exchange module fills in, and how a call is priced against them.

An endpoint is identified the way ccxt's `fetch2(path, api, method, params, config)` sees it:
the api family (`api` joined with "/": "public", "fapiPublic", "public/spot"), the HTTP method
and the path ("ticker/bookTicker"). Rules are matched in order with shell patterns.

Default weights come from ccxt's own cost tables: ccxt encodes a weight `w` of a pool with
limit `L` per `T` seconds as `cost = w * k` with `k = 1000 * T / (rateLimit * L)`, so that its
throttle (`rateLimit * cost` ms between calls) stays under the limit. A rule converts back with
`weight = cost * weight_per_cost` where `weight_per_cost = 1 / k`. Binance spot: rateLimit 50 ms,
REQUEST_WEIGHT 6000/60 s ⇒ k = 0.2 and weight_per_cost = 5 (ccxt's own comment in binance.py:
"1 IP (api) => cost = 0.2"). Binance fapi/dapi encode cost = weight (k = 1), sapi k = 0.1.
Where the exchange sets a weight by a request parameter rather than by path (Hyperliquid's
`/info` `type`, KuCoin's order-book depth), a charge names the parameter (`PoolCharge.param`).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

POOL_KINDS = ("window", "decay")
"""`window`: at most `limit` in any `interval_s`. `decay`: a counter that may not pass `limit`
and falls by `limit / interval_s` per second (Kraken's private API counter)."""

CONNECTION_POOL = "WS_CONNECTIONS"
"""The pool of websocket connection attempts (per IP) in the presets that publish one."""

FREQTRADE_CALLS = (
    "markets",
    "tickers",
    "candles",
    "order book",
    "create order",
    "cancel order",
    "fetch order",
    "balance",
    "my trades",
)
"""The ccxt calls a trading bot makes; every preset says what each costs (`Preset.ccxt_checks`)."""


class Priority(IntEnum):
    """Lower runs first: orders and cancels go ahead of account reads and market data."""

    ORDER = 0
    ACCOUNT = 1
    MARKET_DATA = 2


_READ_WORDS = ("query", "open", "closed", "status", "detail", "history")
"""POSTs that only read orders (Kraken's QueryOrders, BitMart's v4/query/order) are account
reads, not orders."""


def classify_priority(api_family: str, method: str, path: str) -> Priority:
    """Order placement/cancel/amend first, other private calls next, market data last."""
    verb = method.upper()
    lowered = path.lower()
    family = api_family.lower()
    if verb in ("DELETE", "PUT") and "order" in lowered:
        return Priority.ORDER
    reads_only = "cancel" not in lowered and any(word in lowered for word in _READ_WORDS)
    if verb == "POST" and "order" in lowered and not reads_only:
        return Priority.ORDER
    if verb == "POST" and lowered == "exchange" and "private" in family:  # Hyperliquid actions
        return Priority.ORDER
    if "private" in family or family.startswith(("sapi", "papi")) or path.startswith("auth/"):
        return Priority.ACCOUNT
    return Priority.MARKET_DATA


@dataclass(frozen=True)
class PoolSpec:
    """One limit: at most `limit` weight in any `interval_s` seconds, per IP or per account.

    `per_endpoint` makes it a template: every endpoint gets its own pool named
    "<name>:<path>" (Gate.io, OKX and Bitfinex limit each endpoint separately). `kind` is how
    the exchange counts (see `POOL_KINDS`); both kinds allow `limit / interval_s` sustained.
    """

    name: str
    limit: float
    interval_s: float
    scope: str = "ip"
    per_endpoint: bool = False
    kind: str = "window"

    def __post_init__(self) -> None:
        if self.scope not in ("ip", "account"):
            raise ValueError(f"pool {self.name!r}: scope must be 'ip' or 'account'")
        if not (self.limit > 0 and self.interval_s > 0):
            raise ValueError(f"pool {self.name!r}: limit and interval must be positive")
        if self.kind not in POOL_KINDS:
            raise ValueError(f"pool {self.name!r}: kind must be one of {', '.join(POOL_KINDS)}")


@dataclass(frozen=True)
class PoolCharge:
    """How much one call costs in one pool: `cost * per_cost`, or `fixed` when given, or the
    weight `by_value` gives the value of the request parameter `param`."""

    pool: str
    per_cost: float = 1.0
    fixed: float | None = None
    param: str | None = None
    by_value: tuple[tuple[str, float], ...] = ()

    def weight(self, cost: float, params: Mapping[str, Any] | None = None) -> float:
        if self.param is not None and params is not None and self.param in params:
            wanted = str(params[self.param])
            for value, weight in self.by_value:
                if value == wanted:
                    return _clean(weight)
        return _clean(self.fixed if self.fixed is not None else cost * self.per_cost)


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
class CcxtCheck:
    """One call a bot makes, the ccxt endpoint that serves it, and how the preset's rate for it
    compares with ccxt's throttle (tests/test_weights_ccxt_costs.py holds ccxt to it).

    `endpoint` is ccxt's implicit method (camelCase) and `via` the ccxt method whose source calls
    it (default: the unified `method`). `ratio` is the calls per second the preset allows for
    this endpoint alone divided by what ccxt's throttle allows (`1000 / (rateLimit * cost)`);
    0 means ccxt does not throttle the endpoint at all (cost 0). Any ratio but 1 says `why`.
    """

    call: str
    method: str
    endpoint: str
    params: tuple[tuple[str, Any], ...] = ()
    ratio: float = 1.0
    why: str = ""
    via: str = ""


@dataclass(frozen=True)
class Preset:
    """Everything the ledger needs to know about one exchange's limits, and where they are from.

    `sources` are the pages the published figures were read on, `read_on` the date. The limits
    are the published defaults (lowest account tier); `limits_from_exchange` says whether the
    exchange's own figures replace them at start-up (not yet for any preset).
    """

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
    sources: tuple[str, ...] = ()
    read_on: str = ""
    ccxt_id: str = ""
    ccxt_checks: tuple[CcxtCheck, ...] = ()
    limits_from_exchange: bool = False

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

    @property
    def weight_params(self) -> tuple[str, ...]:
        """Request parameters some charge's weight depends on (part of a charge's identity)."""
        names = {c.param for r in self.rules for c in r.charges if c.param is not None}
        return tuple(sorted(names))


def _clean(value: float) -> float:
    """Undo float noise of ccxt's fractional costs (0.8 * 5 = 4.000000000000001)."""
    rounded = round(value, 6)
    nearest = round(rounded)
    return float(nearest) if math.isclose(rounded, nearest, abs_tol=1e-9) else rounded


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
    preset: Preset,
    api_family: str,
    method: str,
    path: str,
    cost: float,
    params: Mapping[str, Any] | None = None,
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
            first = replace(rule.charges[0], fixed=fixed, param=None, by_value=())
            charges = [first, *rule.charges[1:]]
    elif override is not None and override.get("pools"):
        charges = [replace(rule.charges[0], pool=pool) for pool in override["pools"]]
    weights = []
    for charge in charges:
        pool = charge.pool
        if _is_template(preset, pool):
            pool = f"{pool}:{path}"
        weights.append((pool, charge.weight(cost, params)))
    pool_names = [pool for pool, _ in weights]
    endpoint_pools = [p for p in pool_names if ":" in p] or pool_names[:1]
    headers: list[tuple[str, float | None, str]] = []
    for kind, interval, pool in rule.header_pools:
        targets = endpoint_pools if pool == "*" else [pool]
        headers.extend((kind, _window_of(preset, target, interval), target) for target in targets)
    return tuple(weights), tuple(headers)


def sustained_rate(preset: Preset, weights: Iterable[tuple[str, float]]) -> float:
    """Calls per second one endpoint alone may make under `preset`: the tightest of its pools
    (`limit / interval / weight`); infinite when it draws from none."""
    rates = [
        preset.pool(pool).limit / preset.pool(pool).interval_s / weight
        for pool, weight in weights
        if weight > 0
    ]
    return min(rates, default=math.inf)


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
