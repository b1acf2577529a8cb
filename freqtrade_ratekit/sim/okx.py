"""An OKX v5 spot REST emulator that the unmodified ccxt ``okx`` class and an unmodified
Freqtrade dry-run bot (exchange "okx") can talk to.

OKX's model, as its docs publish it (https://www.okx.com/docs-v5/en/, read 2026-12-02 through
the dated copies of the pages in github.com/qiuham/crypto-api-docs (docs/okx/, pages fetched
2026-06-15) and github.com/rosssaunders/coincise (docs/okx/)):

- "#overview-rate-limits": "The rate limit is different for each endpoint"; "Public
  unauthenticated REST rate limits are based on IP address"; "When a request is rejected by our
  system due to rate limits, the system returns error code 50011".
- "#error-code-rest-api-public": 50011 with HTTP 429 "Too Many Requests"; 50014 (400) "Parameter
  {param0} can not be empty."; 51000 (400) "Parameter {param0} error"; 51001 (200) "Instrument
  ID, Instrument ID code or Spread ID doesn't exist."
- Each endpoint's own "Rate Limit" and "Rate limit rule", all per 2 seconds (`PUBLISHED_LIMITS`):
  public/time 10 (IP, "#public-data-rest-api-get-system-time"), public/instruments 20
  (IP + Instrument Type, "#public-data-rest-api-get-instruments"), market/tickers 20 and
  market/ticker 20 (IP, "#order-book-trading-market-data-get-tickers" / "-get-ticker"),
  market/books 40 (IP, "-get-order-book"), market/candles 40 (IP, "-get-candlesticks"),
  market/history-candles 20 (IP, "-get-candlesticks-history"), market/trades 100 (IP,
  "-get-trades").
- No usage headers on REST (the docs name none), no Retry-After, no bans.

The emulator counts each endpoint's requests per client IP in a rolling window of `window_s`
(2 s by default; OKX does not say whether its windows are fixed or rolling, a rolling one is the
stricter reading) and answers a request over `floor(limit x limit_scale)` with HTTP 429 and
``{"code":"50011","msg":"Too Many Requests","data":[]}``; a rejected request is not counted.
Only spot is listed: public/instruments and market/tickers answer an empty ``data`` for the
other instrument types (ccxt's okx asks for spot, futures, swap and option markets unless
``options.fetchMarkets.types`` says otherwise; `okx_ccxt_config` says spot).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from freqtrade_ratekit.redact import shorten
from freqtrade_ratekit.sim.limits import CountWindow
from freqtrade_ratekit.sim.market import MAX_PRICE, Market, MarketUniverse
from freqtrade_ratekit.sim.server import (
    COMMON_BOUNDS,
    COMMON_DEFAULTS,
    BaseEmulator,
    RunningEmulator,
    SettingsError,
    json_response,
    malformed_response,
)

API_PREFIX = "/api/v5/"
PUBLISHED_WINDOW_S = 2

PUBLISHED_LIMITS: dict[str, int] = {
    "public/time": 10,
    "public/instruments": 20,  # per IP and instrument type
    "market/tickers": 20,
    "market/ticker": 20,
    "market/books": 40,
    "market/candles": 40,
    "market/history-candles": 20,
    "market/trades": 100,
}
"""Requests per 2 seconds per client IP, each endpoint on its own (see the module docstring)."""

OKX_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "limit_scale": 1.0,  # every published limit x this (rounded down); 0 refuses every call
    "window_s": PUBLISHED_WINDOW_S,
    "enforce_limits": True,  # false: count and report, never answer 429
    # instId -> pinned mid price (see MarketUniverse.pin); a PUT replaces the mapping whole.
    "pinned_prices": {},
}

OKX_BOUNDS: dict[str, tuple[float, float]] = {
    **COMMON_BOUNDS,
    "limit_scale": (0.0, 1000.0),
    "window_s": (1, 86_400),
}

BOOK_MAX_DEPTH = 400  # market/books "sz": "Maximum 400"
CANDLES_MAX_LIMIT = 300  # "The maximum is 300. The default is 100."
CANDLES_RECENT = 1440  # market/candles "can retrieve the latest 1,440 data entries"
TRADES_MAX_LIMIT = 500
UTC8_OFFSET_S = 8 * 3600

# OKX bar names (market/candles "bar"): 6H and longer open on UTC+8 boundaries unless suffixed
# "utc". 1s is only listed for history-candles.
BAR_SECONDS: dict[str, int] = {
    "1s": 1,
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1H": 3600,
    "2H": 7200,
    "4H": 14400,
    "6H": 21600,
    "12H": 43200,
    "1D": 86400,
    "2D": 172800,
    "3D": 259200,
    "1W": 604800,
    "1M": 2592000,
    "3M": 7776000,
}


class OkxError(Exception):
    """An answer ``{"code": ..., "msg": ..., "data": []}`` with its HTTP status."""

    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def missing(name: str) -> OkxError:
    return OkxError("50014", f"Parameter {name} can not be empty.")


def bad_param(name: str) -> OkxError:
    return OkxError("51000", f"Parameter {name} error")


def unknown_instrument() -> OkxError:
    return OkxError("51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.", 200)


RATE_LIMITED_BODY = {"code": "50011", "msg": "Too Many Requests", "data": []}


def okx_decimal(value: float) -> str:
    """OKX prints filter values as short decimals: 0.1, 0.00000001, 1000000."""
    return format(Decimal(repr(value)).normalize(), "f")


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_param(name) from None


def parse_bar(raw: str | None, *, allow_seconds: bool) -> tuple[int, int]:
    """(bar length in seconds, offset of its grid from UTC midnight) for an OKX bar name."""
    bar = raw or "1m"
    utc = bar.endswith("utc")
    name = bar[: -len("utc")] if utc else bar
    seconds = BAR_SECONDS.get(name)
    if seconds is None or (name == "1s" and not allow_seconds) or (utc and seconds < 21600):
        raise bad_param("bar")
    offset = 0 if utc or seconds < 21600 else UTC8_OFFSET_S
    return seconds, offset


@dataclass(frozen=True)
class Route:
    handler: Callable[[Mapping[str, str], float], Any]
    limit_key: Callable[[Mapping[str, str]], str]


def by_path(path: str) -> Callable[[Mapping[str, str]], str]:
    return lambda _params: path


class OkxEmulator(BaseEmulator):
    """OKX v5 public REST (spot): market data from ``MarketUniverse``, a request window per
    endpoint and client IP, 429 + code 50011 over the limit."""

    defaults: ClassVar[dict[str, Any]] = OKX_DEFAULTS
    bounds: ClassVar[dict[str, tuple[float, float]]] = OKX_BOUNDS

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
        self.instruments: dict[str, Market] = {
            inst_id(market): market for market in self.universe.markets.values()
        }
        self.wall_clock = wall_clock
        super().__init__(settings, seed=seed, clock=clock)
        self.windows = CountWindow(clock)
        self._instruments_body: bytes | None = None
        self._seq_id = 0
        self._id_lock = threading.Lock()
        self.routes: dict[str, Route] = {
            "public/time": Route(self._time, by_path("public/time")),
            "public/instruments": Route(self._instruments, instruments_key),
            "market/tickers": Route(self._tickers, by_path("market/tickers")),
            "market/ticker": Route(self._ticker, by_path("market/ticker")),
            "market/books": Route(self._books, by_path("market/books")),
            "market/candles": Route(self._candles_recent, by_path("market/candles")),
            "market/history-candles": Route(
                self._candles_history, by_path("market/history-candles")
            ),
            "market/trades": Route(self._trades, by_path("market/trades")),
        }

    def reset(self) -> None:
        super().reset()
        self.windows.reset()
        self.settings.merge({"pinned_prices": {}})

    def limit_for(self, endpoint: str) -> float:
        """The limit a request to ``endpoint`` (a `PUBLISHED_LIMITS` key) meets right now."""
        if not self.settings["enforce_limits"]:
            return math.inf
        # rounded first, so that 100 x 0.29 (28.999999999999996 in floats) is 29
        scaled = round(PUBLISHED_LIMITS[endpoint] * self.settings["limit_scale"], 9)
        return float(math.floor(scaled))

    # pinned prices
    def setting_checks(self) -> dict[str, Callable[[Any], Any]]:
        return {**super().setting_checks(), "pinned_prices": self._check_pins}

    def _check_pins(self, value: Any) -> dict[str, float]:
        """``{"ETH-USDT" or "ETH/USDT": mid price or null}`` -> ``{"ETH-USDT": mid price}``."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise SettingsError(
                f"pinned_prices must be an object of instId: price, got {shorten(value)}"
            )
        pins: dict[str, float] = {}
        named: set[str] = set()
        for name, price in value.items():
            instrument = normalize_inst_id(name) if isinstance(name, str) else ""
            market = self.instruments.get(instrument)
            if market is None:
                raise SettingsError(f"pinned_prices: unknown symbol {shorten(name)}")
            if instrument in named:
                raise SettingsError(f"pinned_prices: {instrument} is named twice")
            named.add(instrument)
            if price is None:
                continue
            try:
                pins[instrument] = self.universe.check_pin(market, price)
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
        for instrument in before.keys() - after.keys():
            self.universe.pin(self.instruments[instrument].symbol, None, now)
        for instrument, price in after.items():
            self.universe.pin(self.instruments[instrument].symbol, price, now)

    # request pipeline
    async def handle_traffic(self, request: web.Request) -> tuple[str, float, web.Response]:
        method, path = request.method, request.path
        endpoint = path if method == "GET" else f"{method} {path}"
        params: dict[str, str] = dict(request.query)
        name = path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else None
        route = self.routes.get(name) if name is not None else None
        if route is not None and method != "GET":  # every served endpoint is a GET
            await self.wait_for_delays()
            body = {"code": "50115", "msg": "Invalid request method.", "data": []}
            return endpoint, 0, json_response(body, 405)
        weight = 0.0
        if route is not None and name is not None:
            key = route.limit_key(params)
            admitted, _, _ = self.windows.admit(
                f"{self.client_id(request)} {key}",
                [(float(self.settings["window_s"]), self.limit_for(name))],
            )
            if not admitted:
                await self.wait_for_delays()
                return endpoint, 0, json_response(RATE_LIMITED_BODY, 429)
            weight = 1.0

        await self.wait_for_delays()
        failure = self.roll_failure()
        if failure is not None:
            if failure >= 500:  # as from a gateway in front of the API: no OKX error code
                return endpoint, weight, web.Response(status=failure, text="Service Unavailable")
            body = (
                RATE_LIMITED_BODY
                if failure == 429
                else {"code": "1", "msg": "Operation failed.", "data": []}
            )
            return endpoint, weight, json_response(body, failure)
        if route is None:
            return endpoint, weight, web.Response(status=404, text="Not Found")
        try:
            data = route.handler(params, self.wall_clock())
        except OkxError as err:
            body = {"code": err.code, "msg": err.msg, "data": []}
            return endpoint, weight, json_response(body, err.status)
        if self.roll_malformed():
            return endpoint, weight, malformed_response()
        if isinstance(data, bytes):
            return (
                endpoint,
                weight,
                web.Response(body=data, content_type="application/json"),
            )
        return endpoint, weight, json_response({"code": "0", "msg": "", "data": data})

    # helpers
    def _market(self, raw: str | None) -> Market:
        if not raw:
            raise missing("instId")
        market = self.instruments.get(raw)
        if market is None or raw in self._unknown():
            raise unknown_instrument()
        return market

    def _unknown(self) -> set[str]:
        return {normalize_inst_id(s) for s in self.settings["unknown_symbols"]}

    def _next_seq_id(self) -> int:
        with self._id_lock:
            self._seq_id += 1
            return self._seq_id

    # handlers: (params, wall-clock now) -> the answer's "data", or a pre-encoded whole body
    def _time(self, params: Mapping[str, str], now: float) -> list[dict[str, str]]:
        return [{"ts": str(int(now * 1000))}]

    def _instruments(self, params: Mapping[str, str], now: float) -> Any:
        inst_type = params.get("instType")
        if not inst_type:
            raise missing("instType")
        if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "EVENTS"):
            raise bad_param("instType")
        if inst_type != "SPOT":
            return []
        if params.get("instId"):
            return [instrument_row(self._market(params["instId"]))]
        if self._instruments_body is None:  # the universe never changes: encode it once
            rows = [instrument_row(m) for m in self.universe.markets.values()]
            payload = {"code": "0", "msg": "", "data": rows}
            self._instruments_body = json.dumps(payload, separators=(",", ":")).encode()
        return self._instruments_body

    def _ticker_row(self, market: Market, now: float) -> dict[str, str]:
        quote = self.universe.quote(market, now)
        pinned = self.universe.pin_at(market.symbol, now)
        if pinned is None:
            day = self.universe.candle(market, int(now) - 86400, 86400, now)
            open_price, high, low, volume = day[1], day[2], day[3], day[5]
        else:  # the whole row is the pin's, so it does not change while the pin holds
            open_price = high = low = quote.last
            volume = self.universe.volume(market, ("pin", pinned), 86400)
        fmt = market.fmt_price
        return {
            "instType": "SPOT",
            "instId": inst_id(market),
            "last": fmt(quote.last),
            "lastSz": market.fmt_qty(quote.bid_qty / 10),
            "askPx": fmt(quote.ask),
            "askSz": market.fmt_qty(quote.ask_qty),
            "bidPx": fmt(quote.bid),
            "bidSz": market.fmt_qty(quote.bid_qty),
            "open24h": fmt(open_price),
            "high24h": fmt(max(high, quote.ask)),
            "low24h": fmt(min(low, quote.bid)),
            "volCcy24h": f"{volume * quote.last:.8f}",
            "vol24h": f"{volume:.8f}",
            "sodUtc0": fmt(open_price),
            "sodUtc8": fmt(open_price),
            "ts": str(int(now * 1000)),
        }

    def _tickers(self, params: Mapping[str, str], now: float) -> list[dict[str, str]]:
        inst_type = params.get("instType")
        if not inst_type:
            raise missing("instType")
        if inst_type not in ("SPOT", "SWAP", "FUTURES", "OPTION", "EVENTS"):
            raise bad_param("instType")
        if inst_type != "SPOT":
            return []
        unknown = self._unknown()
        return [
            self._ticker_row(market, now)
            for instrument, market in self.instruments.items()
            if instrument not in unknown
        ]

    def _ticker(self, params: Mapping[str, str], now: float) -> list[dict[str, str]]:
        return [self._ticker_row(self._market(params.get("instId")), now)]

    def _books(self, params: Mapping[str, str], now: float) -> list[dict[str, Any]]:
        market = self._market(params.get("instId"))
        depth = int_param(params, "sz", 1)
        if not 1 <= depth <= BOOK_MAX_DEPTH:
            raise bad_param("sz")
        bids, asks = self.universe.order_book(market, now, depth)
        fmt_p, fmt_q = market.fmt_price, market.fmt_qty
        return [
            {
                "asks": [[fmt_p(p), fmt_q(q), "0", "1"] for p, q in asks],
                "bids": [[fmt_p(p), fmt_q(q), "0", "1"] for p, q in bids],
                "ts": str(int(now * 1000)),
                "seqId": self._next_seq_id(),
            }
        ]

    def _candles_recent(self, params: Mapping[str, str], now: float) -> list[list[str]]:
        return self._candles(params, now, history=False)

    def _candles_history(self, params: Mapping[str, str], now: float) -> list[list[str]]:
        return self._candles(params, now, history=True)

    def _candles(self, params: Mapping[str, str], now: float, *, history: bool) -> list[list[str]]:
        """Newest first: at most ``limit`` candles opening after ``before`` and before ``after``
        (both exclusive, in ms); market/candles only reaches the latest 1,440 of the bar."""
        market = self._market(params.get("instId"))
        bar_s, offset = parse_bar(params.get("bar"), allow_seconds=history)
        limit = int_param(params, "limit", 100)
        if not 1 <= limit <= CANDLES_MAX_LIMIT:
            raise bad_param("limit")
        after_ms = int_param(params, "after", 0) if params.get("after") else None
        before_ms = int_param(params, "before", 0) if params.get("before") else None
        now_s = int(now)
        current_open = (now_s + offset) // bar_s * bar_s - offset
        open_s = current_open
        if after_ms is not None:  # the newest candle whose open is < after
            below = math.ceil(after_ms / 1000) - 1
            open_s = min(open_s, (below + offset) // bar_s * bar_s - offset)
        oldest = current_open - (CANDLES_RECENT - 1) * bar_s if not history else -math.inf
        rows: list[list[str]] = []
        fmt = market.fmt_price
        while len(rows) < limit and open_s >= oldest and open_s >= 0:
            if before_ms is not None and open_s * 1000 <= before_ms:
                break
            o_ms, o, h, low, c, v, _ = self.universe.candle(market, open_s, bar_s, now)
            confirm = "0" if open_s == current_open else "1"
            quote_volume = f"{v * c:.8f}"
            rows.append(
                [
                    str(int(o_ms)),
                    fmt(o),
                    fmt(h),
                    fmt(low),
                    fmt(c),
                    f"{v:.8f}",
                    quote_volume,
                    quote_volume,
                    confirm,
                ]
            )
            open_s -= bar_s
        return rows

    def _trades(self, params: Mapping[str, str], now: float) -> list[dict[str, str]]:
        market = self._market(params.get("instId"))
        limit = int_param(params, "limit", 100)
        if not 1 <= limit <= TRADES_MAX_LIMIT:
            raise bad_param("limit")
        rows = []
        for i in range(limit):  # newest first, one a second
            at = now - i - 1
            quote = self.universe.quote(market, at)
            rows.append(
                {
                    "instId": inst_id(market),
                    "side": "buy" if i % 2 else "sell",
                    "sz": market.fmt_qty(quote.bid_qty / 10),
                    "source": "0",
                    "px": market.fmt_price(quote.last),
                    "tradeId": str(int(at)),
                    "ts": str(int(at * 1000)),
                }
            )
        return rows


def inst_id(market: Market) -> str:
    """OKX's instrument id of a market: BTC-USDT."""
    return f"{market.base}-{market.quote}"


def normalize_inst_id(name: str) -> str:
    """``ETH/USDT``, ``ETH/USDT:USDT`` or ``eth-usdt`` -> ``ETH-USDT``."""
    return name.split(":", maxsplit=1)[0].replace("/", "-").upper()


def instruments_key(params: Mapping[str, str]) -> str:
    """public/instruments is limited per IP and instrument type."""
    return f"public/instruments {params.get('instType', '')}"


def instrument_row(market: Market) -> dict[str, Any]:
    """One SPOT entry of public/instruments, with the fields ccxt's okx reads."""
    return {
        "instType": "SPOT",
        "instId": inst_id(market),
        "instFamily": "",
        "uly": "",
        "baseCcy": market.base,
        "quoteCcy": market.quote,
        "settleCcy": "",
        "ctVal": "",
        "ctMult": "",
        "ctValCcy": "",
        "ctType": "",
        "optType": "",
        "stk": "",
        "alias": "",
        "category": "1",
        "groupId": "1",
        "listTime": "1606468572000",
        "contTdSwTime": "",
        "expTime": "",
        "lever": "",
        "tickSz": okx_decimal(market.tick_size),
        "lotSz": okx_decimal(market.step_size),
        "minSz": okx_decimal(market.step_size),
        "maxLmtSz": "9999999999",
        "maxMktSz": okx_decimal(MAX_PRICE),
        "maxLmtAmt": "20000000",
        "maxMktAmt": "1000000",
        "maxTwapSz": "9999999999",
        "maxIcebergSz": "9999999999",
        "maxTriggerSz": "9999999999",
        "maxStopSz": okx_decimal(MAX_PRICE),
        "state": "live",
        "ruleType": "normal",
        "openType": "",
        "tradeQuoteCcyList": [market.quote],
        "upcChg": [],
    }


def start_okx_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 42,
    generated_pairs: int = 360,
    **settings: Any,
) -> RunningEmulator[OkxEmulator]:
    """Start the OKX emulator on a background thread; ``settings`` as for PUT /_sim/settings."""
    emulator = OkxEmulator(settings, seed=seed, generated_pairs=generated_pairs)
    return RunningEmulator(emulator, host, port).start()


def okx_ccxt_config(
    url: str, pairs: list[str] | None = None, *, spot_only: bool = True
) -> dict[str, Any]:
    """Freqtrade's ``exchange`` block pointing ccxt's okx at the emulator at ``url``.

    ccxt's okx builds every URL from ``urls.api.rest`` (``https://{hostname}``) + ``/api/v5/``
    + the path, so that one URL is replaced. ``spot_only`` (the default) has ccxt ask for spot
    instruments only; without it ccxt also asks for futures, swap and option (two requests,
    one per default underlying), which the emulator answers with empty lists.
    """
    ccxt_config: dict[str, Any] = {
        "urls": {"api": {"rest": url.rstrip("/")}},
        "enableRateLimit": True,
    }
    if spot_only:
        ccxt_config["options"] = {"fetchMarkets": {"types": ["spot"]}}
    return {
        "name": "okx",
        "key": "",
        "secret": "",
        "password": "",
        "enable_ws": False,
        "ccxt_config": ccxt_config,  # Freqtrade applies it to the async client too
        "pair_whitelist": list(pairs) if pairs is not None else ["BTC/USDT", "ETH/USDT"],
        "pair_blacklist": [],
    }
