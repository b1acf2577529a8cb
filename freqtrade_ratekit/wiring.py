"""Builds ratekit's components from its settings: no Freqtrade import, testable alone.

`patches/` gathers what only Freqtrade knows (the exchange's ccxt client and id, its open
trades, its stock rate formula, its coingecko section and fiat tables) and hands it here as
plain values and callables. Everything a component needs to be torn down again (a Redis
client, a backend's connection) is registered through `on_stop` (the runtime's, in the bot),
so whoever owns the component's life owns its cleanup too.

- `build_ledger`        the weight ledger: preset resolution, memory or Redis backend; for a
                        non-bot client (download-data, ...) at the lowest priority, with its
                        record in the scope's client registry
- `build_rate_book`     the rate caches of one exchange, their refresher and the trading batch
- `build_price_stream`  the websocket price stream; `connection_admission` charges its
                        connects to the exchange's `WS_CONNECTIONS` pool
- `build_fiat_converter` the background fiat converter, with a Redis store shared by the bots
                        of a scope when the weights backend is Redis
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from freqtrade_ratekit.config import RatekitSettings
from freqtrade_ratekit.documents import RatekitClient
from freqtrade_ratekit.fiat.converter import BackgroundFiatConverter
from freqtrade_ratekit.fiat.store import RedisFiatStore
from freqtrade_ratekit.rates.book import RateBook
from freqtrade_ratekit.rates.refresher import MarketData, PairSpec, pricing_needs
from freqtrade_ratekit.rates.sources import TickerSource, choose_ticker_source
from freqtrade_ratekit.rates.stream import MAX_STREAMS, STREAMS_PER_CONNECTION, PriceStream
from freqtrade_ratekit.rates.trading_batch import TradingBatch
from freqtrade_ratekit.weights import (
    Backend,
    Charge,
    Ledger,
    MemoryBackend,
    Priority,
    RedisBackend,
    preset_for,
    scope_digest,
)
from freqtrade_ratekit.weights.clients import (
    ClientIdentity,
    ClientRegistry,
    ClientReporter,
    LocalClientRegistry,
    RedisClientRegistry,
)
from freqtrade_ratekit.weights.presets import CONNECTION_POOL

logger = logging.getLogger(__name__)

OnStop = Callable[[Callable[[], None]], None]
"""Registers a cleanup to run when the bot's ratekit stops (`Runtime.on_stop`)."""


class WiringError(ValueError):
    """A setting the components refuse (a pool, URL or bound): the message names it, masked."""


def _no_cleanup(_stopper: Callable[[], None]) -> None:
    """`on_stop` for callers that tear nothing down (tests, tools)."""


# --- weights ------------------------------------------------------------------------------


def build_ledger(
    settings: RatekitSettings,
    *,
    exchange_id: str,
    trading_mode: str,
    rate_limit_ms: float,
    account: str = "no-key",
    on_stop: OnStop = _no_cleanup,
    client: ClientIdentity | None = None,
) -> Ledger:
    """The weight ledger of a bot, or with `client` of a non-bot command, for exchange
    `exchange_id` (a ccxt id).

    `account` (the API key, never stored: only its digest is) scopes the per-account pools in
    Redis. A `client` runs at the lowest priority, held to `1 - weights.reserve` of each pool,
    and publishes its record to the scope's client registry until `on_stop`'s cleanup (or the
    process's exit). Every ledger reads the registry: its snapshot lists the scope's non-bot
    clients. Raises WiringError naming the bad setting.
    """
    weights = settings.weights
    try:
        preset = preset_for(
            exchange_id,
            trading_mode=trading_mode,
            name=weights.preset,
            rate_limit_ms=rate_limit_ms,
            pools=weights.pools,
            endpoints=weights.endpoints,
        )
        if preset.fallback:
            logger.warning("ratekit: %s", preset.message)
        backend: Backend
        registry: ClientRegistry
        if weights.uses_redis:
            redis_backend = RedisBackend(
                weights.backend,
                exchange=exchange_id,
                ip_scope_id=scope_digest("ip", weights.scope_id),
                account_scope_id=scope_digest("account", exchange_id, account or "no-key"),
                expected_bots=weights.expected_bots,
                socket_timeout_s=weights.redis_timeout,
            )
            on_stop(redis_backend.close)
            backend = redis_backend
            redis_registry = build_client_registry(settings, exchange_id=exchange_id)
            on_stop(redis_registry.close)
            registry = redis_registry
        else:
            backend = MemoryBackend()
            registry = LocalClientRegistry()
        ledger = Ledger(
            preset,
            mode=weights.mode,
            headroom=weights.headroom,
            backend=backend,
            background=client is not None,
            reserve=weights.reserve,
            client=client,
            registry=registry,
        )
    except (ValueError, KeyError, OverflowError) as exc:
        # the messages name the pool, URL (masked) or setting; a bad section stops the bot
        raise WiringError(f"ratekit.weights: {exc}") from None
    if client is not None:
        reporter = ClientReporter(
            lambda state: _record_of(ledger, state),
            registry,
        )
        reporter.start()
        on_stop(reporter.stop)
        held = (
            f"use at most {(1 - weights.reserve) * 100:.0f}% of each pool (weights.reserve "
            f"{weights.reserve:g} keeps the rest for the bots of the scope)"
            if weights.mode == "enforce"
            else "are counted, never held back (weights.mode observe)"
        )
        logger.info(
            "ratekit weights: %s (%s) is not a bot: its calls go after the bots' and %s",
            client.name,
            client.run_mode,
            held,
        )
    logger.info(
        "ratekit weights: preset %s, mode %s, headroom %.0f%%, backend %s",
        preset.name,
        weights.mode,
        weights.headroom * 100,
        backend.status().kind,
    )
    return ledger


def _record_of(ledger: Ledger, state: str) -> RatekitClient:
    record = ledger.client_record(state)
    if record is None:  # pragma: no cover - only built for a ledger with a client
        raise RuntimeError("a client reporter needs a ledger with a client")
    return record


def build_client_registry(settings: RatekitSettings, *, exchange_id: str) -> RedisClientRegistry:
    """The non-bot clients of the settings' IP scope on `exchange_id`, in their Redis (its own
    client, with the weights' socket timeout). Needs a Redis backend."""
    import redis

    weights = settings.weights
    client = redis.Redis.from_url(
        weights.backend,
        socket_timeout=weights.redis_timeout,
        socket_connect_timeout=weights.redis_timeout,
        retry_on_timeout=False,
        health_check_interval=0,
    )
    return RedisClientRegistry(
        client, exchange=exchange_id, ip_scope_id=scope_digest("ip", weights.scope_id)
    )


# --- rates --------------------------------------------------------------------------------


def build_rate_book(
    settings: RatekitSettings,
    *,
    api: Any,
    open_trades: Callable[[], Iterable[PairSpec]],
    fetch_order_book: Callable[[str], Any],
    store_rates: Callable[[PairSpec, MarketData], None],
    entry_pricing: Callable[[], Mapping[str, Any]],
    exit_pricing: Callable[[], Mapping[str, Any]],
    tickers_have_bid_ask: bool = True,
    stream: PriceStream | None = None,
) -> RateBook:
    """The rate caches of one exchange, refreshed through its ccxt client `api`, and the
    batched pricing of the bot's iterations (served first by `stream` when given).

    The pricing sections are read on each refresh and iteration (callables): Freqtrade's
    config may change them at runtime. The book is not started.
    """

    def fetch(method: str, symbols: list[str] | None) -> Any:
        if method == "fetch_ticker":
            return api.fetch_ticker(symbols[0] if symbols else None)
        return getattr(api, method)(symbols)

    def choose_source(pairs: list[str], need_last: bool) -> TickerSource:
        return choose_ticker_source(
            api, pairs, need_last=need_last, tickers_have_bid_ask=tickers_have_bid_ask
        )

    def wait_limit() -> float:
        # a batch in flight is awaited as long as ccxt would wait for its answer
        return max(1.0, float(getattr(api, "timeout", 10_000) or 10_000) / 1000.0)

    trading = TradingBatch(
        enabled=settings.rate_cache.trading_batch,
        max_age=settings.rate_cache.trading_max_age,
        choose_source=choose_source,
        fetch=fetch,
        pricing=lambda: (entry_pricing(), exit_pricing()),
        wait_limit=wait_limit,
        stream=stream,
    )
    return RateBook(
        settings.rate_cache,
        open_trades=open_trades,
        choose_source=choose_source,
        fetch=fetch,
        fetch_order_book=fetch_order_book,
        store_rates=store_rates,
        pricing=lambda: pricing_needs(entry_pricing(), exit_pricing()),
        trading=trading,
    )


def connection_admission(ledger: Ledger | None) -> Callable[[], Awaitable[float]] | None:
    """`async () -> seconds waited`: one websocket connection attempt charged to the ledger's
    `WS_CONNECTIONS` pool (shared through its backend, waiting under `enforce`); None when
    the preset publishes no connection limit."""
    if ledger is None or not any(spec.name == CONNECTION_POOL for spec in ledger.preset.pools):
        return None
    charge = Charge(
        endpoint="ws connect",
        weight=1.0,
        pools=((CONNECTION_POOL, 1.0),),
        priority=Priority.MARKET_DATA,
    )

    async def admit_connect() -> float:
        return await ledger.acquire_async(charge)

    return admit_connect


def build_price_stream(
    settings: RatekitSettings,
    *,
    make_client: Callable[[], Any],
    ledger: Ledger | None,
    need_last: bool,
) -> PriceStream:
    """The websocket price stream: book tickers (full tickers when a side needs `last`), its
    connects charged to the ledger's connection pool when the preset has one."""
    admit = connection_admission(ledger)
    exchange_id = ledger.preset.exchange_id if ledger is not None else ""
    return PriceStream(
        make_client=make_client,
        method="watch_tickers" if need_last else "watch_bids_asks",
        admit_connect=admit,
        max_streams=STREAMS_PER_CONNECTION.get(exchange_id, MAX_STREAMS),
    )


# --- fiat ---------------------------------------------------------------------------------


def build_fiat_store(
    settings: RatekitSettings, *, on_stop: OnStop = _no_cleanup
) -> RedisFiatStore | None:
    """With a Redis weights backend, the bots of a scope share one CoinGecko refresh per
    period through this store (its own Redis client); None otherwise."""
    if not settings.weights.uses_redis:
        return None
    import redis

    client = redis.Redis.from_url(
        settings.weights.backend,
        socket_timeout=settings.weights.redis_timeout,
        socket_connect_timeout=settings.weights.redis_timeout,
        retry_on_timeout=False,
    )
    on_stop(client.close)
    return RedisFiatStore(client)


def build_fiat_converter(
    settings: RatekitSettings,
    *,
    supported_fiat: Collection[str],
    symbol_overrides: Mapping[str, str],
    api_key: str = "",
    is_demo: bool = True,
    user_data_dir: str | Path | None = None,
    on_stop: OnStop = _no_cleanup,
) -> BackgroundFiatConverter:
    """The background fiat converter (not started; its stop is registered with `on_stop`)."""
    fiat = settings.fiat
    store = build_fiat_store(settings, on_stop=on_stop)
    converter = BackgroundFiatConverter(
        base_url=fiat.coingecko_url,
        api_key=api_key,
        is_demo=is_demo,
        refresh_interval=fiat.refresh_interval,
        stale_after=fiat.stale_after,
        coin_list_path=fiat.resolved_coin_list_path(user_data_dir),
        coin_list_max_age=fiat.coin_list_max_age,
        supported_fiat=supported_fiat,
        symbol_overrides=symbol_overrides,
        timeout=fiat.timeout,
        shared_store=store,
    )
    on_stop(converter.stop)
    return converter
