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
    known = preset_for("bitvavo")  # in ccxt, without a preset
    assert known.fallback
    assert known.pools[0].limit == pytest.approx(1000 / ccxt.bitvavo().rateLimit)


def test_named_preset_and_unknown_name():
    assert preset_for("binanceus", name="binance_spot").name == "binance_spot"
    with pytest.raises(ValueError, match="unknown weights preset"):
        preset_for("binance", name="nope")


# ---------------------------------------------------------------- the presets of issue 2


def ccxt_charge(ledger: Ledger, exchange_id: str, endpoint: str, params: dict):
    """Charge ccxt's implicit `endpoint` (camelCase) as the ccxt hook does."""
    import importlib

    exchange = getattr(ccxt, exchange_id)()
    entry = importlib.import_module(f"ccxt.abstract.{exchange_id}").ImplicitAPI.__dict__[endpoint]
    cost = exchange.calculate_rate_limiter_cost(
        entry.api, entry.method, entry.path, params, entry.config
    )
    return ledger.charge_for(api_family(entry.api), entry.method, entry.path, params, cost)


@pytest.mark.parametrize(
    ("exchange_id", "mode", "endpoint", "params", "pools"),
    [
        ("bybit", "spot", "publicGetV5MarketTickers", {}, {"BYBIT_IP": 1}),
        ("bybit", "spot", "publicGetV5MarketKline", {"limit": 1000}, {"BYBIT_IP": 1}),
        (
            "bybit",
            "spot",
            "privatePostV5OrderCreate",
            {},
            {"BYBIT_ORDER:v5/order/create": 1, "BYBIT_IP": 1},
        ),
        (
            "bybit",
            "futures",
            "privateGetV5ExecutionList",
            {},
            {"BYBIT_READ:v5/execution/list": 1, "BYBIT_IP": 1},
        ),
        (
            "bybit",
            "spot",
            "privateGetV5AccountWalletBalance",
            {},
            {"BYBIT_READ:v5/account/wallet-balance": 1, "BYBIT_IP": 1},
        ),
        ("kraken", "spot", "publicGetTicker", {}, {"KRAKEN_PUBLIC": 1}),
        ("kraken", "spot", "publicGetOHLC", {}, {"KRAKEN_PUBLIC_PAIR:OHLC": 1}),
        ("kraken", "spot", "privatePostAddOrder", {}, {"KRAKEN_ORDERS": 1}),
        ("kraken", "spot", "privatePostCancelOrder", {}, {"KRAKEN_ORDERS": 1}),
        ("kraken", "spot", "privatePostQueryOrders", {}, {"KRAKEN_PRIVATE": 1}),
        ("kraken", "spot", "privatePostBalanceEx", {}, {"KRAKEN_PRIVATE": 1}),
        ("kraken", "spot", "privatePostTradesHistory", {}, {"KRAKEN_PRIVATE": 2}),
        ("krakenfutures", "futures", "publicGetTickers", {}, {"KRAKEN_FUTURES_PUBLIC": 1}),
        (
            "krakenfutures",
            "futures",
            "privatePostSendorder",
            {},
            {"KRAKEN_FUTURES_DERIVATIVES": 10},
        ),
        ("krakenfutures", "futures", "privateGetAccounts", {}, {"KRAKEN_FUTURES_DERIVATIVES": 2}),
        (
            "krakenfutures",
            "futures",
            "privateGetOrdersStatus",
            {},
            {"KRAKEN_FUTURES_DERIVATIVES": 1},
        ),
        ("kucoin", "spot", "publicGetSymbols", {}, {"KUCOIN_PUBLIC": 4}),
        ("kucoin", "spot", "publicGetMarketAllTickers", {}, {"KUCOIN_PUBLIC": 15}),
        ("kucoin", "spot", "publicGetMarketCandles", {}, {"KUCOIN_PUBLIC": 3}),
        (
            "kucoin",
            "spot",
            "publicGetMarketOrderbookLevelLevelLimit",
            {"level": 2, "limit": 20},
            {"KUCOIN_PUBLIC": 2},
        ),
        (
            "kucoin",
            "spot",
            "publicGetMarketOrderbookLevelLevelLimit",
            {"level": 2, "limit": 100},
            {"KUCOIN_PUBLIC": 4},
        ),
        ("kucoin", "spot", "privatePostHfOrders", {}, {"KUCOIN_SPOT": 1}),
        ("kucoin", "spot", "privatePostOrders", {}, {"KUCOIN_SPOT": 2}),
        ("kucoin", "spot", "privateDeleteHfOrdersOrderId", {}, {"KUCOIN_SPOT": 1}),
        ("kucoin", "spot", "privateGetHfOrdersOrderId", {}, {"KUCOIN_SPOT": 2}),
        ("kucoin", "spot", "privateGetHfFills", {}, {"KUCOIN_SPOT": 2}),
        ("kucoin", "spot", "privateGetAccounts", {}, {"KUCOIN_MANAGEMENT": 5}),
        ("hyperliquid", "futures", "publicPostInfo", {"type": "l2Book"}, {"HYPERLIQUID_WEIGHT": 2}),
        (
            "hyperliquid",
            "futures",
            "publicPostInfo",
            {"type": "metaAndAssetCtxs"},
            {"HYPERLIQUID_WEIGHT": 20},
        ),
        (
            "hyperliquid",
            "futures",
            "publicPostInfo",
            {"type": "candleSnapshot"},
            {"HYPERLIQUID_WEIGHT": 20},
        ),
        (
            "hyperliquid",
            "spot",
            "publicPostInfo",
            {"type": "spotClearinghouseState"},
            {"HYPERLIQUID_WEIGHT": 2},
        ),
        ("hyperliquid", "futures", "privatePostExchange", {}, {"HYPERLIQUID_WEIGHT": 1}),
        (
            "bitget",
            "spot",
            "publicSpotGetV2SpotMarketTickers",
            {},
            {"BITGET_PUBLIC:v2/spot/market/tickers": 1, "BITGET_IP": 1},
        ),
        (
            "bitget",
            "futures",
            "privateMixPostV2MixOrderPlaceOrder",
            {},
            {"BITGET_PRIVATE:v2/mix/order/place-order": 2, "BITGET_IP": 1},
        ),
        ("htx", "spot", "spotPublicGetMarketTickers", {}, {"HTX_MARKET": 1}),
        ("htx", "spot", "spotPublicGetV1CommonSymbols", {}, {"HTX_PUBLIC": 1}),
        (
            "htx",
            "spot",
            "spotPrivatePostV1OrderOrdersPlace",
            {},
            {"HTX_PRIVATE_100:v1/order/orders/place": 1},
        ),
        (
            "htx",
            "spot",
            "spotPrivateGetV1OrderOrdersOrderId",
            {},
            {"HTX_PRIVATE_50:v1/order/orders/{order-id}": 1},
        ),
        (
            "htx",
            "spot",
            "spotPrivateGetV1OrderMatchresults",
            {},
            {"HTX_PRIVATE_20:v1/order/matchresults": 1},
        ),
        ("bingx", "spot", "spotV1PublicGetTicker24hr", {}, {"BINGX_MARKET": 1}),
        (
            "bingx",
            "spot",
            "spotV1PrivatePostTradeOrder",
            {},
            {"BINGX_ENDPOINT:trade/order": 2, "BINGX_ACCOUNT": 1},
        ),
        (
            "bingx",
            "spot",
            "spotV1PrivateGetTradeQuery",
            {},
            {"BINGX_ENDPOINT:trade/query": 1, "BINGX_ACCOUNT": 1},
        ),
    ],
)
def test_weights_of_the_calls_a_bot_makes(exchange_id, mode, endpoint, params, pools):
    ledger = Ledger(preset_for(exchange_id, trading_mode=mode))
    assert dict(ccxt_charge(ledger, exchange_id, endpoint, params).pools) == pools


@pytest.mark.parametrize(
    ("exchange_id", "mode", "preset"),
    [
        ("bybit", "spot", "bybit_spot"),
        ("bybit", "futures", "bybit_futures"),
        ("bybiteu", "spot", "bybit_spot"),
        ("kraken", "spot", "kraken"),
        ("krakenfutures", "futures", "krakenfutures"),
        ("kucoin", "spot", "kucoin"),
        ("hyperliquid", "spot", "hyperliquid"),
        ("hyperliquid", "futures", "hyperliquid"),
        ("bitget", "futures", "bitget_futures"),
        ("htx", "spot", "htx"),
        ("bitmart", "spot", "bitmart"),
        ("bingx", "spot", "bingx"),
        ("myokx", "futures", "okx"),
        ("gateeu", "spot", "gate"),
    ],
)
def test_auto_picks_the_preset_of_each_supported_exchange(exchange_id, mode, preset):
    resolved = preset_for(exchange_id, trading_mode=mode)
    assert (resolved.name, resolved.fallback) == (preset, False)


def test_order_limits_differ_between_bybit_spot_and_linear():
    spot = Ledger(preset_for("bybit")).preset.pool("BYBIT_ORDER:v5/order/create")
    linear = Ledger(preset_for("bybit", trading_mode="futures")).preset
    assert (spot.limit, linear.pool("BYBIT_ORDER:v5/order/create").limit) == (20, 10)


def test_orders_go_first_and_order_queries_do_not():
    kraken = Ledger(preset_for("kraken"))
    assert ccxt_charge(kraken, "kraken", "privatePostAddOrder", {}).priority is Priority.ORDER
    query = ccxt_charge(kraken, "kraken", "privatePostQueryOrders", {})
    assert query.priority is Priority.ACCOUNT
    hyperliquid = Ledger(preset_for("hyperliquid"))
    action = ccxt_charge(hyperliquid, "hyperliquid", "privatePostExchange", {})
    assert action.priority is Priority.ORDER
    bitmart = Ledger(preset_for("bitmart"))
    assert bitmart.charge_for("private", "POST", "spot/v4/query/order").priority is (
        Priority.ACCOUNT
    )
    assert bitmart.charge_for("private", "POST", "spot/v2/submit_order").priority is (
        Priority.ORDER
    )


def test_a_weight_set_by_a_request_parameter_is_not_served_from_the_charge_cache():
    """Hyperliquid prices every /info POST by its `type`: the same path, two weights."""
    ledger = Ledger(preset_for("hyperliquid"))
    book = ledger.charge_for("public", "POST", "info", {"type": "l2Book"}, 2)
    meta = ledger.charge_for("public", "POST", "info", {"type": "meta"}, 2)
    assert (book.weight, meta.weight) == (2, 20)
    assert ledger.charge_for("public", "POST", "info", {"type": "l2Book"}, 2) is book


def test_bitmart_has_a_preset_though_ccxt_cannot_reach_it():
    ledger = Ledger(preset_for("bitmart"))
    tickers = ledger.charge_for("public", "GET", "spot/quotation/v3/tickers")
    assert tickers.pools == (("BITMART_MARKET:spot/quotation/v3/tickers", 1.0),)
    assert ledger.preset.pool("BITMART_MARKET:spot/quotation/v3/tickers").limit == 8


def test_kraken_counters_are_decaying_and_tier_configurable():
    preset = preset_for("kraken")
    private = preset.pool("KRAKEN_PRIVATE")
    assert (private.kind, private.limit, private.interval_s) == ("decay", 15, 45)
    pro = preset_for("kraken", pools={"KRAKEN_PRIVATE": {"limit": 20, "interval": 20}})
    assert pro.pool("KRAKEN_PRIVATE").kind == "decay"
    assert pro.pool("KRAKEN_PRIVATE").limit / pro.pool("KRAKEN_PRIVATE").interval_s == 1


def test_a_pool_kind_must_be_known():
    from freqtrade_ratekit.weights.presets import PoolSpec

    with pytest.raises(ValueError, match="kind must be one of window, decay"):
        PoolSpec("X", 1, 1, kind="bucket")
