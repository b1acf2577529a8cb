# ruff: noqa: F811  (pytest fixtures imported from tests.sim_fixtures are parameters here)
"""The OKX emulator against the unmodified ccxt okx class, over real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import ccxt
import pytest
import requests

from freqtrade_ratekit.sim.harness import make_bot_config
from freqtrade_ratekit.sim.okx import (
    PUBLISHED_LIMITS,
    OkxEmulator,
    okx_ccxt_config,
    okx_decimal,
    parse_bar,
)
from freqtrade_ratekit.sim.profiles import PROFILES, exchange_config_block, profile
from freqtrade_ratekit.sim.server import SettingsError
from freqtrade_ratekit.weights.presets import charges_for, preset_for
from tests.sim_fixtures import (  # noqa: F401  (fixtures)
    SimClock,
    assert_setting_refused,
    clocked_okx_emulator,
    make_okx_client,
    okx_client,
    okx_emulator,
    sim_clock,
)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000

# One valid request per rate-limited endpoint (the path after /api/v5/).
REQUESTS: dict[str, dict[str, str]] = {
    "public/time": {},
    "public/instruments": {"instType": "SPOT"},
    "market/tickers": {"instType": "SPOT"},
    "market/ticker": {"instId": "BTC-USDT"},
    "market/books": {"instId": "BTC-USDT", "sz": "5"},
    "market/candles": {"instId": "BTC-USDT", "bar": "1m", "limit": "2"},
    "market/history-candles": {"instId": "BTC-USDT", "bar": "1m", "limit": "2"},
    "market/trades": {"instId": "BTC-USDT", "limit": "2"},
}


def get(url: str, path: str, params: dict[str, str] | None = None, **headers: str):
    return requests.get(f"{url}/api/v5/{path}", params=params, headers=headers, timeout=10)


# --- fidelity with ccxt -------------------------------------------------------------------


def test_ccxt_loads_spot_markets_only(okx_emulator, okx_client):
    markets = okx_client.markets
    universe = okx_emulator.emulator.universe
    assert len(markets) == len(universe.markets)
    assert all(m["spot"] and m["type"] == "spot" and m["active"] for m in markets.values())
    assert not any(m["margin"] for m in markets.values())
    btc = markets["BTC/USDT"]
    assert btc["id"] == "BTC-USDT"
    assert btc["precision"]["price"] == universe.markets["BTCUSDT"].tick_size
    assert btc["precision"]["amount"] == universe.markets["BTCUSDT"].step_size
    assert btc["limits"]["amount"]["min"] == universe.markets["BTCUSDT"].step_size
    assert "ETH/BTC" in markets  # the cross pairs are listed too
    calls = okx_emulator.stats()["log"]
    assert [(e["endpoint"], e["status"]) for e in calls] == [("/api/v5/public/instruments", 200)]


def test_default_ccxt_options_get_empty_lists_for_other_instrument_types(okx_emulator):
    client = ccxt.okx({"urls": {"api": {"rest": okx_emulator.url}}})
    client.load_markets()
    assert len(client.markets) == len(okx_emulator.emulator.universe.markets)
    # spot, futures, swap, and option once per default underlying (BTC-USD, ETH-USD)
    assert okx_emulator.stats()["endpoints"]["/api/v5/public/instruments"]["calls"] == 5
    swap = get(okx_emulator.url, "public/instruments", {"instType": "SWAP"}).json()
    assert swap == {"code": "0", "msg": "", "data": []}


def test_ccxt_reads_every_kind_of_price(okx_client):
    ticker = okx_client.fetch_ticker("BTC/USDT")
    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    assert ticker["low"] <= ticker["bid"] and ticker["ask"] <= ticker["high"]
    assert ticker["quoteVolume"] == pytest.approx(ticker["baseVolume"] * ticker["last"], rel=1e-6)

    tickers = okx_client.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    assert len(okx_client.fetch_tickers()) == len(okx_client.markets)

    book = okx_client.fetch_order_book("ETH/USDT", 50)
    assert len(book["bids"]) == len(book["asks"]) == 50
    assert book["bids"][0][0] < book["asks"][0][0]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    assert [a[0] for a in book["asks"]] == sorted(a[0] for a in book["asks"])

    trades = okx_client.fetch_trades("BTC/USDT", limit=5)
    assert len(trades) == 5
    assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)


def test_ccxt_ohlcv_respects_since_and_limit(okx_emulator, okx_client):
    since = (int(time.time() * 1000) // HOUR_MS - 48) * HOUR_MS
    candles = okx_client.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=10)
    assert [c[0] for c in candles] == [since + i * HOUR_MS for i in range(10)]
    for _, open_, high, low, close, volume in candles:
        assert low <= min(open_, close) <= max(open_, close) <= high
        assert volume > 0

    latest = okx_client.fetch_ohlcv("ETH/USDT", "5m", limit=3)
    assert len(latest) == 3
    assert latest[-1][0] <= time.time() * 1000 < latest[-1][0] + 300_000
    assert set(okx_emulator.stats()["endpoints"]) == {
        "/api/v5/public/instruments",
        "/api/v5/market/candles",
    }


def test_candles_reach_back_1440_bars_and_history_candles_further(okx_emulator, okx_client):
    now_ms = int(time.time() * 1000)
    current = now_ms // MINUTE_MS * MINUTE_MS
    params = {"instId": "BTC-USDT", "bar": "1m", "limit": "300"}
    recent = get(okx_emulator.url, "market/candles", params).json()["data"]
    assert [int(row[0]) for row in recent] == [current - i * MINUTE_MS for i in range(300)]
    assert [row[8] for row in recent[:2]] == ["0", "1"]  # the open candle is not confirmed

    edge = {**params, "after": str(current - 1439 * MINUTE_MS)}  # only 1440 bars back
    assert get(okx_emulator.url, "market/candles", edge).json()["data"] == []
    older = get(okx_emulator.url, "market/history-candles", edge).json()["data"]
    assert int(older[0][0]) == current - 1440 * MINUTE_MS and len(older) == 300

    # ccxt switches to history-candles for a since past that edge, and gets what it asked for
    since = current - 2000 * MINUTE_MS
    candles = okx_client.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=5)
    assert [c[0] for c in candles] == [since + i * MINUTE_MS for i in range(5)]
    assert okx_emulator.stats()["endpoints"]["/api/v5/market/history-candles"]["calls"] == 2


@pytest.mark.parametrize(
    ("bar", "seconds", "offset"),
    [("1m", 60, 0), ("4H", 14400, 0), ("1D", 86400, 8 * 3600), ("1Dutc", 86400, 0)],
)
def test_bars_of_six_hours_and_more_open_on_utc8_unless_suffixed(bar, seconds, offset):
    assert parse_bar(bar, allow_seconds=False) == (seconds, offset)


def test_ccxt_daily_candles_open_at_utc_midnight(okx_client):
    candles = okx_client.fetch_ohlcv("BTC/USDT", "1d", limit=3)  # ccxt asks for 1Dutc
    assert all(c[0] % 86_400_000 == 0 for c in candles)


# --- limits -------------------------------------------------------------------------------


def test_published_limits_agree_with_the_docs_table():
    """The figures of the module docstring (OKX's endpoint pages, read 2026-12-02)."""
    assert PUBLISHED_LIMITS == {
        "public/time": 10,
        "public/instruments": 20,
        "market/tickers": 20,
        "market/ticker": 20,
        "market/books": 40,
        "market/candles": 40,
        "market/history-candles": 20,
        "market/trades": 100,
    }
    assert set(REQUESTS) == set(PUBLISHED_LIMITS)


@pytest.mark.parametrize("endpoint", sorted(PUBLISHED_LIMITS))
def test_each_endpoint_admits_its_published_limit_per_window_then_answers_50011(
    clocked_okx_emulator, sim_clock, endpoint
):
    url = clocked_okx_emulator.url
    limit = PUBLISHED_LIMITS[endpoint]
    statuses = [get(url, endpoint, REQUESTS[endpoint]).status_code for _ in range(limit)]
    assert statuses == [200] * limit
    over = get(url, endpoint, REQUESTS[endpoint])
    assert over.status_code == 429
    assert over.json() == {"code": "50011", "msg": "Too Many Requests", "data": []}
    assert "Retry-After" not in over.headers
    # another endpoint has a window of its own
    other = "market/ticker" if endpoint != "market/ticker" else "market/books"
    assert get(url, other, REQUESTS[other]).status_code == 200
    # another IP too
    assert get(url, endpoint, REQUESTS[endpoint], **{"X-Sim-Client-Ip": "10.0.0.2"}).ok

    sim_clock.advance(1.999)
    assert get(url, endpoint, REQUESTS[endpoint]).status_code == 429  # rejected: not counted
    sim_clock.advance(0.002)
    assert get(url, endpoint, REQUESTS[endpoint]).status_code == 200
    row = clocked_okx_emulator.stats()["endpoints"][f"/api/v5/{endpoint}"]
    assert row["status_429"] == 2 and row["weight"] == limit + 2


def test_instruments_are_limited_per_instrument_type(clocked_okx_emulator):
    url = clocked_okx_emulator.url
    for _ in range(20):
        assert get(url, "public/instruments", {"instType": "SPOT"}).ok
    assert get(url, "public/instruments", {"instType": "SPOT"}).status_code == 429
    assert get(url, "public/instruments", {"instType": "SWAP"}).status_code == 200


def test_limit_scale_and_window_s_change_the_windows(clocked_okx_emulator, sim_clock):
    url = clocked_okx_emulator.url
    clocked_okx_emulator.update(limit_scale=0.25, window_s=10)
    assert clocked_okx_emulator.emulator.limit_for("market/books") == 10
    assert clocked_okx_emulator.emulator.limit_for("public/time") == 2  # floor(2.5)
    clocked_okx_emulator.update(limit_scale=0.29)
    assert clocked_okx_emulator.emulator.limit_for("market/trades") == 29  # not 28.999...
    clocked_okx_emulator.update(limit_scale=0.25)
    statuses = [get(url, "market/books", REQUESTS["market/books"]).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    sim_clock.advance(5)
    assert get(url, "market/books", REQUESTS["market/books"]).status_code == 429
    sim_clock.advance(5)
    assert get(url, "market/books", REQUESTS["market/books"]).status_code == 200

    clocked_okx_emulator.update(limit_scale=0)
    assert get(url, "public/time").status_code == 429


def test_limits_can_be_switched_off_but_still_counted(okx_emulator):
    okx_emulator.update(enforce_limits=False)
    statuses = {get(okx_emulator.url, "public/time").status_code for _ in range(15)}
    assert statuses == {200}
    assert okx_emulator.stats()["endpoints"]["/api/v5/public/time"]["weight"] == 15


def test_no_usage_headers_on_rest(okx_emulator):
    response = get(okx_emulator.url, "market/ticker", REQUESTS["market/ticker"])
    assert response.ok
    assert not [h for h in response.headers if "limit" in h.lower() or "used" in h.lower()]


def test_ccxt_sees_50011_as_rate_limit_exceeded(okx_emulator):
    client = make_okx_client(okx_emulator.url, enableRateLimit=False)
    client.load_markets()
    okx_emulator.update(limit_scale=0)
    with pytest.raises(ccxt.RateLimitExceeded, match="50011"):
        client.fetch_ticker("BTC/USDT")
    okx_emulator.update(limit_scale=1)
    assert client.fetch_ticker("BTC/USDT")["last"] > 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("public/time", {}),
        ("market/tickers", {"instType": "SPOT"}),
        ("market/ticker", {"instId": "BTC-USDT"}),
        ("market/books", {"instId": "BTC-USDT", "sz": "50"}),
        ("market/candles", {"instId": "BTC-USDT", "bar": "1m", "limit": "300"}),
        ("market/history-candles", {"instId": "BTC-USDT", "bar": "1m", "limit": "300"}),
    ],
)
def test_the_preset_never_allows_more_than_the_emulator(path, params):
    """Per 2 s, what ratekit's okx preset admits on an endpoint a dry-run bot calls is at most
    the published limit the emulator enforces."""
    preset = preset_for("okx")
    weights, _ = charges_for(preset, "public", "GET", path, 1.0, params)
    per_window = min(
        preset.pool(pool).limit / preset.pool(pool).interval_s * 2 / weight
        for pool, weight in weights
    )
    assert per_window <= PUBLISHED_LIMITS[path]


# --- errors and faults --------------------------------------------------------------------


def test_unknown_and_missing_instruments(okx_emulator, okx_client):
    unknown = get(okx_emulator.url, "market/ticker", {"instId": "NOPE-USDT"})
    assert unknown.status_code == 200 and unknown.json()["code"] == "51001"
    empty = get(okx_emulator.url, "market/books", {})
    assert empty.status_code == 400 and empty.json()["code"] == "50014"
    assert "instId" in empty.json()["msg"]
    deep = get(okx_emulator.url, "market/books", {"instId": "BTC-USDT", "sz": "401"})
    assert deep.status_code == 400 and deep.json()["code"] == "51000"
    bar = get(okx_emulator.url, "market/candles", {"instId": "BTC-USDT", "bar": "1s"})
    assert bar.json()["code"] == "51000"  # 1s is for history-candles only

    okx_emulator.update(unknown_symbols=["ETH/USDT"])
    with pytest.raises(ccxt.BadSymbol):
        okx_client.fetch_ticker("ETH/USDT")
    assert "ETH/USDT" not in okx_client.fetch_tickers()
    assert okx_client.fetch_ticker("BTC/USDT")["last"] > 0


def test_unknown_paths_are_404_and_not_limited(okx_emulator):
    for _ in range(3):
        assert get(okx_emulator.url, "market/books-full", {"instId": "BTC-USDT"}).status_code == 404
    row = okx_emulator.stats()["endpoints"]["/api/v5/market/books-full"]
    assert row["calls"] == 3 and row["weight"] == 0 and row["errors"] == 3
    posted = requests.post(f"{okx_emulator.url}/api/v5/market/ticker", timeout=10)
    assert posted.status_code == 405 and posted.json()["code"] == "50115"


def test_failures_and_malformed_bodies(okx_emulator, okx_client):
    okx_emulator.update(fail_rate=1.0, fail_status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        okx_client.fetch_ticker("BTC/USDT")
    okx_emulator.update(fail_status=429)
    with pytest.raises(ccxt.RateLimitExceeded):
        okx_client.fetch_ticker("BTC/USDT")
    okx_emulator.update(fail_status=400)
    with pytest.raises(ccxt.ExchangeError):
        okx_client.fetch_ticker("BTC/USDT")
    okx_emulator.update(fail_rate=0.0, malformed_rate=1.0)
    raw = get(okx_emulator.url, "market/ticker", {"instId": "BTC-USDT"})
    assert raw.status_code == 200
    with pytest.raises(ValueError):
        raw.json()
    # ccxt does not raise on an unparsable 200: the caller gets a ticker without prices.
    assert okx_client.fetch_ticker("BTC/USDT")["bid"] is None
    okx_emulator.update(malformed_rate=0.0)
    assert okx_client.fetch_ticker("BTC/USDT")["last"] > 0


def test_latency_is_added(okx_emulator):
    okx_emulator.update(latency_ms=150)
    started = time.perf_counter()
    get(okx_emulator.url, "public/time")
    assert time.perf_counter() - started >= 0.15


# --- control surface ----------------------------------------------------------------------


def test_control_surface_over_http(okx_emulator):
    base = okx_emulator.url
    settings = requests.get(f"{base}/_sim/settings").json()
    assert settings["limit_scale"] == 1.0 and settings["window_s"] == 2
    assert settings["enforce_limits"] is True and settings["pinned_prices"] == {}
    assert "weight_limit" not in settings

    bad = requests.put(f"{base}/_sim/settings", json={"weight_limit": 5})
    assert bad.status_code == 400 and "weight_limit" in bad.json()["error"]
    okx_emulator.update(limit_scale=0.1)  # public/time: 1 per window
    get(base, "public/time")
    t_mid = time.time()
    get(base, "public/time")  # 429
    stats = requests.get(f"{base}/_sim/stats").json()
    assert stats["totals"]["calls"] == 2 and stats["totals"]["status_429"] == 1
    recent = requests.get(f"{base}/_sim/stats", params={"since": t_mid}).json()["log"]
    assert [e["status"] for e in recent] == [429]

    assert requests.post(f"{base}/_sim/reset").json() == {"ok": True}
    assert okx_emulator.stats()["totals"]["calls"] == 0
    assert get(base, "public/time").status_code == 200  # windows cleared too


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("limit_scale", -0.5, "-0.5"),
        ("limit_scale", float("nan"), "nan"),
        ("window_s", 0, "0"),
        ("window_s", 2.5, "2.5"),
        ("enforce_limits", "yes", "yes"),
    ],
)
def test_settings_must_be_valid(okx_emulator, key, value, shown):
    assert_setting_refused(okx_emulator, key, value, shown)


def test_pinned_price_is_the_same_in_every_view(okx_emulator, okx_client):
    okx_emulator.update(pinned_prices={"ETH/USDT": 3000})
    assert okx_emulator.settings()["pinned_prices"] == {"ETH-USDT": 3000.0}
    first = okx_client.fetch_ticker("ETH/USDT")
    book = okx_client.fetch_order_book("ETH/USDT", 5)
    time.sleep(1.1)
    second = okx_client.fetch_ticker("ETH/USDT")
    assert first["last"] == second["last"] == 3000
    assert (first["bid"], first["ask"]) == (second["bid"], second["ask"])
    assert (book["bids"][0][0], book["asks"][0][0]) == (first["bid"], first["ask"])
    assert first["open"] == first["last"]
    candle = okx_client.fetch_ohlcv("ETH/USDT", "1m", limit=1)[-1]
    assert candle[4] == 3000

    okx_emulator.update(pinned_prices={"ETH-USDT": None})
    assert okx_emulator.settings()["pinned_prices"] == {}
    okx_emulator.update(pinned_prices={"BTC-USDT": 61000.5})
    okx_emulator.reset()
    assert okx_emulator.settings()["pinned_prices"] == {}


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ({"NOPE/USDT": 1}, "unknown symbol"),
        ({"ETH/USDT": 1, "ETH-USDT": 2}, "named twice"),
        ({"ETH/USDT": -1}, "above 0"),
        ({"ETH/USDT": "3000"}, "number"),
        (["ETH/USDT"], "object"),
    ],
)
def test_bad_pins_are_refused(okx_emulator, pins, message):
    with pytest.raises(SettingsError, match=message):
        okx_emulator.update(pinned_prices=pins)
    assert okx_emulator.settings()["pinned_prices"] == {}


def test_fresh_emulator_defaults():
    emulator = OkxEmulator()
    assert emulator.limit_for("market/books") == 40
    assert "BTC-USDT" in emulator.instruments
    assert okx_decimal(1e-08) == "0.00000001" and okx_decimal(1_000_000.0) == "1000000"


# --- config blocks, profiles, runner ------------------------------------------------------


def test_ccxt_config_block_points_the_rest_url_at_the_emulator():
    block = okx_ccxt_config("http://127.0.0.1:9/", ["BTC/USDT"])
    assert block["name"] == "okx" and block["enable_ws"] is False
    assert block["pair_whitelist"] == ["BTC/USDT"]
    ccxt_config = block["ccxt_config"]
    assert ccxt_config["urls"] == {"api": {"rest": "http://127.0.0.1:9"}}
    assert ccxt_config["options"] == {"fetchMarkets": {"types": ["spot"]}}
    assert "options" not in okx_ccxt_config("http://x", spot_only=False)["ccxt_config"]


def test_profiles_and_bot_config(tmp_path: Path):
    assert set(PROFILES) == {"binance", "okx"}
    assert exchange_config_block("okx", "http://e")["name"] == "okx"
    with pytest.raises(ValueError, match="binance, okx"):
        profile("bybit")
    config = make_bot_config(
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        8099,
        pairs=["BTC/USDT"],
        max_open_trades=1,
        db_dir=tmp_path,
        exchange="okx",
    )
    assert config["exchange"]["name"] == "okx"
    assert config["exchange"]["ccxt_config"]["urls"]["api"]["rest"] == "http://127.0.0.1:1"


def test_emulator_runner_serves_the_okx_profile():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "freqtrade_ratekit.sim.runner",
            "--exchange",
            "okx",
            "--limit-scale",
            "0.5",
            "--pairs",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        exchange_line = process.stdout.readline().strip()
        coingecko_line = process.stdout.readline().strip()
        assert exchange_line.startswith("exchange: http://127.0.0.1:")
        assert coingecko_line.startswith("coingecko: http://127.0.0.1:")
        exchange_url = exchange_line.split(": ", 1)[1]
        text = ""
        while True:
            text += process.stdout.readline()
            try:
                snippet = json.loads(text)
                break
            except json.JSONDecodeError:
                continue
        assert snippet["exchange"]["name"] == "okx"
        assert snippet["exchange"]["ccxt_config"]["urls"]["api"]["rest"] == exchange_url
        assert snippet["exchange"]["pair_whitelist"] == ["BTC/USDT", "ETH/USDT", "BNB/USDT"]
        settings = requests.get(f"{exchange_url}/_sim/settings", timeout=5).json()
        assert settings["limit_scale"] == 0.5 and settings["window_s"] == 2
        assert get(exchange_url, "public/time").json()["code"] == "0"
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(
    "argv",
    [["--exchange", "okx", "--weight-limit", "5"], ["--limit-scale", "0.5"], ["--exchange", "x"]],
)
def test_emulator_runner_refuses_options_of_the_other_profile(argv):
    result = subprocess.run(
        [sys.executable, "-m", "freqtrade_ratekit.sim.runner", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--exchange" in result.stderr
