# ruff: noqa: F811  (pytest fixtures imported from tests.sim_fixtures are parameters here)
"""The Binance emulator against the unmodified ccxt binance class, over real HTTP."""

from __future__ import annotations

import json
import math
import threading
import time

import ccxt
import pytest
import requests

from freqtrade_ratekit.sim.exchange import ExchangeEmulator, depth_weight, exchange_ccxt_config
from freqtrade_ratekit.sim.limits import BanPolicy, WeightLimiter, interval_suffix
from freqtrade_ratekit.sim.market import MarketUniverse
from freqtrade_ratekit.sim.server import SettingsError
from tests.sim_fixtures import (  # noqa: F401  (fixtures)
    SimClock,
    assert_setting_refused,
    binance_client,
    clocked_exchange_emulator,
    exchange_emulator,
    make_binance_client,
    put_settings_raw,
    sim_clock,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def used_weight(response: requests.Response) -> int:
    return int(response.headers["X-MBX-USED-WEIGHT-1M"])


# --- fidelity with ccxt -------------------------------------------------------------------


def test_ccxt_loads_markets_and_reads_every_kind_of_price(binance_client):
    markets = binance_client.markets
    usdt = [s for s, m in markets.items() if m["quote"] == "USDT" and m["spot"] and m["active"]]
    assert len(usdt) >= 300
    assert {"BTC/USDT", "ETH/USDT", "BNB/USDT"} <= set(usdt)

    ticker = binance_client.fetch_ticker("BTC/USDT")
    assert ticker["bid"] < ticker["last"] < ticker["ask"]

    tickers = binance_client.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    assert all(t["bid"] < t["ask"] for t in tickers.values())

    bids_asks = binance_client.fetch_bids_asks()
    assert len(bids_asks) == len(markets)
    assert all(t["bid"] < t["ask"] for t in bids_asks.values())

    last = binance_client.fetch_last_prices(["ETH/USDT"])["ETH/USDT"]["price"]
    assert 0.5 * 3000 < last < 2 * 3000

    book = binance_client.fetch_order_book("ETH/USDT", 20)
    assert len(book["bids"]) == len(book["asks"]) == 20
    assert book["bids"][0][0] < book["asks"][0][0]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    assert [a[0] for a in book["asks"]] == sorted(a[0] for a in book["asks"])


def test_ccxt_ohlcv_respects_since_and_limit(binance_client):
    hour_ms = 3_600_000
    since = (int(time.time() * 1000) // hour_ms - 48) * hour_ms
    candles = binance_client.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=10)
    assert [c[0] for c in candles] == [since + i * hour_ms for i in range(10)]
    for _, open_, high, low, close, volume in candles:
        assert low <= min(open_, close) <= max(open_, close) <= high
        assert volume > 0

    latest = binance_client.fetch_ohlcv("ETH/USDT", "5m", limit=3)
    assert len(latest) == 3
    assert latest[-1][0] <= time.time() * 1000 < latest[-1][0] + 300_000


def test_prices_are_deterministic_per_seed():
    first, second, other = MarketUniverse(seed=7), MarketUniverse(seed=7), MarketUniverse(seed=8)
    at = 1_790_000_000.5
    btc = first.get("BTCUSDT")
    assert btc is not None
    assert first.quote(btc, at) == second.quote(second.markets["BTCUSDT"], at)
    assert first.usdt_pairs() == second.usdt_pairs() != other.usdt_pairs()
    assert first.mid_price(btc, at) != first.mid_price(btc, at + 600)
    for market in list(first.markets.values())[:100]:
        for offset in (0, 1, 3600):
            quote = first.quote(market, at + offset)
            assert 0 < quote.bid < quote.last < quote.ask


# --- weights and usage headers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "weight"), [(5, 5), (100, 5), (500, 25), (1000, 50), (5000, 250)]
)
def test_depth_weight_follows_published_table(exchange_emulator, limit, weight):
    assert depth_weight(limit) == weight
    response = requests.get(
        f"{exchange_emulator.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": limit}
    )
    assert response.status_code == 200
    assert used_weight(response) == weight
    assert exchange_emulator.stats()["endpoints"]["/api/v3/depth"]["weight"] == weight


@pytest.mark.parametrize(
    ("path", "params", "weight"),
    [
        ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
        ("/api/v3/ticker/24hr", {}, 80),
        ("/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"}, 2),
        ("/api/v3/ticker/bookTicker", {}, 4),
        ("/api/v3/ticker/price", {}, 4),
        ("/api/v3/exchangeInfo", {}, 20),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "5m"}, 2),
    ],
)
def test_endpoint_weights(exchange_emulator, path, params, weight):
    response = requests.get(f"{exchange_emulator.url}{path}", params=params)
    assert response.status_code == 200
    assert used_weight(response) == weight


def test_ticker_24hr_weight_depends_on_symbol_count(exchange_emulator):
    pairs = exchange_emulator.emulator.universe.usdt_pairs()
    symbols = [p.replace("/", "") for p in pairs]
    url = f"{exchange_emulator.url}/api/v3/ticker/24hr"
    expected_total = 0
    for count, weight in ((20, 2), (21, 40), (101, 80)):
        listed = "[" + ",".join(f'"{s}"' for s in symbols[:count]) + "]"
        response = requests.get(url, params={"symbols": listed})
        assert len(response.json()) == count
        expected_total += weight
        assert used_weight(response) == expected_total


def test_usage_header_is_named_after_the_window(exchange_emulator):
    exchange_emulator.update(window_s=10)
    response = requests.get(f"{exchange_emulator.url}/api/v3/ping")
    assert response.headers["X-MBX-USED-WEIGHT-10S"] == "1"
    assert "X-MBX-USED-WEIGHT-1M" not in response.headers
    assert interval_suffix(60) == "1M"
    assert interval_suffix(3600) == "1H"
    assert interval_suffix(86400) == "1D"
    assert interval_suffix(90) == "90S"


def test_exchange_info_publishes_configured_limit(exchange_emulator, binance_client):
    exchange_emulator.update(weight_limit=1200, window_s=10)
    info = requests.get(f"{exchange_emulator.url}/api/v3/exchangeInfo").json()
    request_weight = info["rateLimits"][0]
    assert request_weight == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "SECOND",
        "intervalNum": 10,
        "limit": 1200,
    }


# --- 429, 418 -----------------------------------------------------------------------------


def test_over_the_window_answers_429_with_retry_after(exchange_emulator):
    exchange_emulator.update(weight_limit=10, window_s=2)
    url = f"{exchange_emulator.url}/api/v3/ticker/price"
    statuses = [requests.get(url, params={"symbol": "BTCUSDT"}) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    rejected = statuses[-1]
    assert rejected.json()["code"] == -1003
    assert 1 <= int(rejected.headers["Retry-After"]) <= 2
    assert rejected.headers["X-MBX-USED-WEIGHT-2S"] == "10"
    stats = exchange_emulator.stats()
    assert stats["endpoints"]["/api/v3/ticker/price"]["status_429"] == 1
    assert stats["totals"]["weight"] == 10  # the rejected call is not charged


def test_ccxt_sees_rate_limit_then_ban_then_recovers(exchange_emulator, binance_client):
    exchange_emulator.update(weight_limit=40, window_s=2, ban_strikes=2, ban_s=1.0)
    binance_client.enableRateLimit = False
    time.sleep(2.1)  # let load_markets' weight leave the window
    with pytest.raises(ccxt.DDoSProtection) as first:
        for _ in range(30):
            binance_client.fetch_ticker("BTC/USDT")
    assert "429" in str(first.value)
    assert "418" not in str(first.value)
    with pytest.raises(ccxt.DDoSProtection):
        binance_client.fetch_ticker("BTC/USDT")  # strike 1: 429 again
    with pytest.raises(ccxt.DDoSProtection) as banned:
        binance_client.fetch_ticker("BTC/USDT")  # strike 2: banned
    assert "418" in str(banned.value)
    assert "banned until" in str(banned.value)
    assert exchange_emulator.stats()["totals"]["status_418"] == 1

    time.sleep(1.0 + 2.0 + 0.2)  # the ban, then one window for the charged weight to leave
    assert binance_client.fetch_ticker("BTC/USDT")["bid"] > 0


def test_limiter_retry_after_and_escalating_bans():
    clock = FakeClock()
    limiter = WeightLimiter(clock)
    policy = BanPolicy(strikes=2, first_ban_s=10, max_ban_s=25)

    def admit(weight: float = 4):
        return limiter.admit("1.2.3.4", weight, limit=10, window_s=60, policy=policy)

    assert admit().status == 200  # t=1000, used 4
    clock.now += 30
    assert admit().status == 200  # t=1030, used 8
    over = admit()
    assert (over.status, over.retry_after) == (429, 30)  # the first 4 leave at t=1060
    assert limiter.admit("5.6.7.8", 4, limit=10, window_s=60, policy=policy).status == 200

    clock.now += 1
    assert admit().status == 429  # strike 1
    first_ban = admit()  # strike 2
    assert (first_ban.status, first_ban.retry_after) == (418, 10)
    clock.now += 5
    assert admit().status == 418
    clock.now += 5
    assert admit(weight=1).status == 200  # ban over, and room in the window again

    clock.now += 60
    assert admit().status == 200
    assert admit().status == 200
    assert admit().status == 429
    assert admit().status == 429
    second_ban = admit()
    assert (second_ban.status, second_ban.retry_after) == (418, 20)  # doubled
    clock.now += 21
    for _ in range(3):
        admit(weight=100)  # never fits: 429, strike, ban
    assert admit().retry_after == 25  # capped at max_ban_s


def test_limits_can_be_switched_off_but_still_counted(exchange_emulator):
    exchange_emulator.update(weight_limit=5, enforce_limits=False)
    for _ in range(4):
        response = requests.get(f"{exchange_emulator.url}/api/v3/ticker/price")
        assert response.status_code == 200
    assert used_weight(response) == 16


# --- errors and fault injection -----------------------------------------------------------


def test_unknown_symbols(exchange_emulator, binance_client):
    response = requests.get(
        f"{exchange_emulator.url}/api/v3/ticker/bookTicker", params={"symbol": "NOPEUSDT"}
    )
    assert response.status_code == 400
    assert response.json() == {"code": -1121, "msg": "Invalid symbol."}

    exchange_emulator.update(unknown_symbols=["ETH/USDT"])
    with pytest.raises(ccxt.BadSymbol):
        binance_client.fetch_ticker("ETH/USDT")
    with pytest.raises(ccxt.BadSymbol):
        binance_client.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert "ETH/USDT" not in binance_client.fetch_bids_asks()
    assert binance_client.fetch_ticker("BTC/USDT")["bid"] > 0


def test_failures_and_malformed_bodies(exchange_emulator, binance_client):
    exchange_emulator.update(fail_rate=1.0, fail_status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        binance_client.fetch_ticker("BTC/USDT")
    exchange_emulator.update(fail_rate=0.0, malformed_rate=1.0)
    raw = requests.get(f"{exchange_emulator.url}/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
    assert raw.status_code == 200
    with pytest.raises(ValueError):
        raw.json()
    # ccxt does not raise on an unparsable 200: the caller gets a ticker without prices.
    assert binance_client.fetch_ticker("BTC/USDT")["bid"] is None
    exchange_emulator.update(malformed_rate=0.0)
    assert binance_client.fetch_ticker("BTC/USDT")["ask"] > 0


def test_hang_blocks_traffic_until_cleared_but_not_control(exchange_emulator):
    exchange_emulator.update(hang=True)
    finished = threading.Event()

    def call() -> None:
        requests.get(f"{exchange_emulator.url}/api/v3/ping", timeout=30)
        finished.set()

    worker = threading.Thread(target=call)
    worker.start()
    assert not finished.wait(0.5)
    assert requests.get(f"{exchange_emulator.url}/_sim/stats", timeout=5).status_code == 200
    hung_at = time.time()
    requests.put(f"{exchange_emulator.url}/_sim/settings", json={"hang": False}, timeout=5)
    assert finished.wait(10)
    worker.join(10)
    assert not worker.is_alive()
    (entry,) = exchange_emulator.stats()["log"]
    assert entry["t"] < hung_at <= entry["done"]


def test_latency_is_added(exchange_emulator):
    exchange_emulator.update(latency_ms=150)
    response = requests.get(f"{exchange_emulator.url}/api/v3/ping")
    assert response.elapsed.total_seconds() >= 0.15


# --- control surface ----------------------------------------------------------------------


def test_control_surface_over_http(exchange_emulator):
    base = exchange_emulator.url
    settings = requests.get(f"{base}/_sim/settings").json()
    assert settings["weight_limit"] == 6000 and settings["window_s"] == 60

    changed = requests.put(f"{base}/_sim/settings", json={"latency_ms": 5, "fail_rate": 0.5})
    assert changed.json()["latency_ms"] == 5 and changed.json()["fail_rate"] == 0.5
    bad = requests.put(f"{base}/_sim/settings", json={"latency_ms": 1, "no_such_knob": 1})
    assert bad.status_code == 400 and "no_such_knob" in bad.json()["error"]
    assert exchange_emulator.settings()["latency_ms"] == 5  # rejected change applied nothing
    with pytest.raises(SettingsError):
        exchange_emulator.update(fail_rate=2)
    with pytest.raises(SettingsError):
        exchange_emulator.update(hang="yes")

    exchange_emulator.update(fail_rate=0, weight_limit=3)
    requests.get(f"{base}/api/v3/ping")
    t_mid = time.time()
    requests.get(f"{base}/api/v3/time")
    requests.get(f"{base}/api/v3/ticker/price", params={"symbol": "BTCUSDT"})  # 429
    stats = requests.get(f"{base}/_sim/stats").json()
    assert stats["totals"]["calls"] == 3  # control calls never count
    assert stats["totals"]["status_429"] == 1
    assert [e["endpoint"] for e in stats["log"]] == [
        "/api/v3/ping",
        "/api/v3/time",
        "/api/v3/ticker/price",
    ]
    recent = requests.get(f"{base}/_sim/stats", params={"since": t_mid}).json()["log"]
    assert [e["endpoint"] for e in recent] == ["/api/v3/time", "/api/v3/ticker/price"]

    assert requests.post(f"{base}/_sim/reset").json() == {"ok": True}
    after = exchange_emulator.stats()
    assert after["totals"]["calls"] == 0 and after["log"] == []
    assert requests.get(f"{base}/api/v3/ping").status_code == 200  # window cleared too


def test_ccxt_config_block_points_every_family_at_the_emulator():
    block = exchange_ccxt_config("http://127.0.0.1:9", ["BTC/USDT"])
    assert block["name"] == "binance" and block["enable_ws"] is False
    assert block["key"] == "" and block["secret"] == ""
    assert block["pair_whitelist"] == ["BTC/USDT"]
    api = block["ccxt_config"]["urls"]["api"]
    assert api["public"] == "http://127.0.0.1:9/api/v3"
    assert api["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    assert all(url.startswith("http://127.0.0.1:9/") for url in api.values())
    assert api["fapiData"] != api["dapiData"]  # same path on two real hosts stays apart


def test_spot_only_config_skips_futures_markets(exchange_emulator):
    config = exchange_ccxt_config(exchange_emulator.url, spot_only=True)["ccxt_config"]
    client = ccxt.binance(config)
    client.load_markets()
    assert set(exchange_emulator.stats()["endpoints"]) == {"/api/v3/exchangeInfo"}


def test_fresh_emulator_defaults():
    emulator = ExchangeEmulator()
    assert emulator.settings["weight_limit"] == 6000
    assert len(emulator.universe.usdt_pairs()) >= 300


def test_orders_are_counted_per_account(exchange_emulator):
    exchange_emulator.update(orders_limit_10s=2)
    url = f"{exchange_emulator.url}/api/v3/order"
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
    key = {"X-MBX-APIKEY": "account-a"}
    first, second, third = (requests.post(url, data=order, headers=key) for _ in range(3))
    assert first.json()["status"] == "FILLED"
    assert second.headers["X-MBX-ORDER-COUNT-10S"] == "2"
    assert second.headers["X-MBX-ORDER-COUNT-1D"] == "2"
    assert third.status_code == 429 and third.json()["code"] == -1015
    other = requests.post(url, data=order, headers={"X-MBX-APIKEY": "account-b"})
    assert other.status_code == 200


# --- hostile control-surface and order input ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"latency_ms": "\xff"}', "UTF-8"),  # was a 500 (UnicodeDecodeError)
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # was a 500 (RecursionError)
        (b'{"latency_ms": ', "not valid JSON"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_settings_put_rejects_unreadable_bodies_with_a_400(exchange_emulator, body, message):
    before = exchange_emulator.settings()
    response = put_settings_raw(exchange_emulator.url, body)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert message in response.json()["error"]
    assert exchange_emulator.settings() == before


BAD_SETTINGS = [
    ("fail_status", 42, "42"),  # not an HTTP error status
    ("fail_status", 200, "200"),
    ("fail_status", 600, "600"),
    ("fail_status", 503.5, "503.5"),
    ("fail_status", 10**400, "1000000"),  # too big for a float: was a 500 (OverflowError)
    ("latency_ms", math.nan, "nan"),
    ("latency_ms", math.inf, "inf"),
    ("jitter_ms", -1, "-1"),
    ("hang_timeout_s", math.inf, "inf"),
    ("fail_rate", math.nan, "nan"),
    ("malformed_rate", -0.5, "-0.5"),
    ("malformed_rate", 1.5, "1.5"),
    ("weight_limit", math.inf, "inf"),
    ("window_s", 0, "0"),
    ("ban_s", math.nan, "nan"),
    ("ban_max_s", -1, "-1"),
    ("orders_limit_10s", -3, "-3"),
]


@pytest.mark.parametrize(("key", "value", "shown"), BAD_SETTINGS)
def test_settings_must_be_finite_and_in_range(exchange_emulator, key, value, shown):
    assert_setting_refused(exchange_emulator, key, value, shown)
    with pytest.raises(SettingsError, match=key):
        ExchangeEmulator({key: value})


def test_huge_bad_value_is_not_echoed_whole(exchange_emulator):
    response = put_settings_raw(
        exchange_emulator.url, json.dumps({"fail_status": "x" * 1_000_000}).encode()
    )
    assert response.status_code == 400
    assert "fail_status" in response.json()["error"]
    assert len(response.text) < 2000
    unknown = put_settings_raw(exchange_emulator.url, json.dumps({"k" * 1_000_000: 1}).encode())
    assert unknown.status_code == 400 and len(unknown.text) < 2000


@pytest.mark.parametrize("status", [400, 429, 500, 503, 599])
def test_every_http_error_status_can_be_injected(exchange_emulator, status):
    exchange_emulator.update(fail_rate=1.0, fail_status=status)
    assert requests.get(f"{exchange_emulator.url}/api/v3/ping").status_code == status


def test_order_with_a_non_utf8_body_is_a_400(exchange_emulator):
    response = requests.post(
        f"{exchange_emulator.url}/api/v3/order",
        data=b"symbol=BTCUSDT&side=BUY&quantity=1&newClientOrderId=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400  # was a 500
    assert response.json()["code"] == -1100
    broken_multipart = requests.post(
        f"{exchange_emulator.url}/api/v3/order",
        data=b"--x\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken_multipart.status_code == 400 and broken_multipart.json()["code"] == -1100
    row = exchange_emulator.stats()["endpoints"]["POST /api/v3/order"]
    assert row["calls"] == 2 and row["errors"] == 2


@pytest.mark.parametrize("quantity", ["abc", "nan", "inf", "-1", "0", ""])
def test_order_with_a_bad_quantity_is_a_400(exchange_emulator, quantity):
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": quantity}
    response = requests.post(f"{exchange_emulator.url}/api/v3/order", data=order)
    assert response.status_code == 400  # "abc" was a 500, "nan" and "inf" filled
    assert response.json()["code"] in (-1100, -1102)


def test_deeply_nested_symbols_parameter_is_a_400(exchange_emulator):
    response = requests.get(
        f"{exchange_emulator.url}/api/v3/ticker/price", params={"symbols": "[" * 2000}
    )
    assert response.status_code == 400  # was a 500 (RecursionError)
    assert response.json()["code"] == -1100


@pytest.mark.parametrize("since", ["abc", "nan", "inf"])
def test_stats_since_must_be_a_finite_number(exchange_emulator, since):
    response = requests.get(f"{exchange_emulator.url}/_sim/stats", params={"since": since})
    assert response.status_code == 400  # "abc" was a 500
    assert "since" in response.json()["error"]


# --- pinned prices ------------------------------------------------------------------------


def ccxt_tops(client: ccxt.binance, pair: str) -> list[tuple[float, float, float, float]]:
    """(bid, bid qty, ask, ask qty) as ccxt reads them from bookTicker, depth (limit 1) and
    ticker/24hr, in that order."""
    book_ticker = client.fetch_bids_asks([pair])[pair]
    book = client.fetch_l2_order_book(pair, 1)
    ticker = client.fetch_ticker(pair)
    return [
        (
            book_ticker["bid"],
            book_ticker["bidVolume"],
            book_ticker["ask"],
            book_ticker["askVolume"],
        ),
        (book["bids"][0][0], book["bids"][0][1], book["asks"][0][0], book["asks"][0][1]),
        (ticker["bid"], ticker["bidVolume"], ticker["ask"], ticker["askVolume"]),
    ]


def raw_views(url: str, symbol: str) -> dict[str, object]:
    """Every REST market-data view of one symbol, without the fields that carry the time."""

    def get(path: str, **params: object) -> object:
        response = requests.get(f"{url}/api/v3/{path}", params={"symbol": symbol, **params})
        assert response.status_code == 200, response.text
        return response.json()

    depth = get("depth", limit=20)
    ticker = get("ticker/24hr")
    avg = get("avgPrice")
    assert isinstance(depth, dict) and isinstance(ticker, dict) and isinstance(avg, dict)
    depth.pop("lastUpdateId")
    for key in ("openTime", "closeTime"):
        ticker.pop(key)
    avg.pop("closeTime")
    return {
        "bookTicker": get("ticker/bookTicker"),
        "price": get("ticker/price"),
        "depth": depth,
        "ticker": ticker,
        "avgPrice": avg,
    }


PAIRS_TO_COMPARE = ("ETH/USDT", "BTC/USDT", "PEPE/USDT", "SOL/BTC")


@pytest.mark.parametrize("pinned", [{}, {"ETH/USDT": 3000, "PEPEUSDT": 0.00000913}])
def test_book_ticker_top_is_depth_top_and_ticker_bid_ask(
    clocked_exchange_emulator, sim_clock: SimClock, pinned
):
    """What a batched book-ticker price is built from equals `order_book_top` 1 and the
    ticker's bid/ask, for pinned and unpinned symbols alike (all read at one instant)."""
    clocked_exchange_emulator.update(pinned_prices=pinned)
    client = make_binance_client(clocked_exchange_emulator.url)
    client.load_markets()
    for _ in range(3):
        for pair in PAIRS_TO_COMPARE:
            book_ticker, depth, ticker = ccxt_tops(client, pair)
            assert book_ticker == depth == ticker, pair
            bid, _, ask, _ = book_ticker
            assert 0 < bid < ask
        sim_clock.advance(37.5)


def test_pinned_symbol_is_the_same_in_every_view_whenever_it_is_read(
    clocked_exchange_emulator, sim_clock: SimClock
):
    url = clocked_exchange_emulator.url
    response = requests.put(
        f"{url}/_sim/settings", json={"pinned_prices": {"ETH/USDT": 3000, "BTCUSDT": 61000.5}}
    )
    assert response.status_code == 200
    assert response.json()["pinned_prices"] == {"ETHUSDT": 3000.0, "BTCUSDT": 61000.5}
    assert requests.get(f"{url}/_sim/settings").json()["pinned_prices"] == {
        "ETHUSDT": 3000.0,
        "BTCUSDT": 61000.5,
    }

    client = make_binance_client(url)
    client.load_markets()
    ticker = client.fetch_ticker("ETH/USDT")
    # tick 0.01, half spread 0.025 % of the mid: the tick rounding of any other price
    assert (ticker["bid"], ticker["last"], ticker["ask"]) == (2999.25, 3000.0, 3000.75)
    assert (ticker["open"], ticker["high"], ticker["low"]) == (3000.0, 3000.75, 2999.25)
    assert ticker["change"] == 0
    assert client.fetch_last_prices(["ETH/USDT"])["ETH/USDT"]["price"] == 3000.0

    pinned_first = raw_views(url, "ETHUSDT")
    unpinned_first = raw_views(url, "SOLUSDT")
    for step in (0.4, 5.0, 3600.0):  # inside the second, the next seconds, an hour on
        sim_clock.advance(step)
        assert raw_views(url, "ETHUSDT") == pinned_first
    assert raw_views(url, "SOLUSDT") != unpinned_first  # the seed's path moves meanwhile

    # A dry-run market order walks the same book every time it is priced
    book = client.fetch_l2_order_book("ETH/USDT", 20)
    assert len(book["bids"]) == len(book["asks"]) == 20
    assert book["bids"][1][0] == pytest.approx(2999.24)
    sim_clock.advance(1.0)
    assert client.fetch_l2_order_book("ETH/USDT", 20)["asks"] == book["asks"]


def test_unpinning_returns_a_symbol_to_the_seeds_path(clocked_exchange_emulator, sim_clock):
    path = MarketUniverse(seed=42)  # the emulator's default seed
    eth, btc = path.markets["ETHUSDT"], path.markets["BTCUSDT"]
    url = clocked_exchange_emulator.url

    def book_ticker(symbol: str) -> dict[str, str]:
        return requests.get(f"{url}/api/v3/ticker/bookTicker", params={"symbol": symbol}).json()

    def on_path(market, at: float) -> dict[str, str]:
        quote = path.quote(market, at)
        return {
            "symbol": market.symbol,
            "bidPrice": market.fmt_price(quote.bid),
            "bidQty": market.fmt_qty(quote.bid_qty),
            "askPrice": market.fmt_price(quote.ask),
            "askQty": market.fmt_qty(quote.ask_qty),
        }

    clocked_exchange_emulator.update(pinned_prices={"ETH/USDT": 3000, "BTC/USDT": 61000})
    assert book_ticker("ETHUSDT")["bidPrice"] == "2999.25"
    sim_clock.advance(10)
    changed = clocked_exchange_emulator.update(pinned_prices={"ETH/USDT": None, "BTCUSDT": 61000})
    assert changed["pinned_prices"] == {"BTCUSDT": 61000.0}
    assert book_ticker("ETHUSDT") == on_path(eth, sim_clock.now)
    assert book_ticker("BTCUSDT") != on_path(btc, sim_clock.now)

    sim_clock.advance(10)
    clocked_exchange_emulator.update(pinned_prices={})  # absent: unpinned as well
    assert book_ticker("BTCUSDT") == on_path(btc, sim_clock.now)
    assert clocked_exchange_emulator.emulator.universe.pins() == {}


def test_klines_are_flat_inside_a_pin_and_keep_their_past(clocked_exchange_emulator, sim_clock):
    path = MarketUniverse(seed=42)
    eth = path.markets["ETHUSDT"]
    client = make_binance_client(clocked_exchange_emulator.url)
    client.load_markets()

    sim_clock.now = 1_790_000_010.5  # 10.5 s into a minute
    pinned_at = sim_clock.now
    clocked_exchange_emulator.update(pinned_prices={"ETH/USDT": 3000})
    stepped_at = sim_clock.advance(300)
    clocked_exchange_emulator.update(pinned_prices={"ETH/USDT": 3100})
    sim_clock.advance(300)

    def price(value: float) -> float:
        return float(eth.fmt_price(value))

    def check(candles: list[list[float]]) -> None:
        assert len(candles) == 15
        for open_ms, open_, high, low, close, volume in candles:
            open_s, close_s = open_ms / 1000, open_ms / 1000 + 59.999
            assert volume > 0
            if close_s < pinned_at:  # before the pin: the seed's path, as before
                expected = path.candle(eth, int(open_s), 60, sim_clock.now)[1:5]
                assert [open_, high, low, close] == [price(v) for v in expected]
            elif open_s < pinned_at:  # spans the pin: from the path to the pinned price
                assert open_ == price(path.mid_price(eth, open_s))
                assert close == 3000.0
                assert low <= min(open_, close) <= max(open_, close) <= high
            elif close_s < stepped_at:
                assert open_ == high == low == close == 3000.0
            elif open_s < stepped_at:  # spans the step
                assert (open_, close) == (3000.0, 3100.0)
                assert low <= 3000.0 < 3100.0 <= high
            else:  # after the step, the open candle too
                assert open_ == high == low == close == 3100.0

    candles = client.fetch_ohlcv("ETH/USDT", "1m", limit=15)
    assert candles[-1][0] / 1000 <= sim_clock.now < candles[-1][0] / 1000 + 60
    check(candles)

    # A reset unpins from now on; what the candles already showed stays
    assert requests.post(f"{clocked_exchange_emulator.url}/_sim/reset").json() == {"ok": True}
    assert clocked_exchange_emulator.settings()["pinned_prices"] == {}
    after_reset = client.fetch_ohlcv("ETH/USDT", "1m", limit=15)
    assert after_reset[:-1] == candles[:-1]
    open_, close = after_reset[-1][1], after_reset[-1][4]
    assert (open_, close) == (3100.0, price(path.mid_price(eth, sim_clock.now)))
    quote = path.quote(eth, sim_clock.now)
    assert client.fetch_ticker("ETH/USDT")["bid"] == price(quote.bid)


def test_pins_can_be_given_at_start(sim_clock):
    emulator = ExchangeEmulator({"pinned_prices": {"ETH/USDT": 3000}}, wall_clock=sim_clock)
    assert emulator.universe.pins() == {"ETHUSDT": 3000.0}
    assert emulator.universe.pin_at("ETHUSDT", sim_clock.now) == 3000.0
    assert emulator.universe.pin_at("ETHUSDT", sim_clock.now - 0.001) is None


BAD_PINS = [
    ({"NOPE/USDT": 1.0}, "unknown symbol 'NOPE/USDT'"),
    ({"ETH/USDT:USDT": 3000}, "unknown symbol 'ETH/USDT:USDT'"),
    ({"ETH/USDT": 0}, "'ETH/USDT' must be a finite price above 0, got 0"),
    ({"ETHUSDT": -5}, "'ETHUSDT' must be a finite price above 0, got -5"),
    ({"ETH/USDT": math.nan}, "'ETH/USDT' must be a finite price above 0, got nan"),
    ({"ETH/USDT": math.inf}, "got inf"),
    ({"ETH/USDT": "3000"}, "'ETH/USDT' must be a number, got '3000'"),
    ({"ETH/USDT": True}, "must be a number, got True"),
    ({"ETH/USDT": 10**400}, "'ETH/USDT' must be from 0.1 (10 ticks) to 1e+06"),
    ({"ETH/USDT": 2e6}, "got 2000000.0"),
    ({"ETH/USDT": 0.05}, "must be from 0.1 (10 ticks) to 1e+06, got 0.05"),
    ({"ETH/USDT": 3000, "ETHUSDT": 3001}, "ETHUSDT is named twice"),
    ({"BTC/USDT": 61000, "SOL/USDT": math.nan}, "'SOL/USDT'"),  # nothing of it applies
    (["ETH/USDT"], "must be an object"),
    (3000, "must be an object"),
]


@pytest.mark.parametrize(("value", "shown"), BAD_PINS)
def test_bad_pins_are_refused_and_change_nothing(
    clocked_exchange_emulator, sim_clock, value, shown
):
    clocked_exchange_emulator.update(pinned_prices={"ETH/USDT": 2500})
    sim_clock.advance(1)
    assert_setting_refused(clocked_exchange_emulator, "pinned_prices", value, shown)
    assert clocked_exchange_emulator.emulator.universe.pins() == {"ETHUSDT": 2500.0}
    bid = requests.get(
        f"{clocked_exchange_emulator.url}/api/v3/ticker/bookTicker", params={"symbol": "ETHUSDT"}
    ).json()["bidPrice"]
    assert bid == "2499.37"  # floor((2500 - 0.625) / 0.01) ticks
    with pytest.raises(SettingsError, match="pinned_prices"):
        ExchangeEmulator({"pinned_prices": value})
