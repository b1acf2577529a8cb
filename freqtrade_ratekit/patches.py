"""The only module that reaches into Freqtrade internals.

`install()` arms ratekit: it wraps Freqtrade's configuration loader, which validates the
`ratekit` section of every config (a bad section stops the bot before it trades) and, when
`ratekit.enabled` is true, activates the feature patches below. With the section absent or
disabled, nothing but the (transparent) loader wrapper is patched: Freqtrade runs as stock.
`uninstall()` restores every attribute it replaced, in reverse order. Both are idempotent.

Hook points, verified on every supported Freqtrade version (see SUPPORTED_FREQTRADE):
- `Configuration.load_config`            validation and activation
- `Exchange._init_ccxt`                  weight accounting on every ccxt client (sync, async, ws)
- `Exchange.__init__` / `Exchange.close` rate caches and their refresher, clean stop
- `Exchange.get_rate`                    reader paths served from memory, failing pairs remembered
- `RPC._rpc_trade_status` / `_rpc_trade_statistics`  mark REST/Telegram reads as reader paths;
                                         /profit served from a background-refreshed snapshot
- SQLAlchemy `Session` after_flush/after_commit events  a committed write refreshes it
- `freqtrade.rpc.rpc.CryptoToFiatConverter`  background fiat conversion
- `FreqtradeBot.startup` / whitelist     pre-warm triggers
- `ApiServer.configure_app`              the ratekit routes, behind Freqtrade's own auth
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from freqtrade_ratekit import runtime
from freqtrade_ratekit.config import RatekitConfigError, RatekitSettings, validate_bot_config
from freqtrade_ratekit.snapshots import ReaderSnapshots

logger = logging.getLogger(__name__)

SUPPORTED_FREQTRADE = ((2025, 12), (2026, 9))
"""Oldest and newest Freqtrade release (year, month) this version was tested on."""

_reader = contextvars.ContextVar("ratekit_reader_path", default=False)


@dataclass
class _Patch:
    owner: Any
    name: str
    original: Any
    had_own: bool


class _Patcher:
    """Records every replaced attribute (and event listener) so that uninstall puts back
    exactly what was there."""

    def __init__(self) -> None:
        self._patches: list[_Patch | Callable[[], None]] = []

    def replace(self, owner: Any, name: str, new: Any) -> None:
        had_own = name in vars(owner)
        self._patches.append(_Patch(owner, name, getattr(owner, name), had_own))
        setattr(owner, name, new)

    def listen(self, target: Any, identifier: str, listener: Callable[..., Any]) -> None:
        """An SQLAlchemy event listener, removed again by `restore_all`."""
        from sqlalchemy import event

        event.listen(target, identifier, listener)
        self._patches.append(lambda: event.remove(target, identifier, listener))

    def restore_all(self) -> None:
        while self._patches:
            patch = self._patches.pop()
            if not isinstance(patch, _Patch):
                patch()
            elif patch.had_own:
                setattr(patch.owner, patch.name, patch.original)
            else:
                delattr(patch.owner, patch.name)

    def __bool__(self) -> bool:
        return bool(self._patches)


_lock = threading.RLock()
_armed = _Patcher()
_active = _Patcher()


def freqtrade_version() -> str:
    import freqtrade

    return str(freqtrade.__version__)


def parse_version(version: str) -> tuple[int, int] | None:
    match = re.match(r"^(\d{4})\.(\d{1,2})", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def version_supported(version: str) -> bool:
    parsed = parse_version(version)
    return parsed is not None and SUPPORTED_FREQTRADE[0] <= parsed <= SUPPORTED_FREQTRADE[1]


def supported_range_text() -> str:
    (y0, m0), (y1, m1) = SUPPORTED_FREQTRADE
    return f"{y0}.{m0} to {y1}.{m1}"


def freqtrade_subcommands() -> list[str]:
    """Freqtrade's CLI subcommands, read from its own argument parser (for `--help`)."""
    from argparse import _SubParsersAction

    from freqtrade.commands.arguments import Arguments

    arguments = Arguments([])
    arguments._build_subcommands()
    for action in arguments.parser._actions:
        if isinstance(action, _SubParsersAction):
            return list(action.choices)
    raise LookupError("Freqtrade's parser has no subcommands")


def is_installed() -> bool:
    return bool(_armed)


def is_active() -> bool:
    return bool(_active)


def install() -> bool:
    """Arm ratekit; returns False (and patches nothing) on an unsupported Freqtrade version."""
    with _lock:
        if _armed:
            return True
        version = freqtrade_version()
        if not version_supported(version):
            logger.error(
                "ratekit %s does not support Freqtrade %s (supported: %s); "
                "nothing was patched, Freqtrade runs as stock.",
                _own_version(),
                version,
                supported_range_text(),
            )
            return False
        from freqtrade.configuration import Configuration

        _armed.replace(Configuration, "load_config", _wrap_load_config(Configuration.load_config))
        return True


def uninstall() -> None:
    """Stop ratekit's workers and restore every patched attribute."""
    with _lock:
        runtime.replace(None)
        _active.restore_all()
        _armed.restore_all()


def _own_version() -> str:
    from freqtrade_ratekit import __version__

    return __version__


def _config_error(exc: RatekitConfigError) -> Exception:
    """A Freqtrade OperationalException, so `freqtrade` exits non-zero with the message."""
    from freqtrade.exceptions import OperationalException

    return OperationalException(str(exc))


def _wrap_load_config(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def load_config(self: Any) -> dict[str, Any]:
        config = original(self)
        try:
            settings = validate_bot_config(config)
        except RatekitConfigError as exc:
            raise _config_error(exc) from None
        if settings.enabled:
            activate(settings)
        elif not _active:
            logger.info("ratekit is disabled for this config: Freqtrade runs unpatched")
        return config

    return load_config


def settings_of(config: dict[str, Any]) -> RatekitSettings | None:
    """The enabled settings of a Freqtrade config, or None when ratekit is off for it."""
    try:
        settings = validate_bot_config(config)
    except RatekitConfigError:
        return None
    return settings if settings.enabled else None


def activate(settings: RatekitSettings) -> None:
    """Install the feature patches (once) and start a fresh runtime for this config."""
    with _lock:
        if not _armed:
            raise RuntimeError("freqtrade_ratekit.install() must run before activate()")
        runtime.replace(runtime.Runtime(settings=settings, freqtrade_version=freqtrade_version()))
        if _active:
            return
        _patch_api_server()
        _patch_reader_paths()
        _patch_weights()
        _patch_fiat()
        _patch_rates()
        logger.info("ratekit %s active (Freqtrade %s)", _own_version(), freqtrade_version())


# --- reader paths -------------------------------------------------------------------------


def is_reader_path() -> bool:
    """True inside a REST / Telegram / webhook read, where the network must never be awaited."""
    return _reader.get()


@contextmanager
def reader_path() -> Iterator[None]:
    token = _reader.set(True)
    try:
        yield
    finally:
        _reader.reset(token)


def _as_reader(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reader_path():
            return original(*args, **kwargs)

    return wrapper


READER_METHODS = ("_rpc_trade_status", "_rpc_trade_statistics")
"""RPC methods behind /status, /profit (REST and Telegram) that read rates with refresh=False.

Both catch PricingError and show NaN, so a miss can answer at once. FreqtradeBot._notify_exit
also reads with refresh=False but does not catch it, after the exit order is placed: it stays
a trading read (its rate was fetched with refresh=True moments before, so it is a fresh hit).
"""


def _patch_reader_paths() -> None:
    import inspect

    from freqtrade.rpc.rpc import RPC
    from sqlalchemy.orm import Session

    for name in READER_METHODS:
        _active.replace(RPC, name, _as_reader(getattr(RPC, name)))
    statistics = RPC._rpc_trade_statistics
    signature = inspect.signature(statistics)

    @functools.wraps(statistics)
    def _rpc_trade_statistics(self: Any, *args: Any, **kwargs: Any) -> Any:
        def compute() -> Any:
            _preload_open_trade_orders()
            return statistics(self, *args, **kwargs)

        snapshots = _reader_snapshots()
        if snapshots is None:
            return compute()
        call = signature.bind(self, *args, **kwargs)
        call.apply_defaults()
        key = profit_snapshot_key(call.arguments)
        if key is None:
            return compute()
        _, stake, fiat, direction = key
        label = f"profit {stake}/{fiat or '-'}" + (f" {direction}" if direction else "")
        return snapshots.read(key, compute, label)

    _active.replace(RPC, "_rpc_trade_statistics", _rpc_trade_statistics)
    _active.listen(Session, "after_flush", _note_write)
    _active.listen(Session, "after_commit", _invalidate_if_written)
    _active.listen(Session, "after_rollback", _forget_write)


def profit_snapshot_key(arguments: Mapping[str, Any]) -> tuple[str, Any, Any, Any] | None:
    """Which /profit snapshot a `_rpc_trade_statistics` call reads, None when it has to be
    computed. Telegram's plain /profit passes the epoch, stock's own default for "no start";
    a real start date (`/profit 7`) moves with the clock: nothing to reuse."""
    start_date = arguments.get("start_date")
    if start_date is not None and start_date.timestamp() != 0:
        return None
    return (
        "profit",
        arguments.get("stake_currency"),
        arguments.get("fiat_display_currency"),
        arguments.get("direction"),
    )


_WROTE = "ratekit_wrote"


def _note_write(session: Any, _flush_context: Any) -> None:
    session.info[_WROTE] = True


def _forget_write(session: Any) -> None:
    session.info.pop(_WROTE, None)


def _invalidate_if_written(session: Any) -> None:
    """A commit that wrote something (the bot's loop, a force-exit) changes what /profit shows."""
    if session.info.pop(_WROTE, False):
        rt = runtime.current()
        if rt is not None and isinstance(rt.readers, ReaderSnapshots):
            rt.readers.invalidate()


def _precompute_profit(bot: Any) -> None:
    """Compute the REST API's /profit once after start-up, so that its first reader is
    served from memory too. Runs in a background thread; failures only cost that."""
    rpc = getattr(getattr(bot, "rpc", None), "_rpc", None)
    if rpc is None or _reader_snapshots() is None:
        return
    try:
        rpc._rpc_trade_statistics(
            bot.config["stake_currency"], bot.config.get("fiat_display_currency")
        )
    except Exception as exc:
        logger.warning("ratekit: computing /profit after start-up failed: %s", exc)
    finally:
        _release_thread_session()


def _release_thread_session() -> None:
    """End the calling thread's database session (a worker's own, never a request's or the
    bot's). `Trade.session` is looked up on each call: `init_db` may have replaced it."""
    from freqtrade.persistence import Trade

    Trade.session.remove()


def _reader_snapshots() -> ReaderSnapshots | None:
    """The current bot's snapshots of reader answers, started on first use; None when off."""
    rt = runtime.current()
    if rt is None or not rt.settings.readers.snapshot:
        return None
    if isinstance(rt.readers, ReaderSnapshots):
        return rt.readers
    with _lock:
        if not isinstance(rt.readers, ReaderSnapshots):
            snapshots = ReaderSnapshots(
                max_age=rt.settings.readers.max_age, after_background=_release_thread_session
            )
            snapshots.start()
            rt.readers = snapshots
            rt.on_stop(snapshots.stop)
        return rt.readers


def _preload_open_trade_orders() -> None:
    """Load every open trade's orders in one query before /profit reads them.

    Freqtrade queries the trades without their orders, then reads each open trade's orders:
    one lazy query per trade, most of a 200-trade /profit. Loading them here puts the orders
    in the request's session, where the statistics query finds them already loaded. Closed
    trades' orders are not read by /profit and stay unloaded.
    """
    from freqtrade.persistence import Trade
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    query = select(Trade).filter(Trade.is_open.is_(True)).options(selectinload(Trade.orders))
    Trade.session.scalars(query).all()


# --- weights ------------------------------------------------------------------------------


def _trading(config: dict[str, Any]) -> bool:
    from freqtrade.enums import TRADE_MODES

    return config.get("runmode") in TRADE_MODES


def _runtime_for(settings: RatekitSettings) -> runtime.Runtime:
    current = runtime.current()
    if current is None:
        current = runtime.Runtime(settings=settings, freqtrade_version=freqtrade_version())
        runtime.replace(current)
    return current


def _patch_weights() -> None:
    """Charge every ccxt REST call of a trading bot (sync, async and ws clients) to its pools."""
    from freqtrade.exchange import Exchange

    original = Exchange._init_ccxt

    @functools.wraps(original)
    def _init_ccxt(
        self: Any, exchange_config: dict[str, Any], sync: bool, ccxt_kwargs: dict[str, Any]
    ) -> Any:
        api = original(self, exchange_config, sync, ccxt_kwargs)
        settings = settings_of(self._config)
        if settings is not None and settings.weights.mode != "off" and _trading(self._config):
            from freqtrade_ratekit.weights import instrument

            ledger = _ledger_for(settings, api, exchange_config, self.trading_mode.value)
            instrument(api, ledger)
        return api

    _active.replace(Exchange, "_init_ccxt", _init_ccxt)


def _ledger_for(
    settings: RatekitSettings, api: Any, exchange_config: dict[str, Any], trading_mode: str
) -> Any:
    """One ledger per bot and exchange, shared by its sync, async and websocket clients."""
    from freqtrade.exceptions import OperationalException

    from freqtrade_ratekit.weights import (
        Ledger,
        MemoryBackend,
        RedisBackend,
        preset_for,
        scope_digest,
    )

    rt = _runtime_for(settings)
    with _lock:
        ledger = rt.weights
        if isinstance(ledger, Ledger) and ledger.preset.exchange_id == api.id:
            return ledger
        weights = settings.weights
        try:
            preset = preset_for(
                api.id,
                trading_mode=trading_mode,
                name=weights.preset,
                rate_limit_ms=api.rateLimit,
                pools=weights.pools,
                endpoints=weights.endpoints,
            )
            if preset.fallback:
                logger.warning("ratekit: %s", preset.message)
            backend: Any
            if weights.uses_redis:
                account = exchange_config.get("key") or exchange_config.get("apiKey") or "no-key"
                backend = RedisBackend(
                    weights.backend,
                    exchange=api.id,
                    ip_scope_id=scope_digest("ip", weights.scope_id),
                    account_scope_id=scope_digest("account", api.id, account),
                    expected_bots=weights.expected_bots,
                    socket_timeout_s=weights.redis_timeout,
                )
                rt.on_stop(backend.close)
            else:
                backend = MemoryBackend()
            ledger = Ledger(preset, mode=weights.mode, headroom=weights.headroom, backend=backend)
        except (ValueError, KeyError, OverflowError) as exc:
            # the messages name the pool, URL (masked) or setting; a bad section stops the bot
            raise OperationalException(f"ratekit.weights: {exc}") from None
        rt.weights = ledger
        rt.exchange_id = api.id
        logger.info(
            "ratekit weights: preset %s, mode %s, headroom %.0f%%, backend %s",
            preset.name,
            weights.mode,
            weights.headroom * 100,
            backend.status().kind,
        )
        return ledger


# --- rates --------------------------------------------------------------------------------


def _patch_rates() -> None:
    from freqtrade.exchange import Exchange
    from freqtrade.freqtradebot import FreqtradeBot

    original_init = Exchange.__init__
    original_get_rate = Exchange.get_rate
    original_close = Exchange.close
    original_startup = FreqtradeBot.startup
    original_whitelist = FreqtradeBot._refresh_active_whitelist

    @functools.wraps(original_init)
    def __init__(self: Any, config: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, config, *args, **kwargs)
        settings = settings_of(self._config)
        if settings is not None and _trading(self._config):
            _attach_rate_book(self, settings, original_get_rate)

    @functools.wraps(original_get_rate)
    def get_rate(
        self: Any,
        pair: str,
        refresh: bool,
        side: str,
        is_short: bool,
        order_book: Any = None,
        ticker: Any = None,
    ) -> float:
        book = self.__dict__.get("_ratekit_rates")
        if book is None:
            return original_get_rate(self, pair, refresh, side, is_short, order_book, ticker)
        if not refresh and (cached := _serve_from_memory(book, pair, side, is_short)):
            return cached
        try:
            return original_get_rate(self, pair, refresh, side, is_short, order_book, ticker)
        except Exception as exc:
            _remember_failure(book, pair, exc)
            raise

    @functools.wraps(original_close)
    def close(self: Any) -> None:
        book = self.__dict__.get("_ratekit_rates")
        if book is not None:
            book.stop()
        original_close(self)

    @functools.wraps(original_startup)
    def startup(self: Any) -> None:
        original_startup(self)
        book = self.exchange.__dict__.get("_ratekit_rates")
        profit = functools.partial(_precompute_profit, self)
        if book is not None and book.settings.prewarm:
            # the database is up now: open trades are known; /profit once their rates are in
            book.prewarm_in_background(then=profit)
        else:
            threading.Thread(target=profit, name="ratekit-profit", daemon=True).start()

    @functools.wraps(original_whitelist)
    def _refresh_active_whitelist(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        whitelist = original_whitelist(self, *args, **kwargs)
        book = self.exchange.__dict__.get("_ratekit_rates")
        if book is not None and book.set_whitelist(whitelist) and book.settings.prewarm_whitelist:
            book.prewarm_in_background()
        return whitelist

    _active.replace(Exchange, "__init__", __init__)
    _active.replace(Exchange, "get_rate", get_rate)
    _active.replace(Exchange, "close", close)
    _active.replace(FreqtradeBot, "startup", startup)
    _active.replace(FreqtradeBot, "_refresh_active_whitelist", _refresh_active_whitelist)


def _serve_from_memory(book: Any, pair: str, side: str, is_short: bool) -> float | None:
    """Rules 2 and 4 for reader reads; None falls through to stock get_rate.

    A reader (REST, Telegram: both catch PricingError and show NaN) gets a fresh or stale
    rate from memory, or a PricingError at once while the pair is fetched in the background;
    a pair that failed within the negative TTL gets the remembered error. Every other
    `refresh=False` read is the bot's own (a fill or exit notification, which catches
    nothing): it goes through stock, which answers a fresh cached rate or fetches, so ratekit
    never raises there an error that stock would not have raised.
    """
    from freqtrade.exceptions import PricingError

    if not is_reader_path():
        return None
    hit = book.reader_rate(pair, side, is_short)
    if hit.rate is not None:
        return float(hit.rate)
    reason = hit.error or "not cached yet, fetching in the background"
    raise PricingError(f"{side.capitalize()}-Rate for {pair}: {reason}")


def _remember_failure(book: Any, pair: str, exc: Exception) -> None:
    """Negative-cache a pair only on the exchange's word (`ExchangeError`: not available,
    bad symbol). A PricingError ("rate was empty") may be one malformed answer: not a verdict."""
    from freqtrade.exceptions import ExchangeError

    from freqtrade_ratekit.rates.refresher import is_transient_error
    from freqtrade_ratekit.workers import describe_error

    if isinstance(exc, ExchangeError) and not is_transient_error(exc):
        book.mark_failed(pair, describe_error(exc))


def _attach_rate_book(exchange: Any, settings: RatekitSettings, stock_get_rate: Any) -> None:
    """Replace the exchange's two FtTTLCaches with ratekit's, and build their refresher."""
    from freqtrade.persistence import Trade

    from freqtrade_ratekit.rates.book import RateBook
    from freqtrade_ratekit.rates.refresher import PairSpec, pricing_needs
    from freqtrade_ratekit.rates.sources import choose_ticker_source

    config = exchange._config
    api = exchange._api

    def open_trades() -> list[PairSpec]:
        if getattr(Trade, "session", None) is None:  # no database (yet): no open trades
            return []
        try:
            return [PairSpec(t.pair, bool(t.is_short)) for t in Trade.get_open_trades()]
        finally:
            Trade.session.remove()  # the refresher thread's own session, never the bot's

    def fetch(method: str, symbols: list[str] | None) -> Any:
        if method == "fetch_ticker":
            return api.fetch_ticker(symbols[0] if symbols else None)
        return getattr(api, method)(symbols)

    def fetch_order_book(pair: str) -> Any:
        top = max(
            config.get("entry_pricing", {}).get("order_book_top", 1),
            config.get("exit_pricing", {}).get("order_book_top", 1),
        )
        return exchange.fetch_l2_order_book(pair, top)

    def store_rates(spec: PairSpec, data: Any) -> None:
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

    def choose_source(pairs: list[str], need_last: bool) -> Any:
        return choose_ticker_source(
            api,
            pairs,
            need_last=need_last,
            tickers_have_bid_ask=exchange._ft_has.get("tickers_have_bid_ask", True),
        )

    book = RateBook(
        settings.rate_cache,
        open_trades=open_trades,
        choose_source=choose_source,
        fetch=fetch,
        fetch_order_book=fetch_order_book,
        store_rates=store_rates,
        pricing=lambda: pricing_needs(
            config.get("entry_pricing", {}), config.get("exit_pricing", {})
        ),
    )
    with exchange._cache_lock:
        exchange._entry_rate_cache = book.caches["entry"]
        exchange._exit_rate_cache = book.caches["exit"]
    exchange._ratekit_rates = book
    book.start()  # readers' background fetches work even before (or without) bot startup
    rt = _runtime_for(settings)
    rt.rate_cache = book
    rt.exchange_id = api.id
    rt.on_stop(book.stop)


# --- fiat ---------------------------------------------------------------------------------


def _patch_fiat() -> None:
    """RPC builds its converter through this module global: hand it the background one."""
    from freqtrade.rpc import rpc as rpc_module

    stock_converter = rpc_module.CryptoToFiatConverter

    def converter_for(config: dict[str, Any]) -> Any:
        settings = settings_of(config)
        if settings is None or not settings.fiat.background_refresh:
            return stock_converter(config)
        return _background_fiat(settings, config)

    _active.replace(rpc_module, "CryptoToFiatConverter", converter_for)


def _background_fiat(settings: RatekitSettings, config: dict[str, Any]) -> Any:
    """One converter per bot (stock's is a singleton too), started once, stopped with the bot."""
    from freqtrade.constants import SUPPORTED_FIAT
    from freqtrade.rpc.fiat_convert import coingecko_mapping

    from freqtrade_ratekit.fiat.converter import BackgroundFiatConverter

    rt = _runtime_for(settings)
    with _lock:
        if isinstance(rt.fiat, BackgroundFiatConverter):
            return rt.fiat
        fiat = settings.fiat
        coingecko = config.get("coingecko", {})
        converter = BackgroundFiatConverter(
            base_url=fiat.coingecko_url,
            api_key=coingecko.get("api_key", ""),
            is_demo=coingecko.get("is_demo", True),
            refresh_interval=fiat.refresh_interval,
            stale_after=fiat.stale_after,
            coin_list_path=fiat.resolved_coin_list_path(config.get("user_data_dir")),
            coin_list_max_age=fiat.coin_list_max_age,
            supported_fiat=SUPPORTED_FIAT,
            symbol_overrides=coingecko_mapping,
            timeout=fiat.timeout,
            shared_store=_shared_fiat_store(settings, rt),
        )
        converter.start()
        rt.fiat = converter
        rt.on_stop(converter.stop)
        return converter


def _shared_fiat_store(settings: RatekitSettings, rt: runtime.Runtime) -> Any:
    """With a Redis weights backend, N bots share one CoinGecko refresh per period."""
    if not settings.weights.uses_redis:
        return None
    import redis

    from freqtrade_ratekit.fiat.store import RedisFiatStore

    client = redis.Redis.from_url(
        settings.weights.backend,
        socket_timeout=settings.weights.redis_timeout,
        socket_connect_timeout=settings.weights.redis_timeout,
        retry_on_timeout=False,
    )
    rt.on_stop(client.close)
    return RedisFiatStore(client)


# --- REST API -----------------------------------------------------------------------------


def _patch_api_server() -> None:
    from freqtrade.rpc.api_server.webserver import ApiServer

    original = ApiServer.configure_app

    @functools.wraps(original)
    def configure_app(self: Any, app: Any, config: dict[str, Any]) -> None:
        original(self, app, config)
        settings = settings_of(config)
        if settings is not None and settings.api_enabled:
            mount_routes(app)

    _active.replace(ApiServer, "configure_app", configure_app)


def mount_routes(app: Any) -> None:
    """Mount the ratekit router ahead of Freqtrade's UI catch-all, behind Freqtrade's auth."""
    from fastapi import Depends
    from freqtrade.rpc.api_server.api_auth import http_basic_or_jwt_token

    from freqtrade_ratekit.api import router

    before = len(app.router.routes)
    app.include_router(router, prefix="/api/v1", dependencies=[Depends(http_basic_or_jwt_token)])
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added


# --- CoinGecko ----------------------------------------------------------------------------


def redirect_coingecko(url: str) -> None:
    """Point stock Freqtrade's CoinGecko client at `url` (an emulator, proxy or mirror).

    Used for the stock side of benchmarks and tests; changes nothing else.
    """
    from freqtrade.util.coin_gecko import FtCoinGeckoApi

    base = url.rstrip("/") + "/"
    original = FtCoinGeckoApi.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.api_base_url = base

    setattr(FtCoinGeckoApi, "__init__", __init__)  # noqa: B010 - mypy forbids assigning __init__
