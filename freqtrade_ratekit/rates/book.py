"""The rates of one exchange: entry and exit caches, their refresher, reader answers, figures.

Plain code: the Freqtrade-specific parts (open trades, ccxt calls, the stock rate formula)
come in as callables (built by `wiring.build_rate_book`), so this is testable without a bot.

Threads: the refresher's worker, every pre-warm thread and the trading batch's call belong to
the book; `stop()` ends and joins them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from freqtrade_ratekit.config import RateCacheSettings
from freqtrade_ratekit.documents import RatekitRateBook
from freqtrade_ratekit.rates.cache import CachedRate, RateCache
from freqtrade_ratekit.rates.refresher import (
    MarketData,
    PairSpec,
    PricingNeeds,
    RateRefresher,
    RefreshReport,
    pairs_due,
)
from freqtrade_ratekit.rates.sources import TickerSource
from freqtrade_ratekit.rates.trading_batch import TradingBatch
from freqtrade_ratekit.workers import Backoff, join_thread

logger = logging.getLogger(__name__)

SIDES = ("entry", "exit")

JOIN_TIMEOUT_S = 5.0
"""How long `stop()` waits for a pre-warm in flight (one batched exchange call)."""


def refresh_backoff(refresh_interval: float) -> Backoff:
    """A failing refresh is retried no later than one period after its failure: a fault that
    ends is over for the rates within one `refresh_interval` (60 s at most without a period)."""
    return Backoff(base=1.0, cap=max(1.0, refresh_interval) if refresh_interval > 0 else 60.0)


class RateBook:
    """Both side caches of one exchange and the background work that keeps them warm."""

    def __init__(
        self,
        settings: RateCacheSettings,
        *,
        open_trades: Callable[[], Iterable[PairSpec]],
        choose_source: Callable[[list[str], bool], TickerSource],
        fetch: Callable[[str, list[str] | None], Any],
        fetch_order_book: Callable[[str], Any],
        store_rates: Callable[[PairSpec, MarketData], None],
        pricing: Callable[[], PricingNeeds],
        trading: TradingBatch,
    ) -> None:
        self.settings = settings
        self.trading = trading
        self.caches = {
            side: RateCache(
                maxsize=settings.maxsize,
                ttl=settings.ttl,
                stale_ttl=settings.stale_ttl,
                negative_ttl=settings.negative_ttl,
                name=side,
            )
            for side in SIDES
        }
        self._open_trades = open_trades
        self._whitelist: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._prewarms: set[threading.Thread] = set()
        self._stopping = False
        self.last_prewarm: RefreshReport | None = None
        # refresh pairs that would go stale before the next periodic run
        self._horizon = min(settings.ttl, settings.refresh_interval * 1.5)
        self.refresher = RateRefresher(
            pairs_provider=self.tracked_pairs,
            needs_refresh=self._due,
            choose_source=choose_source,
            fetch=fetch,
            fetch_order_book=fetch_order_book,
            store_rates=store_rates,
            mark_failed=self.mark_failed,
            pricing=pricing,
            interval=settings.refresh_interval,
            backoff=refresh_backoff(settings.refresh_interval),
            name="ratekit-rates",
        )

    # -- reads -----------------------------------------------------------------------------
    def reader_rate(self, pair: str, side: str, is_short: bool) -> CachedRate:
        """What a REST/Telegram reader is shown: from memory only; misses fetched later."""
        hit = self.caches[side].read(pair)
        if hit.state != "fresh":
            self.refresher.request([PairSpec(pair, is_short)])
        return hit

    def _due(self, pairs: list[str]) -> list[str]:
        return pairs_due(self.caches.values(), pairs, horizon=self._horizon)

    def batch_pairs(self, pairs: Iterable[str]) -> list[str]:
        """`pairs` without those inside their negative TTL: one bad symbol in a `symbols`
        list can make the exchange reject the whole batch (Binance: -1121 Invalid symbol).
        Their trading reads go to stock's per-pair fetch, as before."""
        wanted = list(dict.fromkeys(pairs))
        failing: set[str] = set()
        for cache in self.caches.values():
            failing |= cache.failing_among(wanted)
        return [pair for pair in wanted if pair not in failing]

    def mark_failed(self, pair: str, error: str) -> None:
        for cache in self.caches.values():
            cache.mark_failed(pair, error)

    # -- what to keep warm -----------------------------------------------------------------
    def tracked_pairs(self) -> list[PairSpec]:
        specs = list(self._open_trades())
        if self.settings.prewarm_whitelist:
            with self._lock:
                whitelist = self._whitelist
            specs.extend(PairSpec(pair) for pair in whitelist)
        return specs

    def set_whitelist(self, pairs: Iterable[str]) -> bool:
        """Remember the active whitelist; True when it changed."""
        new = tuple(pairs)
        with self._lock:
            changed, self._whitelist = new != self._whitelist, new
        return changed

    # -- background work -------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._stopping = False
        self.refresher.start()
        self.trading.start()

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Stop the refresher and join it and every pre-warm thread (up to `timeout` s each:
        a call in flight is not interrupted). True when they all ended."""
        with self._lock:
            self._stopping = True
            prewarms = list(self._prewarms)
        ended = self.refresher.stop(timeout)
        ended = self.trading.stop(timeout) and ended
        for thread in prewarms:
            ended = join_thread(thread, timeout) and ended
        return ended

    def prewarm(self) -> RefreshReport:
        report = self.refresher.refresh()
        self.last_prewarm = report
        logger.info(
            "ratekit pre-warm: %d of %d pairs in %.2f s via %s%s",
            len(report.stored),
            len(report.requested),
            report.seconds,
            report.method,
            f" ({len(report.failed)} failing)" if report.failed else "",
        )
        return report

    def prewarm_in_background(self, then: Callable[[], None] | None = None) -> None:
        """Pre-warm in a thread of its own; `then` runs in it afterwards, with the rates in.

        The thread is the book's: `stop()` joins it (and a stopped book starts none)."""
        with self._lock:
            if self._stopping:
                return
            thread = threading.Thread(
                target=self._prewarm_quietly, args=(then,), name="ratekit-prewarm", daemon=True
            )
            self._prewarms.add(thread)
            thread.start()

    def _prewarm_quietly(self, then: Callable[[], None] | None) -> None:
        try:
            try:
                self.prewarm()
            except Exception as exc:  # the periodic refresher retries with backoff
                logger.warning("ratekit pre-warm failed: %s", exc)
            if then is not None and not self._stopping:
                then()
        finally:
            with self._lock:
                self._prewarms.discard(threading.current_thread())

    # -- figures ---------------------------------------------------------------------------
    def snapshot(self) -> RatekitRateBook:
        last_run = self.refresher.last_run
        return {
            "sides": {side: cache.snapshot() for side, cache in self.caches.items()},
            "last_prewarm": self.last_prewarm.as_dict() if self.last_prewarm else None,
            "last_refresh": last_run.as_dict() if last_run else None,
            "refresher": self.refresher.status(),
            "trading": self.trading.snapshot(),
            "settings": {
                "maxsize": self.settings.maxsize,
                "ttl": self.settings.ttl,
                "stale_ttl": self.settings.stale_ttl,
                "negative_ttl": self.settings.negative_ttl,
                "refresh_interval": self.settings.refresh_interval,
                "prewarm_whitelist": self.settings.prewarm_whitelist,
                "trading_batch": self.settings.trading_batch,
                "trading_max_age": self.settings.trading_max_age,
                "stream": self.settings.stream,
            },
        }
