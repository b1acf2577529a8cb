"""A Binance-compatible spot REST emulator that the unmodified ccxt ``binance`` class and an
unmodified Freqtrade dry-run bot can talk to.

Request weights (Binance spot REST "Market Data endpoints" and "General endpoints",
https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints, read
2026-11-21; the depth table was checked on the same site's market-data-requests page, the
other single values agree with ccxt 4.5.90's ``binance.api.public`` costs, cost = 0.2 x weight):
  ping 1, time 1, exchangeInfo 20, depth by limit (1-100: 5, 101-500: 25, 501-1000: 50,
  1001-5000: 250), trades 25, klines/uiKlines 2, avgPrice 2,
  ticker/24hr symbol 2, symbols 1-20: 2, 21-100: 40, 101+: 80, none 80,
  ticker/price and ticker/bookTicker symbol 2, symbols or none 4.
Order endpoints (minimal: dry-run bots never send them): new order 1 (+1 ORDERS), query order 4,
cancel 1, openOrders 6 with symbol / 80 without, account 20, myTrades 20.
Futures (fapi/dapi) exchangeInfo is served empty: ccxt's binance asks for linear and inverse
markets by default, and those hosts have their own limits, so they are not charged to the spot
REQUEST_WEIGHT window.

The same app serves Binance's websocket market streams (``/ws``, ``/stream``; see
``freqtrade_ratekit.sim.streams``), built from the same rows as the REST answers.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from freqtrade_ratekit.redact import shorten
from freqtrade_ratekit.sim.limits import (
    BanPolicy,
    CountWindow,
    WeightLimiter,
    interval_name,
    interval_suffix,
)
from freqtrade_ratekit.sim.market import (
    MAX_PRICE,
    TIMEFRAME_SECONDS,
    Market,
    MarketUniverse,
    decimal_str,
)
from freqtrade_ratekit.sim.server import (
    COMMON_BOUNDS,
    COMMON_DEFAULTS,
    BaseEmulator,
    RunningEmulator,
    SettingsError,
    json_response,
    malformed_response,
)
from freqtrade_ratekit.sim.streams import WS_BOUNDS, WS_DEFAULTS, StreamHub, stream_url

EXCHANGE_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "weight_limit": 6000,  # REQUEST_WEIGHT per window per IP
    "window_s": 60,
    "enforce_limits": True,  # false: count and report, never answer 429/418
    "ban_strikes": 3,  # requests sent inside a Retry-After before a 418 ban
    "ban_s": 120.0,  # first ban; doubles for each further ban
    "ban_max_s": 259200.0,
    "orders_limit_10s": 100,
    "orders_limit_1d": 200000,
    # Binance symbol -> pinned mid price (see MarketUniverse.pin); a PUT replaces the mapping
    # whole, a symbol left out (or given null) follows the seed's path again.
    "pinned_prices": {},
    **WS_DEFAULTS,  # the websocket streams' limits and faults (freqtrade_ratekit.sim.streams)
}

EXCHANGE_BOUNDS: dict[str, tuple[float, float]] = {
    **COMMON_BOUNDS,
    "weight_limit": (0, 1_000_000_000),
    "window_s": (1, 86_400),
    "ban_strikes": (0, 1_000_000),
    "ban_s": (0.0, 30 * 86_400.0),
    "ban_max_s": (0.0, 30 * 86_400.0),
    "orders_limit_10s": (0, 1_000_000_000),
    "orders_limit_1d": (0, 1_000_000_000),
    **WS_BOUNDS,
}

ORDER_WINDOWS_S = (10.0, 86400.0)


class BinanceError(Exception):
    """An error Binance answers with ``{"code": ..., "msg": ...}`` and HTTP 400."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def missing(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def parse_symbols(params: Mapping[str, str]) -> list[str] | None:
    """``symbols=["BTCUSDT","ETHUSDT"]`` (Binance's JSON array in a query string)."""
    raw = params.get("symbols")
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.")
    return value


def ticker_24hr_weight(params: Mapping[str, str]) -> int:
    if "symbol" in params:
        return 2
    try:
        symbols = parse_symbols(params)
    except BinanceError:
        return 2
    if symbols is None:
        return 80
    if len(symbols) <= 20:
        return 2
    return 40 if len(symbols) <= 100 else 80


def single_or_all_weight(params: Mapping[str, str]) -> int:
    return 2 if "symbol" in params else 4


def positive_param(params: Mapping[str, str], name: str) -> float:
    """A decimal parameter that must be a finite number > 0 (an order's ``quantity``)."""
    raw = params.get(name)
    if not raw:
        raise missing(name)
    try:
        value = float(raw)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None
    if not math.isfinite(value) or value <= 0:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
    return value


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None


@dataclass(frozen=True)
class Route:
    handler: Callable[[Mapping[str, str], float], Any]
    weight: Callable[[Mapping[str, str]], int]
    spot_pool: bool = True  # charged to the spot REQUEST_WEIGHT window
    is_order: bool = False  # also counts against the ORDERS windows


def fixed(weight: int) -> Callable[[Mapping[str, str]], int]:
    return lambda _params: weight


class ExchangeEmulator(BaseEmulator):
    """Binance spot REST: market data from ``MarketUniverse``, limits from ``WeightLimiter``."""

    defaults: ClassVar[dict[str, Any]] = EXCHANGE_DEFAULTS
    bounds: ClassVar[dict[str, tuple[float, float]]] = EXCHANGE_BOUNDS

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        seed: int = 42,
        generated_pairs: int = 360,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        # Before the settings: checking and applying `pinned_prices` needs both.
        self.universe = MarketUniverse(seed=seed, generated_pairs=generated_pairs)
        self.wall_clock = wall_clock
        super().__init__(settings, seed=seed, clock=clock)
        self.limiter = WeightLimiter(clock, wall_clock)
        self.orders = CountWindow(clock)
        self._exchange_info_cache: tuple[tuple[Any, ...], bytes] | None = None
        self._update_id = 0
        self._order_id = 0
        self._id_lock = threading.Lock()
        self.streams = StreamHub(self, seed=seed)
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/api/v3/ping"): Route(lambda p, t: {}, fixed(1)),
            ("GET", "/api/v3/time"): Route(self._time, fixed(1)),
            ("GET", "/api/v3/exchangeInfo"): Route(self._exchange_info, fixed(20)),
            ("GET", "/api/v3/depth"): Route(
                self._depth, lambda p: depth_weight(self._safe_limit(p, 100))
            ),
            ("GET", "/api/v3/trades"): Route(self._trades, fixed(25)),
            ("GET", "/api/v3/klines"): Route(self._klines, fixed(2)),
            ("GET", "/api/v3/uiKlines"): Route(self._klines, fixed(2)),
            ("GET", "/api/v3/avgPrice"): Route(self._avg_price, fixed(2)),
            ("GET", "/api/v3/ticker/24hr"): Route(self._ticker_24hr, ticker_24hr_weight),
            ("GET", "/api/v3/ticker/price"): Route(self._ticker_price, single_or_all_weight),
            ("GET", "/api/v3/ticker/bookTicker"): Route(self._book_ticker, single_or_all_weight),
            ("POST", "/api/v3/order"): Route(self._new_order, fixed(1), is_order=True),
            ("GET", "/api/v3/order"): Route(self._unknown_order(-2013), fixed(4)),
            ("DELETE", "/api/v3/order"): Route(self._unknown_order(-2011), fixed(1)),
            ("GET", "/api/v3/openOrders"): Route(
                lambda p, t: [], lambda p: 6 if "symbol" in p else 80
            ),
            ("GET", "/api/v3/account"): Route(self._account, fixed(20)),
            ("GET", "/api/v3/myTrades"): Route(lambda p, t: [], fixed(20)),
            ("GET", "/fapi/v1/exchangeInfo"): Route(self._empty_info, fixed(1), spot_pool=False),
            ("GET", "/dapi/v1/exchangeInfo"): Route(self._empty_info, fixed(1), spot_pool=False),
        }

    def reset(self) -> None:
        super().reset()
        self.limiter.reset()
        self.orders.reset()
        self.streams.reset()
        self.settings.merge({"pinned_prices": {}})

    def add_routes(self, app: web.Application) -> None:
        self.streams.add_routes(app)

    def stats_snapshot(self, since: float | None = None) -> dict[str, Any]:
        return {**super().stats_snapshot(since), "websocket": self.streams.snapshot()}

    # pinned prices
    def setting_checks(self) -> dict[str, Callable[[Any], Any]]:
        return {**super().setting_checks(), "pinned_prices": self._check_pins}

    def _check_pins(self, value: Any) -> dict[str, float]:
        """``{"ETH/USDT" or "ETHUSDT": mid price or null}`` -> ``{"ETHUSDT": mid price}``."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise SettingsError(
                f"pinned_prices must be an object of symbol: price, got {shorten(value)}"
            )
        pins: dict[str, float] = {}
        named: set[str] = set()
        for name, price in value.items():
            symbol = name.replace("/", "").upper() if isinstance(name, str) else ""
            market = self.universe.get(symbol)
            if market is None:
                raise SettingsError(f"pinned_prices: unknown symbol {shorten(name)}")
            if symbol in named:
                raise SettingsError(f"pinned_prices: {symbol} is named twice")
            named.add(symbol)
            if price is None:
                continue
            try:
                pins[symbol] = self.universe.check_pin(market, price)
            except ValueError as err:
                raise SettingsError(
                    f"pinned_prices: {shorten(name)} {err}, got {shorten(price)}"
                ) from None
        return pins

    def settings_changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        before, after = old["pinned_prices"], new["pinned_prices"]
        if before == after:
            return
        now = self.wall_clock()
        for symbol in before.keys() - after.keys():
            self.universe.pin(symbol, None, now)
        for symbol, price in after.items():
            self.universe.pin(symbol, price, now)

    @staticmethod
    def _safe_limit(params: Mapping[str, str], default: int) -> int:
        try:
            return int_param(params, "limit", default)
        except BinanceError:
            return default

    # request pipeline
    async def handle_traffic(self, request: web.Request) -> tuple[str, float, web.Response]:
        method, path = request.method, request.path
        endpoint = path if method == "GET" else f"{method} {path}"
        params: dict[str, str] = dict(request.query)
        body_error: BinanceError | None = None
        if method in ("POST", "PUT", "DELETE") and request.can_read_body:
            try:
                params.update({k: str(v) for k, v in (await request.post()).items()})
            except (ValueError, HttpProcessingError):  # not UTF-8, broken multipart, ...
                body_error = BinanceError(
                    -1100, "Illegal characters found in the request body (not UTF-8 form data)."
                )
        route = self.routes.get((method, path))
        spot_pool = route.spot_pool if route else path.startswith("/api/")
        weight = route.weight(params) if route else 1
        client = self.client_id(request)
        headers: dict[str, str] = {}

        if spot_pool:
            rejected = self._admit_weight(client, weight, headers)
            if rejected is not None:
                await self.wait_for_delays()
                return endpoint, 0, rejected
        if route is not None and route.is_order:
            rejected = self._admit_order(request.headers.get("X-MBX-APIKEY") or client, headers)
            if rejected is not None:
                await self.wait_for_delays()
                return endpoint, weight, rejected

        await self.wait_for_delays()
        failure = self.roll_failure()
        if failure is not None:
            if failure >= 500:  # as from a gateway in front of the API: no Binance error code
                return (
                    endpoint,
                    weight,
                    web.Response(status=failure, text="Service Unavailable", headers=headers),
                )
            body = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
            return endpoint, weight, json_response(body, failure, headers)
        if route is None:
            return endpoint, weight, web.Response(status=404, text="Not Found", headers=headers)
        try:
            if body_error is not None:
                raise body_error
            payload = route.handler(params, self.wall_clock())
        except BinanceError as err:
            body = {"code": err.code, "msg": err.msg}
            return endpoint, weight, json_response(body, err.status, headers)
        if self.roll_malformed():
            return endpoint, weight, malformed_response(headers)
        if isinstance(payload, bytes):
            return (
                endpoint,
                weight,
                web.Response(body=payload, headers=headers, content_type="application/json"),
            )
        return endpoint, weight, json_response(payload, headers=headers)

    def _admit_weight(self, client: str, weight: float, headers: dict[str, str]):
        limit = self.settings["weight_limit"]
        window_s = self.settings["window_s"]
        policy = BanPolicy(
            strikes=max(1, self.settings["ban_strikes"]),
            first_ban_s=self.settings["ban_s"],
            max_ban_s=self.settings["ban_max_s"],
        )
        if self.settings["enforce_limits"]:
            decision = self.limiter.admit(
                client, weight, limit=limit, window_s=window_s, policy=policy
            )
        else:
            decision = self.limiter.admit(
                client, weight, limit=math.inf, window_s=window_s, policy=policy
            )
        used = str(int(decision.used))
        headers["X-MBX-USED-WEIGHT"] = used
        headers[f"X-MBX-USED-WEIGHT-{interval_suffix(window_s)}"] = used
        if decision.status == 200:
            return None
        headers["Retry-After"] = str(decision.retry_after)
        if decision.status == 418:
            msg = (
                f"Way too much request weight used; IP banned until {decision.banned_until_ms}."
                " Please use WebSocket Streams for live updates to avoid bans."
            )
        else:
            interval, num = interval_name(window_s)
            msg = (
                f"Too much request weight used; current limit is {limit} request weight per"
                f" {num} {interval}. Please use WebSocket Streams for live updates to avoid"
                " polling the API."
            )
        return json_response({"code": -1003, "msg": msg}, decision.status, headers)

    def _admit_order(self, account: str, headers: dict[str, str]):
        limits = [
            (ORDER_WINDOWS_S[0], float(self.settings["orders_limit_10s"])),
            (ORDER_WINDOWS_S[1], float(self.settings["orders_limit_1d"])),
        ]
        admitted, counts, retry_after = self.orders.admit(account, limits)
        for window_s, count in counts.items():
            headers[f"X-MBX-ORDER-COUNT-{interval_suffix(window_s)}"] = str(count)
        if admitted:
            return None
        headers["Retry-After"] = str(int(retry_after))
        body = {"code": -1015, "msg": "Too many new orders."}
        return json_response(body, 429, headers)

    # helpers
    def _market(self, symbol: str | None) -> Market:
        if not symbol:
            raise missing("symbol")
        market = self.universe.get(symbol)
        if market is None or symbol in self._unknown():
            raise invalid_symbol()
        return market

    def _unknown(self) -> set[str]:
        return {s.split(":")[0].replace("/", "").upper() for s in self.settings["unknown_symbols"]}

    def listed_market(self, symbol: str) -> Market | None:
        """The market of Binance symbol ``symbol``, None if unlisted or in unknown_symbols."""
        market = self.universe.get(symbol)
        return None if market is None or symbol in self._unknown() else market

    def _selected(self, params: Mapping[str, str]) -> list[Market] | Market:
        """One market for ``symbol``, a list for ``symbols``, all listed markets otherwise."""
        if "symbol" in params:
            return self._market(params["symbol"])
        symbols = parse_symbols(params)
        if symbols is not None:
            return [self._market(s) for s in symbols]
        unknown = self._unknown()
        return [m for m in self.universe.markets.values() if m.symbol not in unknown]

    def next_update_id(self) -> int:
        """One sequence for depth's lastUpdateId and the book ticker stream's u."""
        with self._id_lock:
            self._update_id += 1
            return self._update_id

    # handlers: (params, wall-clock now) -> JSON-able payload or pre-encoded bytes
    def _time(self, params: Mapping[str, str], now: float) -> dict[str, Any]:
        return {"serverTime": int(now * 1000)}

    def _empty_info(self, params: Mapping[str, str], now: float) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": int(now * 1000),
            "rateLimits": [],
            "exchangeFilters": [],
            "assets": [],
            "symbols": [],
        }

    def _exchange_info(self, params: Mapping[str, str], now: float) -> Any:
        if "symbol" in params or "symbols" in params:
            selected = self._selected(params)
            markets = selected if isinstance(selected, list) else [selected]
            return self._exchange_info_payload(markets, now)
        key = (self.settings["weight_limit"], self.settings["window_s"])
        cached = self._exchange_info_cache
        if cached is None or cached[0] != key:
            payload = self._exchange_info_payload(list(self.universe.markets.values()), now)
            cached = (key, json.dumps(payload, separators=(",", ":")).encode())
            self._exchange_info_cache = cached
        return cached[1]

    def _exchange_info_payload(self, markets: list[Market], now: float) -> dict[str, Any]:
        interval, num = interval_name(self.settings["window_s"])
        return {
            "timezone": "UTC",
            "serverTime": int(now * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": interval,
                    "intervalNum": num,
                    "limit": self.settings["weight_limit"],
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": self.settings["orders_limit_10s"],
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "DAY",
                    "intervalNum": 1,
                    "limit": self.settings["orders_limit_1d"],
                },
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(m) for m in markets],
        }

    @staticmethod
    def _symbol_info(market: Market) -> dict[str, Any]:
        return {
            "symbol": market.symbol,
            "status": "TRADING",
            "baseAsset": market.base,
            "baseAssetPrecision": 8,
            "quoteAsset": market.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": decimal_str(market.tick_size),
                    "maxPrice": decimal_str(MAX_PRICE),
                    "tickSize": decimal_str(market.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": decimal_str(market.step_size),
                    "maxQty": "9000000000.00000000",
                    "stepSize": decimal_str(market.step_size),
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "9000000000.00000000",
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def ticker_24hr_row(self, market: Market, now: float) -> dict[str, Any]:
        quote = self.universe.quote(market, now)
        pinned = self.universe.pin_at(market.symbol, now)
        if pinned is None:
            day = self.universe.candle(market, int(now) - 86400, 86400, now)
            open_price, high, low, volume = day[1], day[2], day[3], day[5]
        else:  # the whole row is the pin's, so it does not change while the pin holds
            open_price = high = low = quote.last
            volume = self.universe.volume(market, ("pin", pinned), 86400)
        high = max(high, quote.ask)
        low = min(low, quote.bid)
        change = quote.last - open_price
        fmt = market.fmt_price
        return {
            "symbol": market.symbol,
            "priceChange": fmt(change),
            "priceChangePercent": f"{100 * change / open_price:.3f}",
            "weightedAvgPrice": fmt((high + low + quote.last) / 3),
            "prevClosePrice": fmt(open_price),
            "lastPrice": fmt(quote.last),
            "lastQty": market.fmt_qty(quote.bid_qty / 10),
            "bidPrice": fmt(quote.bid),
            "bidQty": market.fmt_qty(quote.bid_qty),
            "askPrice": fmt(quote.ask),
            "askQty": market.fmt_qty(quote.ask_qty),
            "openPrice": fmt(open_price),
            "highPrice": fmt(high),
            "lowPrice": fmt(low),
            "volume": f"{volume:.8f}",
            "quoteVolume": f"{volume * quote.last:.8f}",
            "openTime": int((now - 86400) * 1000),
            "closeTime": int(now * 1000),
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    def _ticker_24hr(self, params: Mapping[str, str], now: float) -> Any:
        selected = self._selected(params)
        if isinstance(selected, list):
            return [self.ticker_24hr_row(m, now) for m in selected]
        return self.ticker_24hr_row(selected, now)

    def _ticker_price(self, params: Mapping[str, str], now: float) -> Any:
        def row(market: Market) -> dict[str, str]:
            last = self.universe.quote(market, now).last
            return {"symbol": market.symbol, "price": market.fmt_price(last)}

        selected = self._selected(params)
        return [row(m) for m in selected] if isinstance(selected, list) else row(selected)

    def book_ticker_row(self, market: Market, now: float) -> dict[str, str]:
        """One ``ticker/bookTicker`` row (also the ``<symbol>@bookTicker`` stream's payload)."""
        quote = self.universe.quote(market, now)
        return {
            "symbol": market.symbol,
            "bidPrice": market.fmt_price(quote.bid),
            "bidQty": market.fmt_qty(quote.bid_qty),
            "askPrice": market.fmt_price(quote.ask),
            "askQty": market.fmt_qty(quote.ask_qty),
        }

    def _book_ticker(self, params: Mapping[str, str], now: float) -> Any:
        selected = self._selected(params)
        if isinstance(selected, list):
            return [self.book_ticker_row(m, now) for m in selected]
        return self.book_ticker_row(selected, now)

    def _depth(self, params: Mapping[str, str], now: float) -> dict[str, Any]:
        market = self._market(params.get("symbol"))
        limit = int_param(params, "limit", 100)
        if limit < 1:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.")
        bids, asks = self.universe.order_book(market, now, min(limit, 5000))
        return {
            "lastUpdateId": self.next_update_id(),
            "bids": [[market.fmt_price(p), market.fmt_qty(q)] for p, q in bids],
            "asks": [[market.fmt_price(p), market.fmt_qty(q)] for p, q in asks],
        }

    def _trades(self, params: Mapping[str, str], now: float) -> list[dict[str, Any]]:
        market = self._market(params.get("symbol"))
        limit = min(max(int_param(params, "limit", 500), 1), 1000)
        rows = []
        for i in range(limit):
            at = now - (limit - i)
            quote = self.universe.quote(market, at)
            rows.append(
                {
                    "id": int(at),
                    "price": market.fmt_price(quote.last),
                    "qty": market.fmt_qty(quote.bid_qty / 10),
                    "quoteQty": f"{quote.last * quote.bid_qty / 10:.8f}",
                    "time": int(at * 1000),
                    "isBuyerMaker": i % 2 == 0,
                    "isBestMatch": True,
                }
            )
        return rows

    def _avg_price(self, params: Mapping[str, str], now: float) -> dict[str, Any]:
        market = self._market(params.get("symbol"))
        pinned = self.universe.pin_at(market.symbol, now)
        price = pinned if pinned is not None else self.universe.mid_price(market, now - 150)
        return {"mins": 5, "price": market.fmt_price(price), "closeTime": int(now * 1000)}

    def _klines(self, params: Mapping[str, str], now: float) -> list[list[Any]]:
        market = self._market(params.get("symbol"))
        interval = params.get("interval")
        if not interval:
            raise missing("interval")
        timeframe_s = TIMEFRAME_SECONDS.get(interval)
        if timeframe_s is None:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(max(int_param(params, "limit", 500), 1), 1000)
        now_s = int(now)
        current_open = now_s - now_s % timeframe_s
        start_ms = params.get("startTime")
        end_ms = params.get("endTime")
        last_open = current_open
        if end_ms:
            end_s = int_param(params, "endTime", 0) // 1000
            last_open = min(current_open, end_s - end_s % timeframe_s)
        if start_ms:
            start_s = -(-int_param(params, "startTime", 0) // 1000)
            first_open = start_s + (-start_s) % timeframe_s
            opens = range(first_open, min(last_open, first_open + (limit - 1) * timeframe_s) + 1)
        else:
            first_open = last_open - (limit - 1) * timeframe_s
            opens = range(first_open, last_open + 1)
        return [self.kline_row(market, open_s, timeframe_s, now) for open_s in opens[::timeframe_s]]

    def kline_row(self, market: Market, open_s: int, timeframe_s: int, now: float) -> list[Any]:
        """One ``klines`` row (also what the ``<symbol>@kline_<interval>`` stream sends)."""
        o_ms, o, h, low, c, v, c_ms = self.universe.candle(market, open_s, timeframe_s, now)
        fmt = market.fmt_price
        return [
            int(o_ms),
            fmt(o),
            fmt(h),
            fmt(low),
            fmt(c),
            f"{v:.8f}",
            int(c_ms),
            f"{v * c:.8f}",
            100,
            f"{v / 2:.8f}",
            f"{v * c / 2:.8f}",
            "0",
        ]

    def _new_order(self, params: Mapping[str, str], now: float) -> dict[str, Any]:
        """Fills at once at the touch; enough for clients that count orders."""
        market = self._market(params.get("symbol"))
        side = params.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            raise missing("side")
        quantity = positive_param(params, "quantity")
        quote = self.universe.quote(market, now)
        price = quote.ask if side == "BUY" else quote.bid
        with self._id_lock:
            self._order_id += 1
            order_id = self._order_id
        return {
            "symbol": market.symbol,
            "orderId": order_id,
            "orderListId": -1,
            "clientOrderId": params.get("newClientOrderId", f"sim{order_id}"),
            "transactTime": int(now * 1000),
            "price": "0.00000000",
            "origQty": market.fmt_qty(quantity),
            "executedQty": market.fmt_qty(quantity),
            "cummulativeQuoteQty": f"{quantity * price:.8f}",
            "status": "FILLED",
            "timeInForce": "GTC",
            "type": params.get("type", "MARKET").upper(),
            "side": side,
            "fills": [
                {
                    "price": market.fmt_price(price),
                    "qty": market.fmt_qty(quantity),
                    "commission": "0.00000000",
                    "commissionAsset": market.quote,
                }
            ],
        }

    @staticmethod
    def _unknown_order(code: int) -> Callable[[Mapping[str, str], float], Any]:
        def handler(params: Mapping[str, str], now: float) -> Any:
            msg = "Order does not exist." if code == -2013 else "Unknown order sent."
            raise BinanceError(code, msg)

        return handler

    def _account(self, params: Mapping[str, str], now: float) -> dict[str, Any]:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "updateTime": int(now * 1000),
            "accountType": "SPOT",
            "balances": [{"asset": "USDT", "free": "1000000.00000000", "locked": "0.00000000"}],
            "permissions": ["SPOT"],
        }


def start_exchange_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 42,
    generated_pairs: int = 360,
    **settings: Any,
) -> RunningEmulator[ExchangeEmulator]:
    """Start the Binance emulator on a background thread; ``settings`` as for PUT /_sim/settings."""
    emulator = ExchangeEmulator(settings, seed=seed, generated_pairs=generated_pairs)
    return RunningEmulator(emulator, host, port).start()


def exchange_ccxt_config(
    url: str,
    pairs: list[str] | None = None,
    *,
    spot_only: bool = False,
    websocket: bool = False,
) -> dict[str, Any]:
    """Freqtrade's ``exchange`` block pointing ccxt's binance at the emulator at ``url``.

    Every binance API family is rewritten to ``url`` + the family's own path, so ccxt builds the
    same request paths as against Binance. ``spot_only`` stops ccxt from also asking the futures
    hosts for markets (two extra requests at start-up; real Binance answers them, so does this).
    ``websocket`` also points ccxt.pro's websocket URLs at the emulator (spot and margin at its
    market streams, ``stream_url(url)``; the other families at paths it answers 404, so nothing
    leaves the machine) and sets Freqtrade's ``enable_ws``.
    """
    import ccxt

    base = url.rstrip("/")
    api_urls: dict[str, Any] = {}
    seen_paths: dict[str, str] = {}
    for family, real in ccxt.binance().urls["api"].items():
        if not isinstance(real, str) or not real.startswith("http"):
            continue
        parts = urlsplit(real)
        host_label = parts.hostname.split(".")[0] if parts.hostname else "api"
        path = parts.path
        if seen_paths.setdefault(path, host_label) != host_label:
            path = f"/_{host_label}{path}"  # same path on two real hosts: keep them apart
        api_urls[family] = f"{base}{path}"
    ccxt_config: dict[str, Any] = {"urls": {"api": api_urls}, "enableRateLimit": True}
    if websocket:
        api_urls["ws"] = websocket_urls(url)
    if spot_only:
        ccxt_config["options"] = {"fetchMarkets": {"types": ["spot"]}}
    return {
        "name": "binance",
        "key": "",
        "secret": "",
        "enable_ws": websocket,
        "ccxt_config": ccxt_config,  # Freqtrade applies it to the async client too
        "pair_whitelist": list(pairs) if pairs is not None else ["BTC/USDT", "ETH/USDT"],
        "pair_blacklist": [],
    }


def websocket_urls(url: str) -> dict[str, Any]:
    """ccxt.pro binance's ``urls.api.ws`` for the emulator at ``url``: spot and margin streams
    at ``stream_url(url)``, every other family under ``/_<host label>`` (not served: 404)."""
    import ccxt.pro

    raw = stream_url(url)
    base = raw[: -len("/ws")]

    def rewrite(real: Any) -> Any:
        if isinstance(real, dict):
            return {key: rewrite(value) for key, value in real.items()}
        parts = urlsplit(real)
        label = parts.hostname.split(".")[0] if parts.hostname else "ws"
        return f"{base}/_{label}{parts.path}"

    urls: dict[str, Any] = rewrite(ccxt.pro.binance().urls["api"]["ws"])
    urls["spot"] = urls["margin"] = raw
    return urls
