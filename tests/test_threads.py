"""Every thread ratekit starts has an owner that stops and joins it: after `uninstall()` (and
`Exchange.close()`), `threading.enumerate()` holds no ratekit thread.

A real Freqtrade Exchange (real ccxt binance) against the exchange emulator, the fiat converter
against the CoinGecko emulator; every background worker is started and busy when ratekit is
torn down: the rates refresher (`ratekit-rates`), a pre-warm (`ratekit-prewarm`) or the
start-up /profit thread (`ratekit-profit`), the /profit snapshot worker
(`ratekit-reader-snapshots`) and the fiat refresher (`ratekit-fiat`).
"""

import threading
import time
from types import SimpleNamespace

import pytest
from freqtrade.enums import RunMode
from freqtrade.exchange import Exchange
from freqtrade.persistence import Trade, init_db
from freqtrade.rpc import rpc as rpc_module

from freqtrade_ratekit import patches
from freqtrade_ratekit.config import parse_settings
from freqtrade_ratekit.patches import exchange as exchange_hooks
from freqtrade_ratekit.patches import readers
from freqtrade_ratekit.patches.exchange import rate_book_of
from freqtrade_ratekit.sim import exchange_ccxt_config
from tests.helpers import ratekit_threads

LATENCY_MS = 300


class SlowStatistics:
    """RPC's `_rpc_trade_statistics` as the start-up /profit thread calls it, still running
    when ratekit is torn down."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def _rpc_trade_statistics(self, stake_currency, fiat_display_currency):
        self.started.set()
        time.sleep(LATENCY_MS / 1000)
        return {}


@pytest.mark.parametrize("prewarm", [True, False], ids=["prewarm", "no-prewarm"])
def test_uninstall_leaves_no_ratekit_thread(
    exchange_emulator, coingecko_emulator, tmp_path, prewarm
):
    assert ratekit_threads() == set()
    pairs = exchange_emulator.emulator.universe.usdt_pairs()[:4]
    section = {
        "enabled": True,
        "rate_cache": {"refresh_interval": 1, "prewarm": prewarm, "prewarm_whitelist": True},
        "fiat": {"coingecko_url": coingecko_emulator.url, "refresh_interval": 1},
        "weights": {"mode": "observe"},
    }
    config = {
        "runmode": RunMode.DRY_RUN,
        "dry_run": True,
        "stake_currency": "USDT",
        "fiat_display_currency": "USD",
        "user_data_dir": str(tmp_path),
        "exchange": exchange_ccxt_config(exchange_emulator.url, pairs, spot_only=True),
        "entry_pricing": {"price_side": "same", "use_order_book": False, "price_last_balance": 0},
        "exit_pricing": {"price_side": "same", "use_order_book": False, "price_last_balance": 0},
        "ratekit": section,
    }
    init_db("sqlite://")
    assert patches.install()
    exchange = None
    try:
        patches.activate(parse_settings(section))
        exchange = Exchange(config, validate=False)
        book = rate_book_of(exchange)
        book.set_whitelist(pairs)
        converter = rpc_module.CryptoToFiatConverter(config)
        converter.convert_amount(1.0, "BTC", "USD")  # asks the fiat thread for a price
        assert readers.reader_snapshots() is not None

        exchange_emulator.update(latency_ms=LATENCY_MS)  # the pre-warm is in flight at stop
        statistics = SlowStatistics()
        bot = SimpleNamespace(
            exchange=exchange, rpc=SimpleNamespace(_rpc=statistics), config=config
        )
        exchange_hooks.after_startup(bot)

        expected = {"ratekit-rates", "ratekit-fiat", "ratekit-reader-snapshots"}
        expected.add("ratekit-prewarm" if prewarm else "ratekit-profit")
        running = {t.name for t in ratekit_threads()}
        assert expected <= running, running
        if not prewarm:
            assert statistics.started.wait(5)
    finally:
        patches.uninstall()
        if exchange is not None:
            exchange.close()
        Trade.session.remove()
    left = ratekit_threads()
    assert left == set(), [t.name for t in left]


def test_a_stopped_rate_book_starts_no_prewarm(exchange_emulator):
    pairs = exchange_emulator.emulator.universe.usdt_pairs()[:2]
    section = {"enabled": True, "rate_cache": {"refresh_interval": 0}, "weights": {"mode": "off"}}
    config = {
        "runmode": RunMode.DRY_RUN,
        "dry_run": True,
        "stake_currency": "USDT",
        "exchange": exchange_ccxt_config(exchange_emulator.url, pairs, spot_only=True),
        "ratekit": section,
    }
    assert patches.install()
    try:
        patches.activate(parse_settings(section))
        exchange = Exchange(config, validate=False)
        book = rate_book_of(exchange)
        exchange.close()
        assert book.stop() is True
        book.prewarm_in_background()
        assert ratekit_threads() == set()
    finally:
        patches.uninstall()
