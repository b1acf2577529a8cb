"""Presets: ccxt's cost tables converted back into each exchange's native weight units."""

from __future__ import annotations

import ccxt
import pytest
from ccxt.abstract import binance as binance_abstract
from ccxt.abstract import gate as gate_abstract
from ccxt.abstract import okx as okx_abstract

from freqtrade_ratekit.weights import Ledger, Priority, api_family, preset_for


def charge_of(exchange, abstract, entry_name: str, params: dict, ledger: Ledger):
    """Charge one implicit ccxt endpoint exactly as the ccxt hook does."""
    entry = abstract.ImplicitAPI.__dict__[entry_name]
    cost = exchange.calculate_rate_limiter_cost(
        entry.api, entry.method, entry.path, params, entry.config
    )
    return ledger.charge_for(api_family(entry.api), entry.method, entry.path, params, cost)


@pytest.fixture(scope="module")
def binance():
    return ccxt.binance()


@pytest.mark.parametrize(
    ("entry", "params", "weight"),
    [
        ("public_get_ticker_bookticker", {}, 4),
        ("public_get_ticker_bookticker", {"symbol": "BTCUSDT"}, 2),
        ("public_get_depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
        ("public_get_depth", {"symbol": "BTCUSDT", "limit": 500}, 25),
        ("public_get_depth", {"symbol": "BTCUSDT", "limit": 5000}, 250),
        ("public_get_ticker_24hr", {}, 80),
        ("public_get_exchangeinfo", {}, 20),
        ("private_get_account", {}, 20),
        ("fapipublic_get_depth", {"symbol": "BTCUSDT", "limit": 500}, 10),
        ("sapi_get_capital_config_getall", {}, 10),
    ],
)
def test_binance_weights_come_from_ccxt_cost_tables(binance, entry, params, weight):
    ledger = Ledger(preset_for("binance"))
    assert charge_of(binance, binance_abstract, entry, params, ledger).weight == weight


def test_binance_order_counts_in_order_pools_and_goes_first(binance):
    ledger = Ledger(preset_for("binance"))
    charge = charge_of(binance, binance_abstract, "private_post_order", {}, ledger)
    assert dict(charge.pools) == {
        "REQUEST_WEIGHT": 1,
        "RAW_REQUESTS": 1,
        "ORDERS_10S": 1,
        "ORDERS_1D": 1,
    }
    assert charge.priority is Priority.ORDER
    cancel = charge_of(binance, binance_abstract, "private_delete_order", {}, ledger)
    assert cancel.priority is Priority.ORDER and "ORDERS_10S" not in dict(cancel.pools)
    test_order = charge_of(binance, binance_abstract, "private_post_order_test", {}, ledger)
    assert "ORDERS_10S" not in dict(test_order.pools)


def test_binance_futures_preset_uses_fapi_pools(binance):
    preset = preset_for("binance", trading_mode="futures")
    assert preset.name == "binance_futures"
    assert preset.pool("FAPI_REQUEST_WEIGHT").limit == 2400
    ledger = Ledger(preset)
    charge = charge_of(binance, binance_abstract, "fapiprivate_post_order", {}, ledger)
    assert {"FAPI_ORDERS_10S", "FAPI_ORDERS_1M"} <= set(dict(charge.pools))


def test_per_endpoint_pools_for_gate_and_okx():
    gate_ledger = Ledger(preset_for("gate"))
    gate = ccxt.gate()
    tickers = charge_of(gate, gate_abstract, "public_spot_get_tickers", {}, gate_ledger)
    books = charge_of(gate, gate_abstract, "public_spot_get_order_book", {}, gate_ledger)
    assert tickers.pools == (("GATE_PUBLIC:tickers", 1.0),)
    assert books.pools == (("GATE_PUBLIC:order_book", 1.0),)
    assert gate_ledger.preset.pool("GATE_PUBLIC:tickers").limit == 200

    okx_ledger = Ledger(preset_for("okx"))
    okx = ccxt.okx()
    order = charge_of(okx, okx_abstract, "private_post_trade_order", {}, okx_ledger)
    assert dict(order.pools) == {"OKX_ORDER:trade/order": 1, "OKX_SUBACCOUNT_ORDERS": 1}
    assert order.priority is Priority.ORDER


def test_overrides_replace_pool_limits_and_endpoint_weights(binance):
    preset = preset_for(
        "binance",
        pools={
            "REQUEST_WEIGHT": {"limit": 1200, "interval": 60},
            "MINE": {"limit": 5, "interval": 1},
        },
        endpoints={
            "ticker/bookTicker": {"weight": 9},
            "public GET depth": {"weight": 3, "pools": ["MINE"]},
        },
    )
    assert preset.pool("REQUEST_WEIGHT").limit == 1200
    ledger = Ledger(preset)
    book_ticker = charge_of(binance, binance_abstract, "public_get_ticker_bookticker", {}, ledger)
    assert dict(book_ticker.pools) == {"REQUEST_WEIGHT": 9, "RAW_REQUESTS": 1}
    depth = charge_of(binance, binance_abstract, "public_get_depth", {"limit": 100}, ledger)
    assert depth.pools == (("MINE", 3.0),)


def test_override_naming_an_unknown_pool_is_an_error():
    with pytest.raises(ValueError, match="unknown pool 'NOPE'"):
        preset_for("binance", endpoints={"depth": {"weight": 1, "pools": ["NOPE"]}})


def test_unknown_exchange_falls_back_to_ccxt_rate_limit_and_says_so():
    preset = preset_for("someexchange", rate_limit_ms=200)
    assert preset.fallback
    assert "no weight preset" in preset.message
    (pool,) = preset.pools
    assert (pool.limit, pool.interval_s) == (5.0, 1.0)
    slow = preset_for("slowexchange", rate_limit_ms=3000)
    assert (slow.pools[0].limit, slow.pools[0].interval_s) == (1.0, 3.0)
    known = preset_for("kraken")
    assert known.fallback and known.pools[0].limit == 1000 / ccxt.kraken().rateLimit


def test_named_preset_and_unknown_name():
    assert preset_for("binanceus", name="binance_spot").name == "binance_spot"
    with pytest.raises(ValueError, match="unknown weights preset"):
        preset_for("binance", name="nope")
