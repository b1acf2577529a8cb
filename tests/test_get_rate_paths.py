"""Rules 1, 2 and 4 on a real Freqtrade Exchange (real ccxt binance against the emulator)."""

import math
import time

import pytest
from freqtrade.enums import RunMode
from freqtrade.exceptions import ExchangeError, PricingError
from freqtrade.exchange import Exchange

from freqtrade_ratekit import patches
from freqtrade_ratekit.config import parse_settings
from freqtrade_ratekit.patches.exchange import rate_book_of
from freqtrade_ratekit.sim import exchange_ccxt_config

TTL = 0.5


def exchange_config(url, pairs, ratekit):
    return {
        "runmode": RunMode.DRY_RUN,
        "dry_run": True,
        "stake_currency": "USDT",
        "exchange": exchange_ccxt_config(url, pairs, spot_only=True),
        "entry_pricing": {"price_side": "same", "use_order_book": False, "price_last_balance": 0},
        "exit_pricing": {"price_side": "same", "use_order_book": False, "price_last_balance": 0},
        "ratekit": ratekit,
    }


@pytest.fixture
def ratekit_exchange(exchange_emulator):
    pairs = exchange_emulator.emulator.universe.usdt_pairs()[:6]
    section = {
        "enabled": True,
        "rate_cache": {"ttl": TTL, "stale_ttl": 60, "negative_ttl": 60, "refresh_interval": 0},
        "weights": {"mode": "observe"},
    }
    patches.install()
    patches.activate(parse_settings(section))
    exchange = Exchange(exchange_config(exchange_emulator.url, pairs, section), validate=False)
    yield exchange, pairs
    exchange.close()
    patches.uninstall()


def single_ticker_calls(emulator, since):
    return [e for e in emulator.stats(since=since)["log"] if e["endpoint"] == "/api/v3/ticker/24hr"]


def test_trading_read_gets_only_fresh_rates(ratekit_exchange, exchange_emulator):
    exchange, pairs = ratekit_exchange
    first = exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False)
    since = time.time()
    assert exchange.get_rate(pairs[0], refresh=False, side="exit", is_short=False) == first
    assert single_ticker_calls(exchange_emulator, since) == []
    time.sleep(TTL * 1.5)
    since = time.time()
    exchange.get_rate(pairs[0], refresh=False, side="exit", is_short=False)
    assert len(single_ticker_calls(exchange_emulator, since)) == 1  # stale: trading refetches


def test_reader_gets_stale_rate_without_waiting_and_it_refreshes_behind(
    ratekit_exchange, exchange_emulator
):
    exchange, pairs = ratekit_exchange
    first = exchange.get_rate(pairs[1], refresh=True, side="exit", is_short=False)
    time.sleep(TTL * 1.5)
    exchange_emulator.update(latency_ms=300)
    since = time.time()
    with patches.reader_path():
        assert exchange.get_rate(pairs[1], refresh=False, side="exit", is_short=False) == first
    returned = time.time()
    log = exchange_emulator.stats(since=since)["log"]
    # a fetch on the read's path (300 ms latency) would have finished before the read returned
    assert not [entry for entry in log if entry["done"] <= returned], log
    deadline = time.time() + 10
    while exchange._exit_rate_cache.read(pairs[1]).state != "fresh" and time.time() < deadline:
        time.sleep(0.05)
    assert exchange._exit_rate_cache.read(pairs[1]).state == "fresh"
    assert exchange.get_rate(pairs[1], refresh=False, side="exit", is_short=False) > 0


def test_reader_miss_answers_at_once_and_fetches_in_background(ratekit_exchange):
    exchange, pairs = ratekit_exchange
    with patches.reader_path(), pytest.raises(PricingError, match="not cached yet"):
        exchange.get_rate(pairs[2], refresh=False, side="exit", is_short=False)
    deadline = time.time() + 10
    while exchange._exit_rate_cache.read(pairs[2]).rate is None and time.time() < deadline:
        time.sleep(0.05)
    with patches.reader_path():
        rate = exchange.get_rate(pairs[2], refresh=False, side="exit", is_short=False)
    assert rate > 0 and not math.isnan(rate)


def test_failing_pair_is_not_retried_for_readers_within_negative_ttl(
    ratekit_exchange, exchange_emulator
):
    exchange, pairs = ratekit_exchange
    delisted = pairs[3]
    exchange_emulator.update(unknown_symbols=[delisted.replace("/", "")])
    since = time.time()
    with pytest.raises(ExchangeError):  # stock: TemporaryError after its retries
        exchange.get_rate(delisted, refresh=False, side="exit", is_short=False)
    calls_first = len(single_ticker_calls(exchange_emulator, since))
    assert calls_first >= 1
    for _ in range(20):
        with patches.reader_path(), pytest.raises(PricingError, match="BadSymbol"):
            exchange.get_rate(delisted, refresh=False, side="exit", is_short=False)
    assert len(single_ticker_calls(exchange_emulator, since)) == calls_first
    entry = next(e for e in exchange._exit_rate_cache.entries() if e["pair"] == delisted)
    assert entry["state"] == "failing"


def test_the_bots_own_read_of_a_failing_pair_gets_what_stock_gives(
    ratekit_exchange, exchange_emulator
):
    """Issue 11: after a malformed burst had negative-cached a pair, the fill notification's
    `refresh=False` read got ratekit's "failed recently" PricingError and the bot exited."""
    exchange, pairs = ratekit_exchange
    pair = pairs[5]
    book = rate_book_of(exchange)
    book.mark_failed(pair, f"{pair} absent from fetch_bids_asks answer")
    since = time.time()
    rate = exchange.get_rate(pair, refresh=False, side="entry", is_short=False)
    assert rate > 0  # stock's fetch, not the remembered error
    assert len(single_ticker_calls(exchange_emulator, since)) == 1
    # and a pair the exchange refuses raises exactly what stock raises, with the call made
    refused = pairs[4]
    exchange_emulator.update(unknown_symbols=[refused.replace("/", "")])
    book.mark_failed(refused, "failed before")
    since = time.time()
    with pytest.raises(ExchangeError) as raised:
        exchange.get_rate(refused, refresh=False, side="exit", is_short=False)
    assert "failed recently" not in str(raised.value)
    assert len(single_ticker_calls(exchange_emulator, since)) >= 1


def test_an_empty_ticker_on_the_trading_path_is_not_negative_cached(
    ratekit_exchange, exchange_emulator
):
    exchange, pairs = ratekit_exchange
    assert exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False) > 0
    exchange_emulator.update(malformed_rate=1.0)
    with pytest.raises(PricingError):  # what stock raises for an empty ticker
        exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False)
    assert exchange._exit_rate_cache.failing(pairs[0]) is None
    exchange_emulator.update(malformed_rate=0.0)
    assert exchange.get_rate(pairs[0], refresh=True, side="exit", is_short=False) > 0


def test_refresh_true_always_goes_to_the_exchange(ratekit_exchange, exchange_emulator):
    exchange, pairs = ratekit_exchange
    exchange.get_rate(pairs[4], refresh=True, side="entry", is_short=False)
    since = time.time()
    exchange.get_rate(pairs[4], refresh=True, side="entry", is_short=False)
    assert len(single_ticker_calls(exchange_emulator, since)) == 1
