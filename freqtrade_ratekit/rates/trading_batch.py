"""One batched exchange call per bot iteration, serving that iteration's trading reads.

Rule 1 (design section 3): a trading read (`get_rate(..., refresh=True)` inside
`FreqtradeBot.process`) may use exchange data received at most `trading_max_age` ago. The
iteration's batch is started, in a thread of its own, as soon as the iteration knows which
pairs it will price (right after its whitelist refresh), so the exchange's round trip overlaps
the candle refresh and the strategy's analysis. A trading read then:

- waits for the batch while it is in flight (at most `wait_limit` seconds: the ccxt timeout);
- is served from the batch when the batch's answer arrived less than `max_age` ago and holds a
  priced ticker for the pair;
- re-fetches the batch once per iteration when it went stale before it was used (a slow
  analysis): one batched call still costs less than the per-pair calls it replaces;
- otherwise gets a fallback reason, and the caller runs stock's per-pair fetch.

A failed batch call costs nothing but the call: every read falls back to stock, and the next
batches wait out a full-jitter backoff. No Freqtrade import: the hook (`patches.exchange`)
computes the rate with Freqtrade's own formula from the ticker served here.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from freqtrade_ratekit.documents import (
    RatekitBatchCall,
    RatekitHistogram,
    RatekitTradingBatch,
)
from freqtrade_ratekit.rates.refresher import MalformedAnswer, check_batch
from freqtrade_ratekit.rates.sources import TickerSource, merge_tickers
from freqtrade_ratekit.rates.stream import PriceStream, priced
from freqtrade_ratekit.workers import Backoff, backoff_ceiling, describe_error, full_jitter

logger = logging.getLogger(__name__)

FallbackReason = Literal[
    "no_batch",  # batching off for this iteration: nothing servable, or per-pair is cheapest
    "backoff",  # the last batch call failed; batches wait out the backoff
    "failed",  # this iteration's batch call failed
    "late",  # the batch did not arrive within the wait limit
    "stale",  # the batch is older than the trading maximum age (after the one re-fetch)
    "missing",  # the batch has no priced ticker for the pair
    "unusable",  # the ticker lacks the price this side needs, or the formula refused it
    "depth",  # the side prices from order-book levels below the top: per-pair books
]
FALLBACK_REASONS: tuple[FallbackReason, ...] = (
    "no_batch",
    "backoff",
    "failed",
    "late",
    "stale",
    "missing",
    "unusable",
    "depth",
)

AGE_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
"""Buckets of the age of the data served to trading reads."""

ITERATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Buckets of the duration of one bot iteration (`FreqtradeBot.process`)."""

JOIN_TIMEOUT_S = 5.0
"""How long `stop()` waits for a batch call in flight."""


def book_top_from_ticker(ticker: Mapping[str, Any]) -> dict[str, Any]:
    """The top level of the order book, from a book ticker: what `fetch_l2_order_book(pair, 1)`
    answers. Binance documents `ticker/bookTicker` as the "best price/qty on the order book"
    (spot API docs, Market data endpoints, "Symbol order book ticker", read 2026-12-02)."""
    bids = [[ticker["bid"], ticker.get("bidVolume")]] if ticker.get("bid") is not None else []
    asks = [[ticker["ask"], ticker.get("askVolume")]] if ticker.get("ask") is not None else []
    return {"symbol": ticker.get("symbol"), "bids": bids, "asks": asks}


def servable_side(pricing: Mapping[str, Any]) -> bool:
    """Whether a side's pricing config can be served from a batch of tickers: ticker pricing,
    or order-book pricing at the top of the book (`order_book_top` 1)."""
    return not pricing.get("use_order_book", False) or int(pricing.get("order_book_top", 1)) == 1


def needs_last_price(sides: Iterable[Mapping[str, Any]]) -> bool:
    """A ticker-priced side with `price_last_balance` != 0 moves the rate towards `last`."""
    return any(
        not side.get("use_order_book", False) and float(side.get("price_last_balance", 0.0)) != 0
        for side in sides
    )


class Histogram:
    """Cumulative Prometheus-style buckets (`le` bounds), the shape every ratekit document uses.
    Not locked: its owner holds a lock around `observe` and `document`."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * len(self.bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.bounds):
            self._counts[index] += 1
        self.count += 1
        self.sum += value

    def document(self) -> RatekitHistogram:
        cumulative = itertools.accumulate(self._counts)
        buckets: list[list[float | str]] = [
            [bound, count] for bound, count in zip(self.bounds, cumulative, strict=True)
        ]
        return {"buckets": [*buckets, ["+Inf", self.count]], "sum": self.sum, "count": self.count}


@dataclass(frozen=True)
class BatchAnswer:
    """One batch call's answer: tickers by pair, and when it arrived (`timer()` units)."""

    tickers: Mapping[str, Mapping[str, Any]]
    received_at: float
    method: str
    cost: float
    pairs: int
    seconds: float


@dataclass(frozen=True)
class Lookup:
    """What a trading read may use: the batched `ticker` and its `age`, or a fallback `reason`."""

    ticker: Mapping[str, Any] | None
    age: float | None
    reason: FallbackReason | Literal["batch", "stream"]


class _Flight:
    """One batch call; the bot thread waits on `done`, the call's thread sets the result."""

    def __init__(self, pairs: tuple[str, ...]) -> None:
        self.pairs = pairs
        self.done = threading.Event()
        self.answer: BatchAnswer | None = None
        self.error: str | None = None
        self.thread: threading.Thread | None = None


class TradingBatch:
    """The batched pricing of the bot's iterations, for one exchange.

    choose_source: `(pairs, need_last) -> TickerSource`, as for the refresher.
    fetch: `(method, symbols) -> answer` runs one planned ccxt call (the refresher's fetch).
    pricing: `() -> (entry_pricing, exit_pricing)`, Freqtrade's config sections, read per
        iteration.
    wait_limit: `() -> seconds` a read waits for the batch in flight (the ccxt timeout).
    stream: the exchange's streamed prices, served first while younger than `max_age`; while
        it covers every pair of an iteration, the REST batch is only fetched when a read needs
        it (a pair the stream lacks, or one gone quiet).
    Call `begin`, `lookup`, `served`, `fell_back` and `end` from the bot's thread; `snapshot`
    from any thread.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        max_age: float,
        choose_source: Callable[[list[str], bool], TickerSource],
        fetch: Callable[[str, list[str] | None], Any],
        pricing: Callable[[], tuple[Mapping[str, Any], Mapping[str, Any]]],
        wait_limit: Callable[[], float] = lambda: 10.0,
        stream: PriceStream | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        timer: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not max_age > 0:
            raise ValueError(f"max_age must be > 0, got {max_age!r}")
        self.enabled = enabled
        self.max_age = float(max_age)
        self._choose_source = choose_source
        self._fetch = fetch
        self._pricing = pricing
        self._wait_limit = wait_limit
        self.stream = stream
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self._rng = rng or random.Random()
        self._timer = timer
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        # the running iteration (bot thread only)
        self._flight: _Flight | None = None
        self._source: TickerSource | None = None
        self._refetched = False
        self._deferred: tuple[str, ...] | None = None  # pairs of a REST batch left to the reads
        self._stream_usable = False
        self._idle_reason: FallbackReason = "no_batch"
        # failures and figures (under _lock)
        self._failures = 0
        self._not_before: float | None = None
        self._stopping = False
        self._threads: set[threading.Thread] = set()
        self._calls = 0
        self._failed_calls = 0
        self._refetches = 0
        self._served = 0
        self._served_stream = 0
        self._fallbacks = dict.fromkeys(FALLBACK_REASONS, 0)
        self._age = Histogram(AGE_BUCKETS_S)
        self._iterations = Histogram(ITERATION_BUCKETS_S)
        self._last_call: RatekitBatchCall | None = None

    # -- the iteration -----------------------------------------------------------------------

    def begin(self, pairs: Sequence[str]) -> None:
        """The iteration will price `pairs`: start their batch call in the background.

        No call when batching is off, when no side can be served from tickers, when the
        cheapest source is per-pair anyway, or while the backoff of a failed call runs. A call
        still in flight from the previous iteration is kept: its answer is measured from its
        arrival like any other.
        """
        self._refetched = False
        self._source = None
        self._deferred = None
        self._stream_usable = False
        if not self.enabled:
            self._idle("no_batch")
            return
        entry, exit_ = self._pricing()
        wanted = tuple(dict.fromkeys(pairs))
        if not wanted or not (servable_side(entry) or servable_side(exit_)):
            self._idle("no_batch")
            return
        with self._lock:
            if self._stopping:
                self._idle("no_batch")
                return
            if self._not_before is not None and self._timer() < self._not_before:
                self._idle("backoff")
                return
        need_last = needs_last_price((entry, exit_))
        # book tickers carry no `last`: a balanced ticker side needs a stream of full tickers
        self._stream_usable = self.stream is not None and (
            not need_last or self.stream.method == "watch_tickers"
        )
        source = self._choose_source(list(wanted), need_last)
        if source.name == "per_pair" or not source.calls:
            self._idle("no_batch")
            return
        self._source = source
        previous = self._flight
        if previous is not None and not previous.done.is_set():
            return  # still in flight: this iteration uses it
        if self.stream is not None and self._stream_usable:
            self.stream.follow(wanted)
            if self.stream.covers(wanted, self.max_age):
                self._flight, self._deferred = None, wanted
                return
        flight = _Flight(wanted)
        thread = threading.Thread(
            target=self._run, args=(flight, source), name="ratekit-batch", daemon=True
        )
        flight.thread = thread
        with self._lock:
            self._threads.add(thread)
        self._flight = flight
        thread.start()

    def _idle(self, reason: FallbackReason) -> None:
        self._flight = None
        self._idle_reason = reason

    def end(self, seconds: float) -> None:
        """The iteration is over (it took `seconds`): its batch serves nothing more."""
        flight = self._flight
        if flight is not None and flight.done.is_set():
            self._flight = None
        self._source = None
        self._idle_reason = "no_batch"
        with self._lock:
            self._iterations.observe(seconds)

    def lookup(self, pair: str) -> Lookup:
        """The batched ticker a trading read of `pair` may use now, or why it may not.

        A fallback is counted here; a ticker handed out is counted by `served` or `fell_back`.
        """
        if (
            self.stream is not None
            and self._stream_usable
            and (streamed := self.stream.ticker(pair, self.max_age))
        ):
            return Lookup(ticker=streamed[0], age=streamed[1], reason="stream")
        flight = self._flight
        if flight is None and self._deferred is not None and self._source is not None:
            flight = self._flight = _Flight(self._deferred)  # the stream lacks this pair
            self._deferred = None
            self._run(flight, self._source)
        if flight is None:
            return self._fallback(self._idle_reason)
        if not flight.done.wait(self._wait_limit()):
            return self._fallback("late")
        answer = flight.answer
        if answer is None:
            return self._fallback("failed")
        age = self._timer() - answer.received_at
        if age >= self.max_age and not self._refetched and self._source is not None:
            self._refetched = True
            with self._lock:
                self._refetches += 1
            refetch = _Flight(flight.pairs)
            self._run(refetch, self._source)
            self._flight = flight = refetch
            answer = refetch.answer
            if answer is None:
                return self._fallback("failed")
            age = self._timer() - answer.received_at
        if age >= self.max_age:
            return self._fallback("stale")
        ticker = answer.tickers.get(pair)
        if ticker is None:
            return self._fallback("missing")
        return Lookup(ticker=ticker, age=max(0.0, age), reason="batch")

    def served(self, age: float, source: str = "batch") -> None:
        """A trading read was answered from the batch (or the stream), with data `age` s old."""
        with self._lock:
            self._served += 1
            if source == "stream":
                self._served_stream += 1
            self._age.observe(age)

    def fell_back(self, reason: FallbackReason) -> None:
        """A trading read goes to stock's per-pair fetch for `reason`."""
        with self._lock:
            self._fallbacks[reason] += 1

    def _fallback(self, reason: FallbackReason) -> Lookup:
        self.fell_back(reason)
        return Lookup(ticker=None, age=None, reason=reason)

    # -- the call ----------------------------------------------------------------------------

    def _run(self, flight: _Flight, source: TickerSource) -> None:
        started = self._timer()
        try:
            tickers = self._fetch_tickers(source)
        except Exception as exc:
            flight.error = describe_error(exc)
            self._record_failure(source, flight.error, self._timer() - started)
            logger.info("ratekit trading batch failed, per-pair fetches: %s", flight.error)
        else:
            received = self._timer()
            flight.answer = BatchAnswer(
                tickers=tickers,
                received_at=received,
                method=source.method,
                cost=source.cost,
                pairs=len(tickers),
                seconds=received - started,
            )
            self._record_success(flight.answer)
        finally:
            flight.done.set()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _fetch_tickers(self, source: TickerSource) -> dict[str, Mapping[str, Any]]:
        """The planned calls' tickers by pair, only those that carry a price.

        An implausible answer (not a mapping, or lacking most requested pairs) raises: it is a
        failed call, not a verdict on the pairs (see `check_batch`)."""
        answers: dict[str, Mapping[str, Any]] = {}
        for call in source.calls:
            answer = self._fetch(call.method, list(call.symbols) if call.symbols else None)
            if not isinstance(answer, Mapping):
                raise MalformedAnswer(f"{call.method} answered a {type(answer).__name__}")
            answers[call.method] = answer
        batch: Mapping[str, Any] = (
            answers.get("fetch_tickers") or answers.get("fetch_bids_asks") or {}
        )
        if "fetch_last_prices" in answers:
            batch = merge_tickers(batch, answers["fetch_last_prices"])
        check_batch(source.method, source.pairs, batch)
        return {
            pair: ticker
            for pair, ticker in batch.items()
            if isinstance(ticker, Mapping) and priced(ticker)
        }

    def _record_success(self, answer: BatchAnswer) -> None:
        with self._lock:
            self._calls += 1
            self._failures = 0
            self._not_before = None
            self._last_call = {
                "at": self._wall_clock(),
                "method": answer.method,
                "cost": answer.cost,
                "pairs": answer.pairs,
                "seconds": answer.seconds,
                "error": None,
            }

    def _record_failure(self, source: TickerSource, error: str, seconds: float) -> None:
        with self._lock:
            self._calls += 1
            self._failed_calls += 1
            self._failures += 1
            ceiling = backoff_ceiling(self._backoff.base, self._backoff.cap, self._failures)
            self._not_before = self._timer() + full_jitter(ceiling, self._rng)
            self._last_call = {
                "at": self._wall_clock(),
                "method": source.method,
                "cost": source.cost,
                "pairs": 0,
                "seconds": seconds,
                "error": error,
            }

    # -- life and figures --------------------------------------------------------------------

    def start(self) -> None:
        """Start the price stream (it connects once `begin` gives it pairs)."""
        with self._lock:
            self._stopping = False
        if self.stream is not None:
            self.stream.start()

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """No more batches; stop the stream and join a call in flight (up to `timeout` each).
        True when no thread is left."""
        with self._lock:
            self._stopping = True
            threads = list(self._threads)
        ended = self.stream.stop(timeout) if self.stream is not None else True
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        return ended and not any(thread.is_alive() for thread in threads)

    def snapshot(self) -> RatekitTradingBatch:
        with self._lock:
            fallbacks = {str(reason): count for reason, count in self._fallbacks.items()}
            return {
                "enabled": self.enabled,
                "max_age": self.max_age,
                "batch_calls": self._calls,
                "failed_calls": self._failed_calls,
                "refetches": self._refetches,
                "consecutive_failures": self._failures,
                "served": self._served,
                "served_from_stream": self._served_stream,
                "per_pair": sum(fallbacks.values()),
                "per_pair_by_reason": fallbacks,
                "served_age": self._age.document(),
                "iterations": self._iterations.document(),
                "last_call": self._last_call.copy() if self._last_call else None,
                "stream": self.stream.snapshot() if self.stream is not None else None,
            }
