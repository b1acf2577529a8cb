"""Target the exchange: weight accounting on every ccxt client (`Exchange._init_ccxt`), the
rate caches and their refresher (`Exchange.__init__` / `get_rate` / `close`), the pre-warm
triggers of the running bot (`FreqtradeBot.startup` / `_refresh_active_whitelist`), and the
batched pricing of its iterations (`FreqtradeBot.process`, `Exchange.get_rate` / `get_rates`).

Only a trading bot (dry or live) gets the rate caches and the trading batch; a command that
does not trade gets weight accounting only, at the lowest priority (`patches/commands.py`). The
components are built by `wiring`.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from freqtrade_ratekit import runtime, wiring
from freqtrade_ratekit.patches._patcher import LOCK, PATCHER
from freqtrade_ratekit.patches._state import active_runtime, trading
from freqtrade_ratekit.patches.commands import instrument_command
from freqtrade_ratekit.patches.readers import (
    is_reader_path,
    precompute_profit,
    release_thread_session,
)
from freqtrade_ratekit.rates.book import RateBook
from freqtrade_ratekit.rates.refresher import MarketData, PairSpec, is_transient_error
from freqtrade_ratekit.rates.trading_batch import (
    TradingBatch,
    book_top_from_ticker,
    needs_last_price,
    servable_side,
)
from freqtrade_ratekit.weights import Ledger
from freqtrade_ratekit.workers import describe_error, join_thread

logger = logging.getLogger(__name__)

TARGET = PATCHER.target("exchange")

PROFIT_JOIN_TIMEOUT_S = 5.0
"""How long stopping waits for the start-up /profit computation (a database read)."""

_BOOK = "_ratekit_rates"
"""The `Exchange` attribute that holds its rate book (see `rate_book_of`)."""

_iteration: contextvars.ContextVar[TradingBatch | None] = contextvars.ContextVar(
    "ratekit_trading_iteration", default=None
)
"""The trading batch of the bot iteration running in this thread (None outside `process`):
only the bot's own loop is priced from the batch, never a REST or Telegram thread."""


def _instrument() -> None:
    from freqtrade.exchange import Exchange
    from freqtrade.freqtradebot import FreqtradeBot

    TARGET.replace(Exchange, "_init_ccxt", _wrap_init_ccxt(Exchange._init_ccxt))
    stock_get_rate = Exchange.get_rate
    TARGET.replace(Exchange, "__init__", _wrap_init(Exchange.__init__, stock_get_rate))
    TARGET.replace(Exchange, "get_rate", _wrap_get_rate(stock_get_rate))
    TARGET.replace(Exchange, "get_rates", _wrap_get_rates(Exchange.get_rates, stock_get_rate))
    TARGET.replace(Exchange, "close", _wrap_close(Exchange.close))
    TARGET.replace(FreqtradeBot, "startup", _wrap_startup(FreqtradeBot.startup))
    TARGET.replace(
        FreqtradeBot,
        "_refresh_active_whitelist",
        _wrap_whitelist(FreqtradeBot._refresh_active_whitelist),
    )
    TARGET.replace(FreqtradeBot, "process", _wrap_process(FreqtradeBot.process))


def _uninstrument() -> None:
    TARGET.restore()


# --- weights ------------------------------------------------------------------------------


def _wrap_init_ccxt(original: Any) -> Any:
    """Charge every ccxt REST call of a trading bot (sync, async and ws clients) to its pools;
    a command that does not trade (download-data, ...) is charged at the lowest priority."""

    @functools.wraps(original)
    def _init_ccxt(
        self: Any, exchange_config: dict[str, Any], sync: bool, ccxt_kwargs: dict[str, Any]
    ) -> Any:
        api = original(self, exchange_config, sync, ccxt_kwargs)
        rt = active_runtime()
        if rt is not None and rt.settings.weights.mode != "off" and trading(self._config):
            from freqtrade_ratekit.weights import instrument

            instrument(api, _ledger_for(rt, api, exchange_config, self.trading_mode.value))
        elif rt is not None:
            instrument_command(self, api, exchange_config)
        return api

    return _init_ccxt


def _ledger_for(
    rt: runtime.Runtime, api: Any, exchange_config: dict[str, Any], trading_mode: str
) -> Any:
    """One ledger per bot and exchange, shared by its sync, async and websocket clients."""
    from freqtrade.exceptions import OperationalException

    with LOCK:
        ledger = rt.weights
        if isinstance(ledger, Ledger) and ledger.preset.exchange_id == api.id:
            return ledger
        try:
            ledger = wiring.build_ledger(
                rt.settings,
                exchange_id=api.id,
                trading_mode=trading_mode,
                rate_limit_ms=api.rateLimit,
                account=exchange_config.get("key") or exchange_config.get("apiKey") or "no-key",
                on_stop=rt.on_stop,
            )
        except wiring.WiringError as exc:
            raise OperationalException(str(exc)) from None
        rt.weights = ledger
        rt.exchange_id = api.id
        return ledger


# --- rates --------------------------------------------------------------------------------


def _wrap_init(original: Any, stock_get_rate: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, config: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original(self, config, *args, **kwargs)
        rt = active_runtime()
        if rt is not None and trading(self._config):
            _attach_rate_book(self, rt, stock_get_rate)

    return __init__


def _wrap_get_rate(original: Any) -> Any:
    @functools.wraps(original)
    def get_rate(
        self: Any,
        pair: str,
        refresh: bool,
        side: str,
        is_short: bool,
        order_book: Any = None,
        ticker: Any = None,
    ) -> float:
        book = self.__dict__.get(_BOOK)  # not rate_book_of(): the hot path
        if book is None:
            return original(self, pair, refresh, side, is_short, order_book, ticker)
        if refresh and order_book is None and ticker is None:
            batch = _iteration.get()
            if batch is not None:
                rate = _rate_from_batch(self, batch, original, pair, side, is_short)
                if rate is not None:
                    return rate
        # a reader's rate of 0.0 falls through to stock, which treats it as a miss too
        if (
            not refresh
            and is_reader_path()
            and (cached := _serve_from_memory(book, pair, side, is_short))
        ):
            return cached
        try:
            return original(self, pair, refresh, side, is_short, order_book, ticker)
        except Exception as exc:
            _remember_failure(book, pair, exc)
            raise

    return get_rate


def _wrap_get_rates(original: Any, stock_get_rate: Any) -> Any:
    """Position adjustment prices both sides at once (`get_rates`): from the batch too."""

    @functools.wraps(original)
    def get_rates(self: Any, pair: str, refresh: bool, is_short: bool) -> tuple[float, float]:
        batch = _iteration.get() if refresh else None
        if batch is not None and self.__dict__.get(_BOOK) is not None:
            entry = _rate_from_batch(self, batch, stock_get_rate, pair, "entry", is_short)
            exit_ = _rate_from_batch(self, batch, stock_get_rate, pair, "exit", is_short)
            if entry is not None and exit_ is not None:
                return entry, exit_
        return original(self, pair, refresh, is_short)

    return get_rates


def _rate_from_batch(
    exchange: Any, batch: TradingBatch, stock_get_rate: Any, pair: str, side: str, is_short: bool
) -> float | None:
    """Rule 1: the rate from the iteration's batch, by Freqtrade's own formula (stock
    `get_rate` handed the batched ticker, or the top of the book built from it), when the batch
    is younger than the trading maximum age; None sends the read to stock's per-pair fetch."""
    from freqtrade.exceptions import PricingError

    pricing = exchange._config.get(f"{side}_pricing", {})
    if not servable_side(pricing):
        batch.fell_back("depth")
        return None
    found = batch.lookup(pair)
    if found.ticker is None or found.age is None:
        return None
    price = found.ticker.get(exchange._get_price_side(side, is_short, pricing))
    if not isinstance(price, int | float) or not price > 0:
        batch.fell_back("unusable")
        return None
    use_book = pricing.get("use_order_book", False)
    try:
        rate = stock_get_rate(
            exchange,
            pair,
            True,
            side,
            is_short,
            order_book=book_top_from_ticker(found.ticker) if use_book else None,
            ticker=None if use_book else found.ticker,
        )
    except PricingError:
        batch.fell_back("unusable")
        return None
    batch.served(found.age, found.reason)
    return float(rate)


def _wrap_process(original: Any) -> Any:
    """One bot iteration: its trading reads may use its batch (started by the whitelist hook);
    its duration is a figure."""

    @functools.wraps(original)
    def process(self: Any) -> None:
        book = rate_book_of(self.exchange)
        if book is None:
            return original(self)
        with trading_iteration(book):
            return original(self)

    return process


@contextlib.contextmanager
def trading_iteration(book: RateBook) -> Iterator[TradingBatch]:
    """Marks the calling thread's code as one bot iteration priced by `book`'s batch (which
    the whitelist hook, or the caller, starts with `begin`); records the iteration's duration."""
    token = _iteration.set(book.trading)
    started = time.monotonic()
    try:
        yield book.trading
    finally:
        _iteration.reset(token)
        book.trading.end(time.monotonic() - started)


def _begin_batch(bot: Any, book: RateBook, whitelist: list[str]) -> None:
    """The pairs this iteration prices: open trades (exits, order replacement, position
    adjustment), and the whitelist too when new entries are possible."""
    from freqtrade.enums import State
    from freqtrade.persistence import Trade

    trades = Trade.get_open_trades()
    pairs = [trade.pair for trade in trades]
    if bot.state == State.RUNNING and bot.config["max_open_trades"] > len(trades):
        pairs.extend(whitelist)
    book.trading.begin(book.batch_pairs(pairs))


def _wrap_close(original: Any) -> Any:
    @functools.wraps(original)
    def close(self: Any) -> None:
        book = rate_book_of(self)
        if book is not None:
            book.stop()
        original(self)

    return close


def _wrap_startup(original: Any) -> Any:
    @functools.wraps(original)
    def startup(self: Any) -> None:
        original(self)
        after_startup(self)

    return startup


def after_startup(bot: Any) -> None:
    """The database is up now: open trades are known. Pre-warm their rates, then compute
    /profit once, in the background; the rate book (pre-warm) or the runtime owns the thread."""
    rt = active_runtime()
    if rt is None:
        return
    book = rate_book_of(bot.exchange)
    profit = functools.partial(precompute_profit, bot)
    if book is not None and book.settings.prewarm:
        book.prewarm_in_background(then=profit)
    else:
        thread = threading.Thread(target=profit, name="ratekit-profit", daemon=True)
        thread.start()
        rt.on_stop(functools.partial(join_thread, thread, PROFIT_JOIN_TIMEOUT_S))


def _wrap_whitelist(original: Any) -> Any:
    @functools.wraps(original)
    def _refresh_active_whitelist(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        whitelist = original(self, *args, **kwargs)
        book = rate_book_of(self.exchange)
        if book is None:
            return whitelist
        if book.set_whitelist(whitelist) and book.settings.prewarm_whitelist:
            book.prewarm_in_background()
        if _iteration.get() is book.trading:
            _begin_batch(self, book, whitelist)
        return whitelist

    return _refresh_active_whitelist


def rate_book_of(exchange: Any) -> RateBook | None:
    """The rate book ratekit attached to a Freqtrade `Exchange`, None when it has none."""
    book = exchange.__dict__.get(_BOOK)
    return book if isinstance(book, RateBook) else None


def _serve_from_memory(book: RateBook, pair: str, side: str, is_short: bool) -> float:
    """Rules 2 and 4 for reader reads (`refresh=False` on a reader path).

    A reader (REST, Telegram: both catch PricingError and show NaN) gets a fresh or stale
    rate from memory, or a PricingError at once while the pair is fetched in the background;
    a pair that failed within the negative TTL gets the remembered error. Every other
    `refresh=False` read is the bot's own (a fill or exit notification, which catches
    nothing): it goes through stock, which answers a fresh cached rate or fetches, so ratekit
    never raises there an error that stock would not have raised.
    """
    from freqtrade.exceptions import PricingError

    hit = book.reader_rate(pair, side, is_short)
    if hit.rate is not None:
        return float(hit.rate)
    reason = hit.error or "not cached yet, fetching in the background"
    raise PricingError(f"{side.capitalize()}-Rate for {pair}: {reason}")


def _remember_failure(book: RateBook, pair: str, exc: Exception) -> None:
    """Negative-cache a pair only on the exchange's word (`ExchangeError`: not available,
    bad symbol). A PricingError ("rate was empty") may be one malformed answer: not a verdict."""
    from freqtrade.exceptions import ExchangeError

    if isinstance(exc, ExchangeError) and not is_transient_error(exc):
        book.mark_failed(pair, describe_error(exc))


def _price_stream(exchange: Any, rt: runtime.Runtime) -> Any:
    """The websocket price stream (`rate_cache.stream`), on a ccxt.pro client of its own built
    the way Freqtrade builds its websocket client; None when off, when `exchange.enable_ws` is
    false, or when ccxt.pro does not stream book tickers (or tickers) for this exchange."""
    from freqtrade.misc import deep_merge_dicts

    exchange_conf = exchange._config["exchange"]
    if not rt.settings.rate_cache.stream or not exchange_conf.get("enable_ws", True):
        return None
    pricing = (exchange._config.get("entry_pricing", {}), exchange._config.get("exit_pricing", {}))
    need_last = needs_last_price(pricing)
    method = "watchTickers" if need_last else "watchBidsAsks"
    ccxt_async_config = copy.deepcopy(exchange._ccxt_config)
    ccxt_async_config = deep_merge_dicts(exchange_conf.get("ccxt_config", {}), ccxt_async_config)
    ccxt_async_config = deep_merge_dicts(
        exchange_conf.get("ccxt_async_config", {}), ccxt_async_config
    )

    def make_client() -> Any:
        client = exchange._init_ccxt(exchange_conf, False, copy.deepcopy(ccxt_async_config))
        if exchange._api_async.markets:  # as Freqtrade seeds its own websocket client
            client.set_markets_from_exchange(exchange._api_async)
        return client

    import ccxt.pro

    streaming_class = getattr(ccxt.pro, exchange._api.id, None)
    if streaming_class is None or streaming_class().has.get(method) is not True:
        logger.warning("ratekit: rate_cache.stream is on, but %s has no %s", exchange.name, method)
        return None
    weights = rt.weights if isinstance(rt.weights, Ledger) else None
    return wiring.build_price_stream(
        rt.settings, make_client=make_client, ledger=weights, need_last=need_last
    )


def _attach_rate_book(exchange: Any, rt: runtime.Runtime, stock_get_rate: Any) -> None:
    """Replace the exchange's two FtTTLCaches with ratekit's, and start their refresher."""
    from freqtrade.persistence import Trade

    config = exchange._config

    def open_trades() -> list[PairSpec]:
        if getattr(Trade, "session", None) is None:  # no database (yet): no open trades
            return []
        try:
            return [PairSpec(t.pair, bool(t.is_short)) for t in Trade.get_open_trades()]
        finally:
            release_thread_session()  # the refresher thread's own session, never the bot's

    def fetch_order_book(pair: str) -> Any:
        top = max(
            config.get("entry_pricing", {}).get("order_book_top", 1),
            config.get("exit_pricing", {}).get("order_book_top", 1),
        )
        return exchange.fetch_l2_order_book(pair, top)

    def store_rates(spec: PairSpec, data: MarketData) -> None:
        # Freqtrade's own formula, fed with the batched data: identical to a fresh fetch
        for side in ("entry", "exit"):
            stock_get_rate(
                exchange,
                spec.pair,
                True,
                side,
                spec.is_short,
                order_book=data.order_book,
                ticker=data.ticker,
            )

    book = wiring.build_rate_book(
        rt.settings,
        stream=_price_stream(exchange, rt),
        api=exchange._api,
        open_trades=open_trades,
        fetch_order_book=fetch_order_book,
        store_rates=store_rates,
        entry_pricing=lambda: config.get("entry_pricing", {}),
        exit_pricing=lambda: config.get("exit_pricing", {}),
        tickers_have_bid_ask=exchange._ft_has.get("tickers_have_bid_ask", True),
    )
    with exchange._cache_lock:
        exchange._entry_rate_cache = book.caches["entry"]
        exchange._exit_rate_cache = book.caches["exit"]
    setattr(exchange, _BOOK, book)
    book.start()  # readers' background fetches work even before (or without) bot startup
    rt.rate_cache = book
    rt.exchange_id = exchange._api.id
    rt.on_stop(book.stop)
