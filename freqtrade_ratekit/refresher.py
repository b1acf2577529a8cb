"""Pre-warm and background refresh of rates, in the cheapest batches the exchange offers.

Three plain pieces, none of which imports Freqtrade:

- `PeriodicWorker`: one daemon thread that runs a job on a period or on request, one run at a
  time, backing off (exponential, full jitter, capped) while the job fails.
- `choose_ticker_source()`: reads a ccxt exchange's own cost table (`api` describe tree:
  `cost`, `noSymbol`, `byLimit`, through the exchange's `calculate_rate_limiter_cost`) and its
  `has` flags to pick per-pair `fetch_ticker`, one `fetch_tickers` or `fetch_bids_asks`
  (+ `fetch_last_prices`). Offline: no markets need to be loaded.
- `RateRefresher`: asks which pairs are due, fetches them with the chosen source (or order
  books per pair), hands each answer to a `store_rates` callable (the caller computes the rate
  with Freqtrade's own `get_rate(..., ticker=...)`), and marks the pairs that could not be
  priced as failing.

Costs are in ccxt cost units (1 unit = one `rateLimit` interval of ccxt's throttle). On Binance
spot 1 unit = 5 request weight: ccxt 4.5.90 binance.py throttles at rateLimit 50 ms (1200
units/min) for Binance's published REQUEST_WEIGHT limit of 6000/min per IP
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits, read 2026-11-21).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import ccxt

from freqtrade_ratekit.rate_cache import RateCache

logger = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 300


def describe_error(exc: BaseException) -> str:
    """A short, single-line description of an exception, for status figures and logs."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


# ---------------------------------------------------------------------------------------------
# PeriodicWorker
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff, full jitter: attempt n waits uniform(0, min(cap, base * 2**(n-1)))."""

    base: float = 1.0
    cap: float = 60.0

    def __post_init__(self) -> None:
        if self.base <= 0:
            raise ValueError(f"Backoff.base must be > 0, got {self.base!r}")
        if self.cap < self.base:
            raise ValueError(f"Backoff.cap ({self.cap!r}) must be >= base ({self.base!r})")

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt `attempt` (1 = first failure) may wait."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt!r}")
        return min(self.cap, self.base * 2.0 ** min(attempt - 1, 64))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))


class PeriodicWorker:
    """Runs `job` every `interval` seconds (0 = only when triggered) in one daemon thread.

    `trigger()` asks for an early run; triggers that arrive while a run is pending or in
    progress coalesce into at most one more run. While the job keeps failing, runs (including
    triggered ones) wait out the backoff delay, so a failing exchange is not hammered.
    """

    def __init__(
        self,
        job: Callable[[], object],
        *,
        interval: float,
        name: str,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        timer: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval!r}")
        self._job = job
        self.interval = float(interval)
        self.name = name
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._timer = timer
        self._wall_clock = wall_clock
        self._cond = threading.Condition()
        self._run_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._triggered = False
        self._not_before: float | None = None  # end of the current backoff, timer() units
        self._next_due: float | None = None  # next periodic run, timer() units
        self._runs = 0
        self._consecutive_failures = 0
        self._last_run_at: float | None = None
        self._last_duration: float | None = None
        self._last_error: str | None = None

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (no-op when running). The first periodic run is one interval away."""
        with self._cond:
            previous = self._thread
            if previous is not None and previous.is_alive() and not self._stopping:
                return
        if previous is not None and previous is not threading.current_thread():
            previous.join()  # a stop() is finishing a run: let that thread end first
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            if self.interval > 0:
                self._next_due = self._timer() + self.interval
            self._thread = threading.Thread(
                target=self._loop, name=f"ratekit-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Wake the thread and wait up to `timeout` s for it to end (a running job is finished).

        Returns True when the thread has ended.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def trigger(self) -> None:
        """Request a run as soon as possible (after any backoff); coalesced."""
        with self._cond:
            self._triggered = True
            self._cond.notify_all()

    def run_now(self) -> bool:
        """Run the job in the calling thread now, single-flight with the background thread.

        Ignores the backoff (the caller decided). Returns True when the job succeeded.
        """
        with self._run_lock:
            with self._cond:
                self._triggered = False
            return self._run_job()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping

    # -- internals ----------------------------------------------------------------------------

    def _due_in(self, now: float) -> float | None:
        """Seconds until the next run may start, None when nothing is scheduled."""
        candidates = []
        if self._triggered:
            candidates.append(now)
        if self._next_due is not None:
            candidates.append(self._next_due)
        if not candidates:
            return None
        start = min(candidates)
        if self._not_before is not None:
            start = max(start, self._not_before)
        return max(0.0, start - now)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    wait = self._due_in(self._timer())
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
                self._triggered = False
            with self._run_lock:
                self._run_job()

    def _run_job(self) -> bool:
        """Run once and account for it; called with `_run_lock` held."""
        started = self._timer()
        started_wall = self._wall_clock()
        error: BaseException | None = None
        try:
            self._job()
        except Exception as exc:
            error = exc
        finished = self._timer()
        with self._cond:
            self._runs += 1
            self._last_run_at = started_wall
            self._last_duration = finished - started
            self._next_due = finished + self.interval if self.interval > 0 else None
            if error is None:
                if self._consecutive_failures:
                    logger.info(
                        "ratekit %s: recovered after %d failed run(s)",
                        self.name,
                        self._consecutive_failures,
                    )
                self._consecutive_failures = 0
                self._last_error = None
                self._not_before = None
                return True
            self._consecutive_failures += 1
            self._last_error = describe_error(error)
            delay = self.backoff.delay(self._consecutive_failures, self._rng)
            self._not_before = finished + delay
            self._next_due = self._not_before  # retry after the backoff, not a period later
            failures = self._consecutive_failures
        level = logging.WARNING if failures == 1 else logging.DEBUG
        logger.log(
            level,
            "ratekit %s: run failed (%d in a row), retrying in %.1f s: %s",
            self.name,
            failures,
            delay,
            self._last_error,
        )
        return False

    # -- figures ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._cond:
            due = self._due_in(self._timer())
            return {
                "name": self.name,
                "running": self.running,
                "interval_s": self.interval,
                "last_run_at": self._last_run_at,
                "last_duration_s": self._last_duration,
                "last_error": self._last_error,
                "consecutive_failures": self._consecutive_failures,
                "runs": self._runs,
                "next_run_in_s": due,
            }


# ---------------------------------------------------------------------------------------------
# Choosing the cheapest ticker source from ccxt's cost tables
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# RateRefresher
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairSpec:
    pair: str
    is_short: bool = False


@dataclass(frozen=True)
class PricingNeeds:
    """Which market data Freqtrade's pricing config needs to compute both sides' rates."""

    tickers: bool = True  # a side prices from tickers
    order_books: bool = False  # a side prices from order books (no batch call exists)
    last_price: bool = False  # a ticker side has price_last_balance != 0


def pricing_needs(
    entry_pricing: Mapping[str, Any], exit_pricing: Mapping[str, Any]
) -> PricingNeeds:
    """Read Freqtrade's `entry_pricing` / `exit_pricing` config sections (plain dicts).

    `_get_rate_from_ticker` moves the rate towards `last` only by `price_last_balance`, so
    with a balance of 0 the rate is bid/ask alone and book tickers suffice.
    """
    sides = (entry_pricing, exit_pricing)
    ticker_sides = [side for side in sides if not side.get("use_order_book", False)]
    return PricingNeeds(
        tickers=bool(ticker_sides),
        order_books=len(ticker_sides) < len(sides),
        last_price=any(float(side.get("price_last_balance", 0.0)) != 0 for side in ticker_sides),
    )


@dataclass(frozen=True)
class MarketData:
    """What one pair's rates are computed from; the kinds not needed are None."""

    ticker: Mapping[str, Any] | None = None
    order_book: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RefreshReport:
    at: float  # wall clock, start of the run
    seconds: float
    method: str
    cost: float  # estimated ccxt cost units of the ticker calls (order books not included)
    requested: tuple[str, ...]
    stored: tuple[str, ...]
    failed: Mapping[str, str] = field(default_factory=dict)  # negative-cached
    retry: Mapping[str, str] = field(default_factory=dict)  # transient, tried again next run
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": len(self.stored),
            "requested": len(self.requested),
            "seconds": self.seconds,
            "at": self.at,
            "method": self.method,
            "cost": self.cost,
            "failed": len(self.failed),
            "failed_pairs": sorted(self.failed)[:50],
            "retry": len(self.retry),
            "retry_pairs": sorted(self.retry)[:50],
            "error": self.error,
        }


class MalformedAnswer(Exception):
    """An exchange answer that cannot be right: an empty batch, a ticker or order book with no
    price at all. ccxt turns a truncated body into `{}`, so this is what a flaky proxy or a
    broken response looks like. It says nothing about the pairs: never negative-cached."""


# How many pairs in a row may fail with a transient error before a run stops: past that the
# exchange is down, not the pairs, and trying every remaining pair would take N timeouts.
MAX_TRANSIENT_STREAK = 3


def is_transient_error(exc: BaseException) -> bool:
    """True unless the exchange (or Freqtrade's pricing, which got an answer) said the pair
    fails: only those are negative-cached.

    Transient: ccxt.NetworkError anywhere in the cause chain (Freqtrade wraps ccxt errors,
    `raise TemporaryError(...) from e`), a `MalformedAnswer`, and any error raised by neither
    ccxt nor Freqtrade (an `AttributeError` from parsing a broken body is not a verdict on the
    pair). Pair-specific: ccxt's exchange errors (`BadSymbol`, ...) and Freqtrade's own
    (`ExchangeError`, `PricingError`).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ccxt.NetworkError | MalformedAnswer):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return type(exc).__module__.split(".")[0] not in ("ccxt", "freqtrade")


def _has_price(ticker: Mapping[str, Any]) -> bool:
    return any(isinstance(ticker.get(key), int | float) for key in ("bid", "ask", "last"))


def check_ticker(method: str, pair: str, ticker: Any) -> Mapping[str, Any]:
    """`ticker` when it carries a price; a `MalformedAnswer` otherwise."""
    if not isinstance(ticker, Mapping) or not _has_price(ticker):
        raise MalformedAnswer(f"{method} answered no price for {pair}")
    return ticker


def check_order_book(pair: str, book: Any) -> Any:
    """`book` when it has a bid or an ask; a `MalformedAnswer` otherwise (a live market's
    book is never empty on both sides)."""
    if not isinstance(book, Mapping) or not (book.get("bids") or book.get("asks")):
        raise MalformedAnswer(f"fetch_l2_order_book answered an empty book for {pair}")
    return book


def check_batch(method: str, requested: Sequence[str], batch: Mapping[str, Any]) -> list[str]:
    """The requested pairs absent from a batch answer, when the answer is plausible.

    An answer that lacks every requested pair, or more than half of them, is a broken answer
    (`MalformedAnswer`: the call failed), not a mass delisting.
    """
    absent = [pair for pair in requested if not isinstance(batch.get(pair), Mapping)]
    if requested and (len(absent) == len(requested) or len(absent) > max(1, len(requested) // 2)):
        raise MalformedAnswer(
            f"{method} answered {len(batch)} symbol(s) lacking {len(absent)} of the "
            f"{len(requested)} requested"
        )
    return absent


def pairs_due(caches: Iterable[RateCache], pairs: Sequence[str], *, horizon: float) -> list[str]:
    """Pairs due in any of `caches` (e.g. entry and exit), in input order."""
    due: set[str] = set()
    for cache in caches:
        due.update(cache.pairs_needing_refresh(pairs, horizon=horizon))
    return [pair for pair in dict.fromkeys(pairs) if pair in due]


class RefreshAborted(Exception):
    """The run failed (a batch call, or several pairs in a row, with a transient error); what
    was fetched before it has been stored."""


class _Attempts:
    """One run's per-pair outcomes: stored, failed (the pair's fault, negative-cached) or
    retry (transient). Stops the run with `RefreshAborted` after `MAX_TRANSIENT_STREAK`
    transient failures in a row."""

    def __init__(self, is_transient: Callable[[BaseException], bool]) -> None:
        self._is_transient = is_transient
        self.stored: list[str] = []
        self.failed: dict[str, str] = {}
        self.retry: dict[str, str] = {}
        self.last_transient: BaseException | None = None
        self._streak = 0

    def run(self, pair: str, work: Callable[[], None], *, store: bool = True) -> None:
        """Run `work` for `pair`; `store` False: success is not yet a stored rate."""
        try:
            work()
        except Exception as exc:
            if not self._is_transient(exc):
                self.failed[pair] = describe_error(exc)
                self._streak = 0
                return
            self.retry[pair] = describe_error(exc)
            self.last_transient = exc
            self._streak += 1
            if self._streak >= MAX_TRANSIENT_STREAK:
                raise RefreshAborted(
                    f"{self._streak} pairs in a row failed, last: {describe_error(exc)}"
                ) from exc
            return
        self._streak = 0
        if store:
            self.stored.append(pair)


class RateRefresher:
    """Fetches due rates in batches and stores them through plain callables.

    pairs_provider: the pairs to keep warm (open trades, optionally the whitelist).
    needs_refresh: filters a pair list to the due ones (missing, about to go stale, not inside
        their negative TTL), e.g. `lambda ps: pairs_due(caches, ps, horizon=...)`.
    choose_source: `(pairs, need_last) -> TickerSource`, normally a partial of
        `choose_ticker_source` on the bot's sync ccxt client.
    fetch: `(method, symbols) -> dict` runs one planned ccxt call; for `fetch_ticker` symbols
        is `[pair]` and the answer is that pair's ticker, otherwise `{symbol: ticker}` (or
        `{symbol: last price entry}` for `fetch_last_prices`). `symbols` None = all symbols.
    fetch_order_book: `pair -> order book`, used when `pricing().order_books`.
    pricing: which data the current pricing config needs (`pricing_needs`).
    store_rates: `(spec, data)` computes and stores the pair's rates; raising marks it failed.
    mark_failed: `(pair, error)` records a failure in the caches.
    """

    def __init__(
        self,
        *,
        pairs_provider: Callable[[], Iterable[PairSpec]],
        needs_refresh: Callable[[list[str]], list[str]],
        choose_source: Callable[[list[str], bool], TickerSource],
        fetch: Callable[[str, list[str] | None], Any],
        store_rates: Callable[[PairSpec, MarketData], None],
        mark_failed: Callable[[str, str], None],
        pricing: Callable[[], PricingNeeds] = PricingNeeds,
        fetch_order_book: Callable[[str], Any] | None = None,
        is_transient: Callable[[BaseException], bool] = is_transient_error,
        interval: float = 0.0,
        max_pending: int = 500,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        timer: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        name: str = "rate-refresher",
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending!r}")
        self._pairs_provider = pairs_provider
        self._needs_refresh = needs_refresh
        self._choose_source = choose_source
        self._fetch = fetch
        self._store_rates = store_rates
        self._mark_failed = mark_failed
        self._pricing = pricing
        self._fetch_order_book = fetch_order_book
        self._is_transient = is_transient
        self._max_pending = max_pending
        self._timer = timer
        self._wall_clock = wall_clock
        self._refresh_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: dict[str, PairSpec] = {}
        self._dropped_requests = 0
        self._last_run: RefreshReport | None = None
        self.worker = PeriodicWorker(
            self._background_run,
            interval=interval,
            name=name,
            backoff=backoff,
            rng=rng,
            timer=timer,
            wall_clock=wall_clock,
        )

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()

    def stop(self, timeout: float = 5.0) -> bool:
        return self.worker.stop(timeout)

    def request(self, specs: Iterable[PairSpec]) -> None:
        """Ask for a background fetch of pairs a reader found missing; never blocks on I/O.

        De-duplicated by pair; beyond `max_pending` queued pairs new ones are dropped (counted):
        the next periodic run picks up the tracked pairs anyway.
        """
        added = False
        with self._pending_lock:
            for spec in specs:
                if spec.pair in self._pending:
                    continue
                if len(self._pending) >= self._max_pending:
                    self._dropped_requests += 1
                    continue
                self._pending[spec.pair] = spec
                added = True
        if added:
            self.worker.trigger()

    def _requeue(self, specs: Iterable[PairSpec]) -> None:
        """Put back pairs a failed run did not get to, so a reader's request is not lost."""
        with self._pending_lock:
            for spec in specs:
                if len(self._pending) >= self._max_pending:
                    break
                self._pending.setdefault(spec.pair, spec)

    # -- the work -----------------------------------------------------------------------------

    def _background_run(self) -> None:
        report = self.refresh()
        if report.error is not None:
            raise RefreshAborted(report.error)

    def refresh(self, specs: Iterable[PairSpec] | None = None) -> RefreshReport:
        """Fetch and store the due pairs; returns (and keeps) the run's report.

        With `specs` None: the provider's pairs plus the pending requests. Single-flight: a
        call waits for a run in progress. Every due pair is tried: a pair that fails with a
        transient error is that pair's (`report.retry`, not negative-cached) and goes last in
        the next run. The run fails (`report.error`, the worker backs off, nothing is marked
        for it) when a batch call fails or answers implausibly, when
        `MAX_TRANSIENT_STREAK` pairs in a row fail, or when every pair tried failed.
        """
        with self._refresh_lock:
            started = self._timer()
            started_wall = self._wall_clock()
            if specs is None:
                with self._pending_lock:
                    pending, self._pending = list(self._pending.values()), {}
                candidates = [*self._pairs_provider(), *pending]
            else:
                candidates = list(specs)
            by_pair: dict[str, PairSpec] = {}
            for spec in candidates:
                by_pair.setdefault(spec.pair, spec)
            previous_retry = self._last_run.retry if self._last_run is not None else {}
            due = sorted(self._needs_refresh(list(by_pair)), key=lambda p: p in previous_retry)
            needs = self._pricing()
            attempts = _Attempts(self._is_transient)
            source = TickerSource(name="per_pair", calls=(), pairs=())
            error: BaseException | None = None
            try:
                if due:
                    tickers: dict[str, Mapping[str, Any]] = {}
                    if needs.tickers:
                        source = self._choose_source(due, needs.last_price)
                        self._fetch_tickers(source, tickers, attempts)
                    for pair in due:
                        if pair in attempts.failed or pair in attempts.retry:
                            continue
                        if needs.tickers and pair not in tickers:
                            continue
                        store = functools.partial(self._store_one, by_pair[pair], needs, tickers)
                        attempts.run(pair, store)
                    if attempts.retry and not attempts.stored and not attempts.failed:
                        error = attempts.last_transient
            except Exception as exc:
                error = exc
            if error is not None:
                if not self._is_transient(error):
                    logger.debug("ratekit refresh failed", exc_info=error)
                done = {*attempts.stored, *attempts.failed}
                self._requeue(spec for spec in by_pair.values() if spec.pair not in done)
            for pair, reason in attempts.failed.items():
                self._mark_failed(pair, reason)
            method = source.method if needs.tickers else "none"
            if needs.order_books and due:
                method = "fetch_l2_order_book" if method == "none" else f"{method}+order_books"
            report = RefreshReport(
                at=started_wall,
                seconds=self._timer() - started,
                method=method,
                cost=source.cost,
                requested=tuple(due),
                stored=tuple(attempts.stored),
                failed=dict(attempts.failed),
                retry=dict(attempts.retry),
                error=describe_error(error) if error is not None else None,
            )
            self._last_run = report
            return report

    def _fetch_tickers(
        self, source: TickerSource, tickers: dict[str, Mapping[str, Any]], attempts: _Attempts
    ) -> None:
        """Run the planned calls into `tickers`; per-pair outcomes go to `attempts`.

        A failing or implausible batch call raises: it says nothing about any one pair.
        """
        if source.name == "per_pair":
            for call in source.calls:
                pair = call.symbols[0] if call.symbols else ""

                def fetch_one(method: str = call.method, pair: str = pair) -> None:
                    tickers[pair] = check_ticker(method, pair, self._fetch(method, [pair]))

                attempts.run(pair, fetch_one, store=False)
            return
        answers: dict[str, Mapping[str, Any]] = {}
        for call in source.calls:
            answer = self._fetch(call.method, list(call.symbols) if call.symbols else None)
            if not isinstance(answer, Mapping):
                raise MalformedAnswer(f"{call.method} answered a {type(answer).__name__}")
            answers[call.method] = answer
        batch = answers.get("fetch_tickers") or answers.get("fetch_bids_asks") or {}
        if "fetch_last_prices" in answers:
            batch = merge_tickers(batch, answers["fetch_last_prices"])
        absent = set(check_batch(source.method, source.pairs, batch))
        for pair in source.pairs:
            if pair in absent:
                attempts.failed[pair] = f"{pair} absent from {source.method} answer"
            else:
                tickers[pair] = batch[pair]

    def _store_one(
        self, spec: PairSpec, needs: PricingNeeds, tickers: Mapping[str, Mapping[str, Any]]
    ) -> None:
        order_book = None
        if needs.order_books:
            if self._fetch_order_book is None:
                raise RuntimeError("order-book pricing configured but no fetch_order_book")
            order_book = check_order_book(spec.pair, self._fetch_order_book(spec.pair))
        self._store_rates(spec, MarketData(ticker=tickers.get(spec.pair), order_book=order_book))

    # -- figures ------------------------------------------------------------------------------

    @property
    def last_run(self) -> RefreshReport | None:
        return self._last_run

    def status(self) -> dict[str, Any]:
        with self._pending_lock:
            pending = len(self._pending)
            dropped = self._dropped_requests
        last = self._last_run
        return {
            **self.worker.status(),
            "pending_requests": pending,
            "dropped_requests": dropped,
            "last_run": last.as_dict() if last is not None else None,
        }
