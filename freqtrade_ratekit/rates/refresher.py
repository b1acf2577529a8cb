"""Pre-warm and background refresh of rates, in the cheapest batches the exchange offers.

`RateRefresher` asks which pairs are due, fetches them with the chosen ticker source
(`rates.sources`) or order books per pair, hands each answer to a `store_rates` callable (the
caller computes the rate with Freqtrade's own `get_rate(..., ticker=...)`), and marks the pairs
that could not be priced as failing. Its thread is a `workers.PeriodicWorker`. No Freqtrade
import.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt

from freqtrade_ratekit.documents import RatekitRefresherStatus, RatekitRefreshReport
from freqtrade_ratekit.rates.cache import RateCache
from freqtrade_ratekit.rates.sources import TickerSource, merge_tickers
from freqtrade_ratekit.workers import Backoff, PeriodicWorker, describe_error

logger = logging.getLogger(__name__)


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

    def as_dict(self) -> RatekitRefreshReport:
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

    def status(self) -> RatekitRefresherStatus:
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
