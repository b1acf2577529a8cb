"""PeriodicWorker, ticker-source choice on real ccxt instances, and RateRefresher with fakes."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import ccxt
import pytest
from freqtrade.exceptions import ExchangeError, PricingError, TemporaryError
from freqtrade.exchange import Exchange

from freqtrade_ratekit.rates.cache import RateCache
from freqtrade_ratekit.rates.refresher import (
    MAX_TRANSIENT_STREAK,
    MalformedAnswer,
    MarketData,
    PairSpec,
    PricingNeeds,
    RateRefresher,
    RefreshAborted,
    is_transient_error,
    pairs_due,
    pricing_needs,
)
from freqtrade_ratekit.rates.sources import (
    _ENDPOINTS,
    TickerSource,
    choose_ticker_source,
    merge_tickers,
)
from freqtrade_ratekit.workers import Backoff, PeriodicWorker
from tests.helpers import FakeClock

WAIT = 10.0  # generous bound for thread hand-offs; never a timing assertion


class MaxRandom(random.Random):
    """Full jitter always at its ceiling, so delays are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


# ------------------------------------------------------------------------------------------------
# Backoff and PeriodicWorker
# ------------------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(base=0.5, cap=10)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 8, 10]
    assert backoff.ceiling(10_000) == 10
    rng = random.Random(7)
    delays = [backoff.delay(5, rng) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays)
    assert len(set(delays)) > 100  # jittered, not constant
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)
    with pytest.raises(ValueError):
        backoff.ceiling(0)


def test_worker_backs_off_after_failures_then_resets(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    outcomes = [RuntimeError("down"), RuntimeError("still down"), RuntimeError("x"), None]

    def job() -> None:
        outcome = outcomes.pop(0)
        clock.advance(1)
        if outcome is not None:
            raise outcome

    worker = PeriodicWorker(
        job,
        interval=60,
        name="test",
        backoff=Backoff(base=2, cap=5),
        rng=MaxRandom(),
        timer=clock,
        wall_clock=lambda: 5000.0,
    )
    caplog.set_level(logging.DEBUG, logger="freqtrade_ratekit.workers")

    assert worker.run_now() is False
    status = worker.status()
    assert status["consecutive_failures"] == 1
    assert status["last_error"] == "RuntimeError: down"
    assert status["next_run_in_s"] == 2  # backoff ceiling of attempt 1
    worker.trigger()
    assert worker.status()["next_run_in_s"] == 2  # a trigger does not jump the backoff

    assert worker.run_now() is False
    assert worker.status()["next_run_in_s"] == 4
    assert worker.run_now() is False
    assert worker.status()["next_run_in_s"] == 5  # capped

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    debugs = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(warnings) == 1
    assert len(debugs) == 2

    assert worker.run_now() is True
    status = worker.status()
    assert status["consecutive_failures"] == 0
    assert status["last_error"] is None
    assert status["next_run_in_s"] == 60  # back on its period
    assert status["runs"] == 4
    assert status["last_run_at"] == 5000.0
    assert status["last_duration_s"] == 1
    assert status["running"] is False


def test_worker_retries_a_failed_run_by_itself() -> None:
    calls: list[int] = []
    succeeded = threading.Event()

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first run fails")
        succeeded.set()

    worker = PeriodicWorker(job, interval=0, name="t", backoff=Backoff(base=0.001, cap=0.001))
    worker.start()
    try:
        worker.trigger()  # one trigger only: the retry after the backoff is the worker's own
        assert succeeded.wait(WAIT)
    finally:
        assert worker.stop(WAIT)
    assert len(calls) == 2  # and no further runs: interval 0, nothing triggered
    status = worker.status()
    assert (status["consecutive_failures"], status["last_error"]) == (0, None)
    assert status["running"] is False


def test_worker_is_single_flight_under_concurrent_triggers() -> None:
    release = threading.Event()
    entered = threading.Event()
    lock = threading.Lock()
    active = 0
    peak = 0
    runs = 0

    def job() -> None:
        nonlocal active, peak, runs
        with lock:
            active += 1
            runs += 1
            peak = max(peak, active)
        entered.set()
        release.wait(WAIT)
        with lock:
            active -= 1

    worker = PeriodicWorker(job, interval=0, name="sf")
    worker.start()
    try:
        worker.trigger()
        assert entered.wait(WAIT)
        triggers = [threading.Thread(target=worker.trigger) for _ in range(50)]
        runners = [threading.Thread(target=worker.run_now) for _ in range(3)]
        for thread in triggers + runners:
            thread.start()
        for thread in triggers:
            thread.join(WAIT)
        release.set()
        for thread in runners:
            thread.join(WAIT)
        assert not [thread for thread in triggers + runners if thread.is_alive()]
    finally:
        assert worker.stop(WAIT)
    assert peak == 1
    # the first run, the three explicit run_now calls, and at most one coalesced trigger
    assert 4 <= runs <= 5


def test_worker_stop_is_prompt_and_restartable() -> None:
    ran = threading.Event()
    worker = PeriodicWorker(ran.set, interval=3600, name="idle")
    worker.start()
    worker.start()  # no second thread
    assert worker.status()["running"] is True
    assert worker.stop(WAIT) is True  # wakes the hour-long wait instead of sleeping through it
    assert not ran.is_set()
    worker.start()
    worker.trigger()
    assert ran.wait(WAIT)
    assert worker.stop(WAIT) is True


@pytest.mark.parametrize("name", ["rates", "ratekit-rates"])
def test_worker_thread_name_is_prefixed_once(name: str) -> None:
    worker = PeriodicWorker(lambda: None, interval=0, name=name)
    worker.start()
    try:
        thread = worker._thread
        assert thread is not None and thread.name == "ratekit-rates"
    finally:
        assert worker.stop(WAIT)
    assert worker.status()["name"] == name  # the status document keeps the name as given


# ------------------------------------------------------------------------------------------------
# choose_ticker_source on real ccxt instances (cost tables are read offline)
# ------------------------------------------------------------------------------------------------


def pairs(n: int) -> list[str]:
    return [f"C{i}/USDT" for i in range(n)]


def cost_of(api: Any, family: tuple[str, ...], path: str, key: str = "cost") -> float:
    node = api.api
    for part in family:
        node = node[part]
    return float(node["get"][path][key])


@pytest.mark.parametrize("exchange_id", ["binance", "okx", "gate", "bitfinex"])
def test_every_mapped_endpoint_exists_in_ccxt(exchange_id: str) -> None:
    """Guards against a ccxt upgrade renaming an endpoint the map relies on."""
    api = getattr(ccxt, exchange_id)()
    for methods in _ENDPOINTS[exchange_id].values():
        for method, endpoint in methods.items():
            first, *rest = method.split("_")
            assert api.has.get(first + "".join(part.title() for part in rest)) is True
            assert cost_of(api, endpoint.family, endpoint.path) >= 0, (method, endpoint)


def test_binance_book_tickers_beat_single_tickers_from_a_few_pairs() -> None:
    api = ccxt.binance()
    single = cost_of(api, ("public",), "ticker/24hr")
    books = cost_of(api, ("public",), "ticker/bookTicker", "noSymbol")
    last = cost_of(api, ("public",), "ticker/price", "noSymbol")
    # ccxt 4.5.90: weight 2 per ticker, 4 for all book tickers, 4 for all last prices (x0.2)
    assert (single, books, last) == (0.4, 0.8, 0.8)

    for n in range(1, 12):
        chosen = choose_ticker_source(api, pairs(n), need_last=True)
        if n * single < books + last:
            assert chosen.name == "per_pair", n
            assert chosen.method == "fetch_ticker"
            assert len(chosen.calls) == n
        else:  # from 4 pairs (tie, fewer requests win) on
            assert chosen.name == "bids_asks_all", n
            assert chosen.method == "fetch_bids_asks+fetch_last_prices"
            assert [c.symbols for c in chosen.calls] == [None, None]
        assert chosen.cost == pytest.approx(min(n * single, books + last))
    assert choose_ticker_source(api, pairs(3), need_last=True).name == "per_pair"
    assert choose_ticker_source(api, pairs(5), need_last=True).name == "bids_asks_all"

    # without price_last_balance the book tickers alone do: cheaper from 2 pairs on
    assert choose_ticker_source(api, pairs(1), need_last=False).name == "per_pair"
    two = choose_ticker_source(api, pairs(2), need_last=False)
    assert (two.name, two.cost) == ("bids_asks_all", pytest.approx(0.8))


def test_binance_without_last_prices_falls_back_to_tickers() -> None:
    api = ccxt.binance()
    has = {**api.has, "fetchLastPrices": False}
    assert choose_ticker_source(api, pairs(10), need_last=True, has=has).name == "per_pair"
    many = choose_ticker_source(api, pairs(50), need_last=True, has=has)
    assert many.name == "tickers_all"  # 16 (weight 80) < 50 x 0.4
    assert many.calls[0].symbols is None


def test_binance_futures_uses_fapi_costs() -> None:
    api = ccxt.binance({"options": {"defaultType": "swap"}})
    chosen = choose_ticker_source(api, ["BTC/USDT:USDT"], need_last=False)
    assert chosen.cost == cost_of(api, ("fapiPublic",), "ticker/24hr")
    # loaded markets win over options
    spot = ccxt.binance()
    spot.markets = {"BTC/USDT:USDT": {"spot": False, "linear": True, "inverse": False}}
    assert choose_ticker_source(spot, ["BTC/USDT:USDT"], need_last=False).cost == 1.0


@pytest.mark.parametrize("exchange_id", ["okx", "gate", "bitfinex"])
def test_one_call_exchanges_batch_from_two_pairs(exchange_id: str) -> None:
    api = getattr(ccxt, exchange_id)()
    endpoints = _ENDPOINTS[exchange_id].get("spot") or _ENDPOINTS[exchange_id]["*"]
    single = cost_of(api, endpoints["fetch_ticker"].family, endpoints["fetch_ticker"].path)
    batch = cost_of(api, endpoints["fetch_tickers"].family, endpoints["fetch_tickers"].path)
    assert single == batch  # one call, all tickers: the whole point

    one = choose_ticker_source(api, pairs(1), need_last=True)
    assert (one.name, one.cost) == ("per_pair", single)
    for n in (2, 10, 200):
        chosen = choose_ticker_source(api, pairs(n), need_last=True)
        assert chosen.name == "tickers_all"  # not the listed variant: no batch-wide BadSymbol
        assert chosen.calls == (chosen.calls[0],)
        assert chosen.cost == batch
        assert ("per_pair", pytest.approx(n * single)) in chosen.alternatives


def test_tickers_without_bid_ask_are_not_used() -> None:
    api = ccxt.okx()
    chosen = choose_ticker_source(api, pairs(10), need_last=False, tickers_have_bid_ask=False)
    assert chosen.name == "per_pair"


def test_cost_override_and_empty_pairs() -> None:
    api = ccxt.binance()

    def preset(method: str, symbols: Any) -> float | None:
        return 0.4 if method == "fetch_tickers" and symbols else None  # Binance: <=20 symbols

    chosen = choose_ticker_source(api, pairs(3), need_last=True, call_cost=preset)
    assert (chosen.name, chosen.calls[0].symbols) == ("tickers_listed", tuple(pairs(3)))
    empty = choose_ticker_source(api, [], need_last=True)
    assert (empty.calls, empty.cost, empty.method) == ((), 0, "none")


def test_merge_tickers_gives_the_rate_of_a_full_ticker() -> None:
    full = {"symbol": "BTC/USDT", "bid": 99.0, "ask": 101.0, "last": 100.2}
    books = {
        "BTC/USDT": {"symbol": "BTC/USDT", "bid": 99.0, "ask": 101.0, "last": None},
        "ETH/USDT": {"symbol": "ETH/USDT", "bid": 9.0, "ask": 11.0, "last": None},
    }
    lasts: dict[str, dict[str, Any]] = {
        "BTC/USDT": {"symbol": "BTC/USDT", "price": 100.2},
        "XRP/USDT": {"price": 1.0},
    }
    merged = merge_tickers(books, lasts)
    assert list(merged) == ["BTC/USDT"]  # no last price, no ticker: it would price differently
    assert merged["BTC/USDT"]["last"] == merged["BTC/USDT"]["close"] == 100.2
    for side, price_side in (("entry", "ask"), ("exit", "bid")):
        conf = {"price_last_balance": 0.5}
        # _get_rate_from_ticker does not use self: Freqtrade's own pricing code, unpatched
        expected = Exchange._get_rate_from_ticker(None, side, full, conf, price_side)
        got = Exchange._get_rate_from_ticker(None, side, merged["BTC/USDT"], conf, price_side)
        assert got == expected


def test_pricing_needs_reads_freqtrade_pricing_config() -> None:
    assert pricing_needs({}, {}) == PricingNeeds(tickers=True, order_books=False, last_price=False)
    assert pricing_needs({"price_last_balance": 0.2}, {}).last_price is True
    assert pricing_needs(
        {"use_order_book": True, "price_last_balance": 0.2}, {"use_order_book": True}
    ) == PricingNeeds(tickers=False, order_books=True, last_price=False)
    assert pricing_needs({"use_order_book": True}, {}) == PricingNeeds(True, True, False)


def test_transient_errors_are_recognised_through_wrapping() -> None:
    assert is_transient_error(ccxt.RequestTimeout("slow"))
    assert is_transient_error(ccxt.DDoSProtection("429"))
    assert not is_transient_error(ccxt.BadSymbol("gone"))
    try:
        try:
            raise ccxt.ExchangeNotAvailable("503")
        except ccxt.BaseError as exc:
            raise RuntimeError("TemporaryError-like wrapper") from exc
    except RuntimeError as wrapped:
        assert is_transient_error(wrapped)


# ------------------------------------------------------------------------------------------------
# RateRefresher with fake exchange callables and real RateCaches
# ------------------------------------------------------------------------------------------------


class FakeExchange:
    """Answers like ccxt; records every call."""

    def __init__(self, prices: dict[str, float]) -> None:
        self.prices = prices
        self.calls: list[tuple[str, list[str] | None]] = []
        self.single_errors: dict[str, BaseException] = {}
        self.batch_error: BaseException | None = None

    def ticker(self, pair: str) -> dict[str, Any]:
        price = self.prices[pair]
        return {"symbol": pair, "bid": price - 1, "ask": price + 1, "last": price}

    def fetch(self, method: str, symbols: list[str] | None) -> Any:
        self.calls.append((method, symbols))
        if method == "fetch_ticker":
            assert symbols is not None
            pair = symbols[0]
            if pair in self.single_errors:
                raise self.single_errors[pair]
            if pair not in self.prices:
                raise ccxt.BadSymbol(f"binance does not have market symbol {pair}")
            return self.ticker(pair)
        if self.batch_error is not None:
            raise self.batch_error
        wanted = symbols if symbols is not None else list(self.prices)
        if method == "fetch_last_prices":
            return {p: {"symbol": p, "price": self.prices[p]} for p in wanted if p in self.prices}
        tickers = {p: self.ticker(p) for p in wanted if p in self.prices}
        if method == "fetch_bids_asks":
            for ticker in tickers.values():
                ticker["last"] = None
        return tickers

    def order_book(self, pair: str) -> dict[str, Any]:
        self.calls.append(("fetch_l2_order_book", [pair]))
        price = self.prices[pair]
        return {"bids": [[price - 1, 1]], "asks": [[price + 1, 1]]}


class Harness:
    def __init__(
        self,
        tracked: list[str],
        prices: dict[str, float],
        *,
        source: Callable[[list[str], bool], TickerSource] | None = None,
        needs: PricingNeeds | None = None,
        interval: float = 0,
    ) -> None:
        self.clock = FakeClock()
        self.exchange = FakeExchange(prices)
        self.entry, self.exit = (
            RateCache(
                maxsize=50, ttl=300, stale_ttl=3600, negative_ttl=600, timer=self.clock, name=name
            )
            for name in ("entry", "exit")
        )
        self.tracked = [PairSpec(p) for p in tracked]
        self.stored: list[tuple[PairSpec, MarketData]] = []
        self.marked: list[tuple[str, str]] = []
        self.stored_event = threading.Event()
        self.need_last_seen: list[bool] = []
        api = ccxt.binance()

        def choose(pairs: list[str], need_last: bool) -> TickerSource:
            self.need_last_seen.append(need_last)
            if source is not None:
                return source(pairs, need_last)
            return choose_ticker_source(api, pairs, need_last=need_last)

        self.refresher = RateRefresher(
            pairs_provider=lambda: list(self.tracked),
            needs_refresh=lambda ps: pairs_due([self.entry, self.exit], ps, horizon=60),
            choose_source=choose,
            # late-bound, so that a test can swap the fake exchange's answers
            fetch=lambda method, symbols: self.exchange.fetch(method, symbols),
            fetch_order_book=lambda pair: self.exchange.order_book(pair),
            pricing=lambda: needs or PricingNeeds(),
            store_rates=self.store,
            mark_failed=self.mark_failed,
            interval=interval,
            backoff=Backoff(base=0.001, cap=0.001),
            timer=self.clock,
            wall_clock=lambda: 1_700_000_000.0,
        )

    def store(self, spec: PairSpec, data: MarketData) -> None:
        """What the lead's store_rates does via get_rate: compute from the data, fill both."""
        if data.order_book is not None:
            entry, exit_ = data.order_book["asks"][0][0], data.order_book["bids"][0][0]
        else:
            assert data.ticker is not None
            if data.ticker["ask"] is None:
                raise PricingError(f"Entry-Rate for {spec.pair} was empty.")
            entry, exit_ = data.ticker["ask"], data.ticker["bid"]
        self.entry[spec.pair] = entry
        self.exit[spec.pair] = exit_
        self.stored.append((spec, data))
        self.stored_event.set()

    def mark_failed(self, pair: str, error: str) -> None:
        self.entry.mark_failed(pair, error)
        self.exit.mark_failed(pair, error)
        self.marked.append((pair, error))


def test_batch_answer_missing_a_pair_marks_it_failed() -> None:
    tracked = ["BTC/USDT", "ETH/USDT", "XRP/USDT", "ADA/USDT", "LUNA/USDT"]
    h = Harness(tracked, {"BTC/USDT": 100, "ETH/USDT": 10, "XRP/USDT": 1, "ADA/USDT": 2})

    report = h.refresher.refresh()

    assert h.exchange.calls == [("fetch_bids_asks", None)]  # 5 pairs: one all-book-tickers call
    assert [spec.pair for spec, _ in h.stored] == tracked[:4]
    assert h.entry.get("BTC/USDT") == 101 and h.exit.get("BTC/USDT") == 99
    assert [pair for pair, _ in h.marked] == ["LUNA/USDT"]
    assert "absent from fetch_bids_asks answer" in h.marked[0][1]
    assert h.entry.failing("LUNA/USDT") is not None
    figures = report.as_dict()
    assert figures["pairs"] == 4
    assert figures["requested"] == 5
    assert figures["failed"] == 1
    assert figures["failed_pairs"] == ["LUNA/USDT"]
    assert figures["method"] == "fetch_bids_asks"
    assert figures["cost"] == pytest.approx(0.8)
    assert figures["at"] == 1_700_000_000.0
    assert figures["error"] is None
    assert h.refresher.status()["last_run"] == figures


def test_failing_pair_is_not_refetched_inside_negative_ttl() -> None:
    h = Harness(["BTC/USDT", "LUNA/USDT"], {"BTC/USDT": 100})
    first = h.refresher.refresh()
    assert first.requested == ("BTC/USDT", "LUNA/USDT")
    assert [pair for pair, _ in h.marked] == ["LUNA/USDT"]

    h.exchange.calls.clear()
    h.clock.advance(250)  # BTC is due (250 + 60 horizon >= 300); LUNA is inside 600 s
    report = h.refresher.refresh()
    assert h.exchange.calls == [("fetch_ticker", ["BTC/USDT"])]
    assert report.requested == ("BTC/USDT",)

    h.exchange.calls.clear()
    h.clock.advance(400)  # LUNA's negative TTL is over: retried once
    third = h.refresher.refresh()
    assert third.requested == ("BTC/USDT", "LUNA/USDT")
    assert len(h.marked) == 2


def test_last_prices_are_fetched_when_pricing_needs_them() -> None:
    tracked = [f"C{i}/USDT" for i in range(6)]
    h = Harness(
        tracked,
        {p: 10.0 + i for i, p in enumerate(tracked)},
        needs=PricingNeeds(last_price=True),
    )
    report = h.refresher.refresh()
    assert h.need_last_seen == [True]
    assert h.exchange.calls == [("fetch_bids_asks", None), ("fetch_last_prices", None)]
    assert report.method == "fetch_bids_asks+fetch_last_prices"
    assert all(data.ticker is not None and data.ticker["last"] for _, data in h.stored)


def per_pair_source(pairs: list[str], need_last: bool) -> TickerSource:
    return choose_ticker_source(
        ccxt.binance(), pairs, need_last=need_last, has={"fetchTicker": True}
    )


def test_pair_specific_errors_mark_failed_transient_ones_are_that_pairs() -> None:
    tracked = ["A/USDT", "B/USDT", "C/USDT"]
    h = Harness(tracked, {"A/USDT": 1, "B/USDT": 2, "C/USDT": 3}, source=per_pair_source)
    h.exchange.single_errors["A/USDT"] = ccxt.BadSymbol("delisted")
    h.exchange.single_errors["B/USDT"] = ccxt.RequestTimeout("timed out")
    report = h.refresher.refresh()

    assert [pair for pair, _ in h.marked] == ["A/USDT"]  # the timeout says nothing about B
    assert report.retry == {"B/USDT": "RequestTimeout: timed out"}
    assert report.error is None  # C was priced: one pair's timeout is not a failed run
    assert [spec.pair for spec, _ in h.stored] == ["C/USDT"]  # tried although B failed first
    assert h.entry.failing("B/USDT") is None
    figures = report.as_dict()
    assert figures["retry"] == 1 and figures["retry_pairs"] == ["B/USDT"]


def test_a_pair_that_keeps_failing_never_blocks_the_others() -> None:
    tracked = ["A/USDT", "B/USDT", "C/USDT", "D/USDT"]
    h = Harness(tracked, {p: 1.0 + i for i, p in enumerate(tracked)}, source=per_pair_source)
    h.exchange.single_errors["A/USDT"] = ccxt.RequestTimeout("timed out")
    for _ in range(3):
        h.exchange.calls.clear()
        h.clock.advance(400)  # everything is due again
        report = h.refresher.refresh()
        assert set(report.stored) == {"B/USDT", "C/USDT", "D/USDT"}
        assert report.error is None
    # after its first failure the failing pair is tried last
    assert h.exchange.calls[-1] == ("fetch_ticker", ["A/USDT"])
    assert h.marked == []


def test_a_streak_of_transient_failures_ends_the_run() -> None:
    tracked = [f"P{i}/USDT" for i in range(6)]
    h = Harness(tracked, dict.fromkeys(tracked, 1.0), source=per_pair_source)
    for pair in tracked:
        h.exchange.single_errors[pair] = ccxt.NetworkError("down")
    report = h.refresher.refresh()
    assert len(h.exchange.calls) == MAX_TRANSIENT_STREAK  # the exchange is down, not 6 timeouts
    assert report.error is not None and "in a row" in report.error
    assert h.marked == []
    assert h.refresher.worker.run_now() is False  # the worker sees the failure and backs off
    assert h.refresher.worker.status()["last_error"].startswith(RefreshAborted.__name__)


def test_every_pair_failing_transiently_is_a_failed_run() -> None:
    h = Harness(["A/USDT"], {"A/USDT": 1.0}, source=per_pair_source)
    h.exchange.single_errors["A/USDT"] = ccxt.RequestTimeout("timed out")
    assert h.refresher.refresh().error == "RequestTimeout: timed out"


def test_order_books_are_tried_for_every_pair() -> None:
    tracked = ["A/USDT", "B/USDT", "C/USDT"]
    h = Harness(
        tracked,
        dict.fromkeys(tracked, 10.0),
        needs=PricingNeeds(tickers=False, order_books=True),
    )
    original = h.exchange.order_book

    def order_book(pair: str) -> dict[str, Any]:
        if pair == "A/USDT":
            raise ccxt.RequestTimeout("timed out")
        return original(pair)

    h.exchange.order_book = order_book  # type: ignore[method-assign]
    report = h.refresher.refresh()
    assert set(report.stored) == {"B/USDT", "C/USDT"}
    assert report.retry == {"A/USDT": "RequestTimeout: timed out"}
    assert report.error is None and h.marked == []


@pytest.mark.parametrize("answer", [{}, {"BTC/USDT": {"bid": 1.0}}])
def test_an_empty_or_implausible_batch_is_a_failed_call(answer: dict[str, Any]) -> None:
    """ccxt turns a truncated body into `{}`: that must not read as "every pair delisted"."""
    tracked = ["ETH/USDT", "XRP/USDT", "ADA/USDT", "SOL/USDT", "DOT/USDT"]
    h = Harness(tracked, dict.fromkeys(tracked, 1.0))
    h.exchange.fetch = lambda method, symbols: answer  # type: ignore[method-assign]
    report = h.refresher.refresh()
    assert report.error is not None and "MalformedAnswer" in report.error
    assert h.marked == [] and report.failed == {}
    assert all(h.entry.failing(p) is None for p in tracked)
    assert h.refresher.worker.run_now() is False
    assert h.refresher.worker.status()["last_error"].startswith(RefreshAborted.__name__)


def test_the_worker_counts_and_backs_off_a_malformed_burst_then_resumes() -> None:
    tracked = ["ETH/USDT", "XRP/USDT", "ADA/USDT", "SOL/USDT", "DOT/USDT"]
    h = Harness(tracked, dict.fromkeys(tracked, 1.0))
    real_fetch = h.exchange.fetch
    h.exchange.fetch = lambda method, symbols: {}  # type: ignore[method-assign]
    for _ in range(3):
        assert h.refresher.worker.run_now() is False
    status = h.refresher.status()
    assert status["consecutive_failures"] == 3 and "MalformedAnswer" in status["last_error"]
    h.exchange.fetch = real_fetch  # type: ignore[method-assign]
    assert h.refresher.worker.run_now() is True
    assert set(h.refresher.status()["last_run"]["failed_pairs"]) == set()
    assert all(h.entry.get(p) == 2.0 for p in tracked)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"symbol": "A/USDT", "bid": None, "ask": None, "last": None}, "no price"),
        ("not json", "no price"),
    ],
)
def test_a_per_pair_answer_without_a_price_is_transient(answer: Any, reason: str) -> None:
    h = Harness(["A/USDT", "B/USDT"], {"A/USDT": 1.0, "B/USDT": 2.0}, source=per_pair_source)
    real_fetch = h.exchange.fetch

    def fetch(method: str, symbols: list[str] | None) -> Any:
        return answer if symbols == ["A/USDT"] else real_fetch(method, symbols)

    h.exchange.fetch = fetch  # type: ignore[method-assign]
    report = h.refresher.refresh()
    assert reason in report.retry["A/USDT"]
    assert report.stored == ("B/USDT",) and h.marked == []


def test_an_empty_order_book_is_transient() -> None:
    h = Harness(["A/USDT"], {"A/USDT": 1.0}, needs=PricingNeeds(tickers=False, order_books=True))
    h.exchange.order_book = lambda pair: {"bids": [], "asks": []}  # type: ignore[method-assign]
    report = h.refresher.refresh()
    assert "empty book" in report.retry["A/USDT"] and h.marked == []


def test_errors_outside_ccxt_and_freqtrade_are_transient() -> None:
    assert is_transient_error(AttributeError("'str' object has no attribute 'keys'"))
    assert is_transient_error(MalformedAnswer("empty"))
    assert not is_transient_error(ccxt.BadSymbol("delisted"))
    assert not is_transient_error(PricingError("Entry-Rate for X was empty."))
    assert not is_transient_error(ExchangeError("Pair X not available"))
    # Freqtrade wraps both network and exchange errors in TemporaryError: the cause decides
    try:
        raise TemporaryError("Could not get ticker") from ccxt.RequestTimeout("timed out")
    except TemporaryError as network:
        assert is_transient_error(network)
    try:
        raise TemporaryError("Could not get ticker") from ccxt.BadSymbol("invalid symbol")
    except TemporaryError as refused:
        assert not is_transient_error(refused)


def test_failed_batch_keeps_requests_and_marks_nothing() -> None:
    h = Harness([], {"BTC/USDT": 100, "ETH/USDT": 10})
    h.exchange.batch_error = ccxt.ExchangeNotAvailable("503")
    h.refresher.request([PairSpec("BTC/USDT"), PairSpec("ETH/USDT", is_short=True)])
    h.refresher.refresh()
    assert h.marked == []
    assert h.refresher.status()["pending_requests"] == 2
    assert h.refresher.last_run is not None
    assert h.refresher.last_run.error == "ExchangeNotAvailable: 503"

    h.exchange.batch_error = None
    report = h.refresher.refresh()
    assert set(report.stored) == {"BTC/USDT", "ETH/USDT"}
    assert next(spec for spec, _ in h.stored if spec.pair == "ETH/USDT").is_short is True
    assert h.refresher.status()["pending_requests"] == 0


def test_store_errors_mark_the_pair_failed() -> None:
    h = Harness(["BTC/USDT"], {"BTC/USDT": 100})
    original = h.exchange.ticker
    h.exchange.ticker = lambda pair: {**original(pair), "ask": None}  # type: ignore[method-assign]
    report = h.refresher.refresh()
    assert report.failed == {"BTC/USDT": "PricingError: Entry-Rate for BTC/USDT was empty."}
    assert h.entry.failing("BTC/USDT") is not None


def test_order_book_mode_fetches_books_per_pair() -> None:
    h = Harness(
        ["BTC/USDT", "ETH/USDT"],
        {"BTC/USDT": 100, "ETH/USDT": 10},
        needs=PricingNeeds(tickers=False, order_books=True),
    )
    report = h.refresher.refresh()
    assert h.exchange.calls == [
        ("fetch_l2_order_book", ["BTC/USDT"]),
        ("fetch_l2_order_book", ["ETH/USDT"]),
    ]
    assert report.method == "fetch_l2_order_book"
    assert all(data.order_book is not None and data.ticker is None for _, data in h.stored)
    assert h.entry.get("ETH/USDT") == 11


def test_requests_are_deduplicated_and_bounded() -> None:
    h = Harness([], {})
    refresher = RateRefresher(
        pairs_provider=list,
        needs_refresh=lambda ps: ps,
        choose_source=lambda ps, last: choose_ticker_source(ccxt.okx(), ps, need_last=last),
        fetch=h.exchange.fetch,
        store_rates=h.store,
        mark_failed=h.mark_failed,
        max_pending=3,
    )
    refresher.request([PairSpec("A"), PairSpec("A"), PairSpec("B")])
    refresher.request([PairSpec("B"), PairSpec("C"), PairSpec("D"), PairSpec("E")])
    status = refresher.status()
    assert status["pending_requests"] == 3
    assert status["dropped_requests"] == 2
    assert status["next_run_in_s"] == 0  # triggered
    with pytest.raises(ValueError):
        RateRefresher(
            pairs_provider=list,
            needs_refresh=list,
            choose_source=lambda ps, last: TickerSource("per_pair", (), ()),
            fetch=h.exchange.fetch,
            store_rates=h.store,
            mark_failed=h.mark_failed,
            max_pending=0,
        )


def test_reader_request_is_fetched_in_the_background() -> None:
    h = Harness([], {"BTC/USDT": 100})
    h.refresher.start()
    try:
        assert h.entry.read("BTC/USDT").state == "missing"
        h.refresher.request([PairSpec("BTC/USDT")])
        assert h.stored_event.wait(WAIT)
    finally:
        assert h.refresher.stop(WAIT)
    assert h.entry.read("BTC/USDT").rate == 101
    assert h.refresher.status()["runs"] >= 1


@pytest.mark.parametrize(("interval", "cap"), [(0, 60.0), (0.5, 1.0), (5, 5.0), (600, 600.0)])
def test_a_failing_refresh_is_retried_within_one_period(interval: float, cap: float) -> None:
    from freqtrade_ratekit.rates.book import refresh_backoff

    assert refresh_backoff(interval).ceiling(50) == cap
