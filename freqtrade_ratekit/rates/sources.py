"""Choosing the cheapest ticker source from a ccxt exchange's own cost tables.

Kept apart from the refresher because it is pure (no threads, no I/O, no markets needed):
`choose_ticker_source()` reads the instance's `api` describe tree (`cost`, `noSymbol`,
`byLimit`, through the exchange's `calculate_rate_limiter_cost`) and its `has` flags to pick
per-pair `fetch_ticker`, one `fetch_tickers` or `fetch_bids_asks` (+ `fetch_last_prices`).

Costs are in ccxt cost units (1 unit = one `rateLimit` interval of ccxt's throttle). On Binance
spot 1 unit = 5 request weight: ccxt 4.5.90 binance.py throttles at rateLimit 50 ms (1200
units/min) for Binance's published REQUEST_WEIGHT limit of 6000/min per IP
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits, read 2026-11-21).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)

MarketKind = Literal["spot", "linear", "inverse"]
SourceName = Literal[
    "per_pair", "tickers_all", "tickers_listed", "bids_asks_all", "bids_asks_listed"
]


@dataclass(frozen=True)
class _Endpoint:
    """Where a ccxt unified method sends its request, read from the exchange's ccxt source."""

    family: tuple[str, ...]
    path: str
    # Binance futures book tickers send `symbol` (cheaper) instead of `symbols` for one symbol.
    single_symbol_when_one: bool = False


# Unified method -> endpoint, per exchange class (matched along the MRO, so `binanceus`,
# `gateio` use their parent's map with their own cost tables) and market kind ("*" = any).
# Read from ccxt 4.5.90 (binance.py, okx.py, gate.py, bitfinex.py: fetch_ticker,
# fetch_tickers, fetch_bids_asks, fetch_last_prices) on 2026-11-21. The costs themselves are
# never copied here: they are looked up in the instance's `api` tree at call time.
_ENDPOINTS: dict[str, dict[str, dict[str, _Endpoint]]] = {
    "binance": {
        "spot": {
            "fetch_ticker": _Endpoint(("public",), "ticker/24hr"),
            "fetch_tickers": _Endpoint(("public",), "ticker/24hr"),
            "fetch_bids_asks": _Endpoint(("public",), "ticker/bookTicker"),
            "fetch_last_prices": _Endpoint(("public",), "ticker/price"),
        },
        "linear": {
            "fetch_ticker": _Endpoint(("fapiPublic",), "ticker/24hr"),
            "fetch_tickers": _Endpoint(("fapiPublic",), "ticker/24hr"),
            "fetch_bids_asks": _Endpoint(("fapiPublic",), "ticker/bookTicker", True),
            "fetch_last_prices": _Endpoint(("fapiPublicV2",), "ticker/price"),
        },
        "inverse": {
            "fetch_ticker": _Endpoint(("dapiPublic",), "ticker/24hr"),
            "fetch_tickers": _Endpoint(("dapiPublic",), "ticker/24hr"),
            "fetch_bids_asks": _Endpoint(("dapiPublic",), "ticker/bookTicker", True),
            "fetch_last_prices": _Endpoint(("dapiPublic",), "ticker/price"),
        },
    },
    "okx": {
        "*": {
            "fetch_ticker": _Endpoint(("public",), "market/ticker"),
            "fetch_tickers": _Endpoint(("public",), "market/tickers"),
        },
    },
    "gate": {
        "spot": {
            "fetch_ticker": _Endpoint(("public", "spot"), "tickers"),
            "fetch_tickers": _Endpoint(("public", "spot"), "tickers"),
        },
        "linear": {
            "fetch_ticker": _Endpoint(("public", "futures"), "{settle}/tickers"),
            "fetch_tickers": _Endpoint(("public", "futures"), "{settle}/tickers"),
        },
        "inverse": {
            "fetch_ticker": _Endpoint(("public", "futures"), "{settle}/tickers"),
            "fetch_tickers": _Endpoint(("public", "futures"), "{settle}/tickers"),
        },
    },
    "bitfinex": {
        "*": {
            "fetch_ticker": _Endpoint(("public",), "ticker/{symbol}"),
            "fetch_tickers": _Endpoint(("public",), "tickers"),
        },
    },
}

# Lower wins when cost and request count are equal: exact per-pair answers first; "all
# symbols" before "listed symbols", because one delisted symbol in a `symbols` list makes some
# exchanges (Binance: -1121 Invalid symbol) reject the whole batch, while an "all" answer just
# lacks that pair.
_PREFERENCE: dict[str, int] = {
    "per_pair": 0,
    "bids_asks_all": 1,
    "tickers_all": 2,
    "bids_asks_listed": 3,
    "tickers_listed": 4,
}


@dataclass(frozen=True)
class PlannedCall:
    """One ccxt call: `method(symbols)`; `symbols` None means every symbol of the market type."""

    method: str
    symbols: tuple[str, ...] | None
    cost: float


@dataclass(frozen=True)
class TickerSource:
    """The chosen way to get tickers for a set of pairs, and what the alternatives would cost."""

    name: SourceName
    calls: tuple[PlannedCall, ...]
    pairs: tuple[str, ...]
    alternatives: tuple[tuple[str, float], ...] = ()

    @property
    def cost(self) -> float:
        return sum(call.cost for call in self.calls)

    @property
    def method(self) -> str:
        """Label for figures, e.g. `fetch_bids_asks+fetch_last_prices` or `fetch_ticker`."""
        return "+".join(dict.fromkeys(call.method for call in self.calls)) or "none"


def _find_endpoints(api: Any, kind: MarketKind) -> dict[str, _Endpoint] | None:
    for cls in type(api).__mro__:
        table = _ENDPOINTS.get(cls.__name__)
        if table is not None:
            return table.get(kind) or table.get("*")
    return None


def _endpoint_config(api: Any, endpoint: _Endpoint) -> dict[str, Any]:
    node: Any = api.api
    for part in endpoint.family:
        node = node[part]
    config = node["get"][endpoint.path]
    return config if isinstance(config, dict) else {"cost": config}


def _market_kind(api: Any, pairs: Sequence[str]) -> MarketKind:
    """spot / linear / inverse, from the loaded markets when there are any, else the options."""
    markets = getattr(api, "markets", None) or {}
    for pair in pairs:
        market = markets.get(pair)
        if market:
            if market.get("spot"):
                return "spot"
            return "inverse" if market.get("inverse") else "linear"
    options = getattr(api, "options", None) or {}
    if options.get("defaultType", "spot") in ("spot", "margin"):
        return "spot"
    return "inverse" if options.get("defaultSubType") == "inverse" else "linear"


CallCost = Callable[[str, Sequence[str] | None], float | None]


def ccxt_call_cost(
    api: Any, method: str, symbols: Sequence[str] | None, *, market_kind: MarketKind = "spot"
) -> float:
    """ccxt cost units of one `method(symbols)` request, from the instance's own cost table.

    1 (ccxt's own default cost) for exchanges or methods not in `_ENDPOINTS`.
    """
    return _call_cost(api, _find_endpoints(api, market_kind), method, symbols)


def _call_cost(
    api: Any, endpoints: dict[str, _Endpoint] | None, method: str, symbols: Sequence[str] | None
) -> float:
    endpoint = endpoints.get(method) if endpoints else None
    if endpoint is None:
        return 1.0
    try:
        config = _endpoint_config(api, endpoint)
    except (KeyError, TypeError):
        logger.debug("ratekit: no cost entry for %s %s, assuming 1", api.id, endpoint.path)
        return 1.0
    params: dict[str, Any]
    if method == "fetch_ticker" or (
        symbols is not None and len(symbols) == 1 and endpoint.single_symbol_when_one
    ):
        params = {"symbol": "X"}
    elif symbols is None:
        params = {}
    else:
        params = {"symbols": ",".join(symbols)}
    return float(
        api.calculate_rate_limiter_cost(list(endpoint.family), "GET", endpoint.path, params, config)
    )


def choose_ticker_source(
    api: Any,
    pairs: Sequence[str],
    *,
    need_last: bool,
    tickers_have_bid_ask: bool = True,
    has: Mapping[str, Any] | None = None,
    market_kind: MarketKind | None = None,
    call_cost: CallCost | None = None,
) -> TickerSource:
    """The cheapest way to get bid/ask (and `last` when `need_last`) for `pairs`.

    need_last: a ticker-priced side has `price_last_balance` != 0 (see `pricing_needs`); book
        tickers carry no last price, so `fetch_bids_asks` then needs `fetch_last_prices` too.
    tickers_have_bid_ask: Freqtrade's `_ft_has["tickers_have_bid_ask"]`; when False the batch
        `fetch_tickers` answer is useless for pricing.
    has: the exchange's capability flags (default `api.has`); only True counts (an "emulated"
        batch call is per-pair calls in disguise).
    call_cost: `(method, symbols) -> cost | None`, an override (e.g. a weights preset that
        knows Binance charges `symbols` lists by their length); None falls back to ccxt's table.
    Ties on cost go to fewer requests, then to `_PREFERENCE`.
    """
    wanted = tuple(dict.fromkeys(pairs))
    if not wanted:
        return TickerSource(name="per_pair", calls=(), pairs=())
    flags = has if has is not None else api.has
    kind = market_kind or _market_kind(api, wanted)
    endpoints = _find_endpoints(api, kind)

    def cost(method: str, symbols: Sequence[str] | None) -> float:
        override = call_cost(method, symbols) if call_cost is not None else None
        return override if override is not None else _call_cost(api, endpoints, method, symbols)

    single = cost("fetch_ticker", None)
    per_pair: tuple[SourceName, tuple[PlannedCall, ...]] = (
        "per_pair",
        tuple(PlannedCall("fetch_ticker", (pair,), single) for pair in wanted),
    )
    options: list[tuple[SourceName, tuple[PlannedCall, ...]]] = []
    if flags.get("fetchTicker") is True:
        options.append(per_pair)
    if flags.get("fetchTickers") is True and tickers_have_bid_ask:
        options.append(
            ("tickers_all", (PlannedCall("fetch_tickers", None, cost("fetch_tickers", None)),))
        )
        options.append(
            (
                "tickers_listed",
                (PlannedCall("fetch_tickers", wanted, cost("fetch_tickers", wanted)),),
            )
        )
    if flags.get("fetchBidsAsks") is True and (
        not need_last or flags.get("fetchLastPrices") is True
    ):
        last: tuple[PlannedCall, ...] = ()
        if need_last:
            last = (PlannedCall("fetch_last_prices", None, cost("fetch_last_prices", None)),)
        all_books = PlannedCall("fetch_bids_asks", None, cost("fetch_bids_asks", None))
        listed = PlannedCall("fetch_bids_asks", wanted, cost("fetch_bids_asks", wanted))
        options.append(("bids_asks_all", (all_books, *last)))
        options.append(("bids_asks_listed", (listed, *last)))

    if not options:
        options.append(per_pair)  # nothing batched is usable: per-pair is Freqtrade's own way

    def rank(option: tuple[SourceName, tuple[PlannedCall, ...]]) -> tuple[float, int, int]:
        name, calls = option
        return (round(sum(c.cost for c in calls), 9), len(calls), _PREFERENCE[name])

    best_name, best_calls = min(options, key=rank)
    return TickerSource(
        name=best_name,
        calls=best_calls,
        pairs=wanted,
        alternatives=tuple((name, sum(c.cost for c in calls)) for name, calls in options),
    )


def merge_tickers(
    bids_asks: Mapping[str, Mapping[str, Any]], last_prices: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """ccxt-shaped tickers (bid, ask, last, ...) from book tickers plus last prices.

    Only symbols present in both answers are returned: a ticker without its last price would
    give a different rate than `fetch_ticker` under `price_last_balance` != 0.
    """
    merged: dict[str, dict[str, Any]] = {}
    for symbol, book in bids_asks.items():
        last_entry = last_prices.get(symbol)
        if not isinstance(book, Mapping) or not isinstance(last_entry, Mapping):
            continue
        price = last_entry.get("price")
        if price is None:
            continue
        ticker = dict(book)
        ticker["symbol"] = symbol
        ticker["last"] = price
        ticker["close"] = price
        merged[symbol] = ticker
    return merged
