"""`wiring` builds every component from settings alone: no Freqtrade object, no bot.

A real ccxt binance against the exchange emulator feeds the rate book; a real redis-server
backs the Redis variants."""

import pytest
import redis

from freqtrade_ratekit import wiring
from freqtrade_ratekit.config import parse_settings
from freqtrade_ratekit.fiat.converter import BackgroundFiatConverter
from freqtrade_ratekit.fiat.store import RedisFiatStore
from freqtrade_ratekit.rates.book import RateBook
from freqtrade_ratekit.rates.refresher import PairSpec
from freqtrade_ratekit.weights import Ledger, MemoryBackend, Mode, RedisBackend
from tests.redis_fixtures import RedisServer, requires_redis
from tests.sim_fixtures import make_binance_client

API_KEY = "AKwiringtestkey0001"


@pytest.fixture
def redis_url():
    with RedisServer() as server:
        yield server.url


def settings(**section):
    return parse_settings({"enabled": True, **section})


class Stoppers(list):
    """What a component registers to be torn down with the bot (`Runtime.on_stop`)."""

    def __call__(self, stopper):
        self.append(stopper)

    def run(self):
        for stopper in reversed(self):
            stopper()


# --- weights ------------------------------------------------------------------------------


def test_ledger_resolves_the_preset_on_a_memory_backend():
    stoppers = Stoppers()
    ledger = wiring.build_ledger(
        settings(weights={"mode": "enforce", "headroom": 0.8}),
        exchange_id="binance",
        trading_mode="spot",
        rate_limit_ms=50,
        on_stop=stoppers,
    )
    assert isinstance(ledger, Ledger)
    assert ledger.preset.exchange_id == "binance"
    assert ledger.preset.name == "binance_spot"
    assert ledger.mode is Mode.ENFORCE
    assert ledger.headroom == 0.8
    assert isinstance(ledger.backend, MemoryBackend)
    assert stoppers == []  # nothing to close


def test_ledger_picks_the_named_preset_and_the_trading_mode():
    futures = wiring.build_ledger(
        settings(), exchange_id="binance", trading_mode="futures", rate_limit_ms=50
    )
    assert futures.preset.name == "binance_futures"
    okx = wiring.build_ledger(
        settings(weights={"preset": "okx"}),
        exchange_id="okx",
        trading_mode="spot",
        rate_limit_ms=100,
    )
    assert okx.preset.name == "okx"


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"endpoints": {"GET /x": {"weight": 1, "pools": ["NOPE"]}}}, "unknown pool 'NOPE'"),
        ({"preset": "binance"}, "unknown weights preset 'binance'"),
    ],
)
def test_a_setting_the_ledger_refuses_is_named(weights, message):
    with pytest.raises(wiring.WiringError, match=message) as info:
        wiring.build_ledger(
            settings(weights=weights), exchange_id="binance", trading_mode="spot", rate_limit_ms=50
        )
    assert str(info.value).startswith("ratekit.weights: ")


@pytest.mark.redis
@requires_redis
def test_ledger_on_redis_is_scoped_by_digests_and_closed_on_stop(redis_url):
    stoppers = Stoppers()
    ledger = wiring.build_ledger(
        settings(weights={"backend": redis_url, "scope_id": "host-1"}),
        exchange_id="binance",
        trading_mode="spot",
        rate_limit_ms=50,
        account=API_KEY,
        on_stop=stoppers,
    )
    assert isinstance(ledger.backend, RedisBackend)
    status = ledger.backend.status()
    assert status.kind == "redis"
    assert status.healthy
    ledger.acquire(ledger.charge_for("public", "GET", "ticker/price"))
    client = redis.Redis.from_url(redis_url)
    keys = [key.decode() for key in client.keys("*")]
    assert keys  # the charge went to the shared windows...
    assert not any(API_KEY in key or "host-1" in key for key in keys)  # ...keyed by digests
    client.close()
    # the backend's client and the client registry's (a bot only reads it: no reporter)
    assert stoppers == [ledger.backend.close, ledger.registry.close]
    stoppers.run()


# --- rates --------------------------------------------------------------------------------


def test_rate_book_refreshes_through_a_ccxt_client(exchange_emulator):
    pairs = exchange_emulator.emulator.universe.usdt_pairs()[:3]
    api = make_binance_client(exchange_emulator.url)
    api.load_markets()
    stored = {}
    book = wiring.build_rate_book(
        settings(rate_cache={"refresh_interval": 0}),
        api=api,
        open_trades=lambda: [PairSpec(pair) for pair in pairs],
        fetch_order_book=lambda pair: api.fetch_order_book(pair, 1),
        store_rates=lambda spec, data: stored.__setitem__(spec.pair, data.ticker),
        entry_pricing=lambda: {"price_side": "same", "use_order_book": False},
        exit_pricing=lambda: {"price_side": "same", "use_order_book": False},
    )
    assert isinstance(book, RateBook)
    assert not book.refresher.worker.running  # built, not started
    report = book.prewarm()
    assert set(report.stored) == set(pairs), report
    assert set(stored) == set(pairs)
    assert all(ticker["bid"] and ticker["ask"] for ticker in stored.values())
    assert book.stop() is True


# --- fiat ---------------------------------------------------------------------------------


def fiat_settings(tmp_path, coingecko_url="http://127.0.0.1:9/", **weights):
    return settings(
        fiat={"coingecko_url": coingecko_url, "coin_list_path": str(tmp_path / "coins.json")},
        weights=weights,
    )


def test_fiat_converter_without_redis_has_no_shared_store(tmp_path):
    stoppers = Stoppers()
    converter = wiring.build_fiat_converter(
        fiat_settings(tmp_path),
        supported_fiat=["usd", "eur"],
        symbol_overrides={"eth": "ethereum"},
        on_stop=stoppers,
    )
    assert isinstance(converter, BackgroundFiatConverter)
    assert not converter.is_running  # built, not started
    assert wiring.build_fiat_store(fiat_settings(tmp_path)) is None
    assert stoppers == [converter.stop]


def test_fiat_converter_converts_from_the_emulator(tmp_path, coingecko_emulator):
    stoppers = Stoppers()
    converter = wiring.build_fiat_converter(
        fiat_settings(tmp_path, coingecko_emulator.url),
        supported_fiat=["usd"],
        symbol_overrides={},
        on_stop=stoppers,
    )
    assert converter.convert_amount(1.0, "BTC", "USD") == 0.0  # never blocks: nothing known
    converter.refresh_now()
    assert converter.convert_amount(1.0, "BTC", "USD") > 0
    stoppers.run()


@pytest.mark.redis
@requires_redis
def test_fiat_store_on_redis_has_its_own_client_closed_on_stop(tmp_path, redis_url):
    stoppers = Stoppers()
    converter = wiring.build_fiat_converter(
        fiat_settings(tmp_path, backend=redis_url),
        supported_fiat=["usd"],
        symbol_overrides={},
        on_stop=stoppers,
    )
    assert len(stoppers) == 2
    close_client, stop_converter = stoppers
    assert stop_converter == converter.stop
    client = close_client.__self__
    assert isinstance(client, redis.Redis)
    assert client.ping()
    stoppers.run()
    more = Stoppers()
    store = wiring.build_fiat_store(fiat_settings(tmp_path, backend=redis_url), on_stop=more)
    assert isinstance(store, RedisFiatStore)
    assert len(more) == 1
    more.run()
