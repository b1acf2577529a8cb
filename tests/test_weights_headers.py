"""Header parsing against header sets in the shape each exchange documents."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from freqtrade_ratekit.weights import (
    Ledger,
    RetryPolicy,
    parse_retry_after,
    parse_usage,
    preset_for,
)

NOW = 1_763_700_000.0  # 2025-11-21T04:40:00Z

# Binance spot REST response headers (developers.binance.com .../rest-api/limits).
BINANCE_HEADERS = {
    "Content-Type": "application/json;charset=UTF-8",
    "x-mbx-uuid": "4b2f6a62-1a5d-4bd2-9e0f-4f8f0d9f8c1d",
    "x-mbx-used-weight": "23",
    "x-mbx-used-weight-1m": "23",
    "X-MBX-ORDER-COUNT-10S": "2",
    "X-MBX-ORDER-COUNT-1D": "140",
}
# Gate.io API v4 (every response; Reset-Timestamp is the server time unless exceeded).
GATE_HEADERS = {
    "X-Gate-RateLimit-Requests-Remain": "198",
    "X-Gate-RateLimit-Limit": "200",
    "X-Gate-RateLimit-Reset-Timestamp": str(int(NOW)),
    "X-Gate-Trace-Id": "e5a1",
}
# OKX REST: no usage headers, only the trace id.
OKX_HEADERS = {"Content-Type": "application/json", "x-trace-id": "abc"}
# Bitfinex REST: no usage headers either.
BITFINEX_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def test_binance_used_weight_and_order_counts():
    readings = {
        (r.kind, r.interval_s): r.used for r in parse_usage("binance", BINANCE_HEADERS, NOW)
    }
    assert readings == {("weight", 60.0): 23, ("orders", 10.0): 2, ("orders", 86400.0): 140}


def test_gate_remaining_style_headers():
    (reading,) = parse_usage("gate", GATE_HEADERS, NOW)
    assert (reading.kind, reading.interval_s) == ("requests", None)
    assert (reading.used, reading.limit, reading.remaining) == (2, 200, 198)
    assert reading.reset_at == NOW


def test_generic_ratelimit_headers_with_relative_and_epoch_reset():
    relative = {"X-RateLimit-Limit": "90", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    (reading,) = parse_usage("bitfinex", relative, NOW)
    assert (reading.used, reading.reset_at) == (90, NOW + 30)
    epoch_ms = dict(relative, **{"X-RateLimit-Reset": str(int((NOW + 5) * 1000))})
    assert parse_usage("ratelimit", epoch_ms, NOW)[0].reset_at == NOW + 5


@pytest.mark.parametrize(("fmt", "headers"), [("okx", OKX_HEADERS), ("bitfinex", BITFINEX_HEADERS)])
def test_exchanges_without_usage_headers_give_no_reading(fmt, headers):
    assert parse_usage(fmt, headers, NOW) == []


def test_garbage_values_are_skipped():
    headers = {"x-mbx-used-weight-1m": "lots", "X-Gate-RateLimit-Limit": "nan"}
    assert parse_usage("binance", headers, NOW) == []
    assert parse_usage("gate", headers, NOW) == []


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7", NOW) == 7
    later = format_datetime(datetime.fromtimestamp(NOW + 120, tz=UTC), usegmt=True)
    assert parse_retry_after(later, NOW) == pytest.approx(120)
    earlier = format_datetime(datetime.fromtimestamp(NOW - 5, tz=UTC), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_backoff_full_jitter_stays_within_bounds():
    policy = RetryPolicy(default_retry_after_s=5, backoff_base_s=1, backoff_cap_s=30)
    rng = random.Random(7)
    assert policy.pause_seconds(None, 1, rng) == 5  # first failure: the server's wait only
    assert policy.pause_seconds(2.0, 1, rng) == 2
    for streak in range(2, 12):
        bound = min(30, 2 ** (streak - 2))
        pauses = [policy.pause_seconds(2.0, streak, rng) for _ in range(200)]
        assert all(2.0 <= pause <= 2.0 + bound for pause in pauses)
        assert max(pauses) > 2.0 + bound / 2  # jitter really spreads over the range
    assert RetryPolicy(max_pause_s=60).pause_seconds(10_000, 1) == 60


def test_header_sync_follows_an_overridden_pool_window():
    preset = preset_for("binance", pools={"REQUEST_WEIGHT": {"limit": 300, "interval": 10}})
    ledger = Ledger(preset, mode="enforce", headroom=1.0)
    charge = ledger.charge_for("public", "GET", "ticker/price", {"symbol": "BTCUSDT"}, 0.4)
    ledger.acquire(charge)
    ledger.on_response(charge, 200, {"X-MBX-USED-WEIGHT-10S": "250"})
    pool = next(p for p in ledger.snapshot()["pools"] if p["name"] == "REQUEST_WEIGHT")
    assert pool["server_used"] == 250
    assert pool["used"] >= 250


# ---------------------------------------------------------------- hostile values


@pytest.mark.parametrize(
    "value",
    ["1e9", "1e308", "259201", "Fri, 31 Dec 9999 23:59:59 GMT", "Sat, 01 Jan 2300 00:00:00 GMT"],
)
def test_retry_after_is_capped_at_the_shared_maximum_pause(value):
    from freqtrade_ratekit.workers import MAX_PAUSE_S

    assert parse_retry_after(value, NOW) == MAX_PAUSE_S


@pytest.mark.parametrize(
    "value",
    [
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e400",
        "",
        "   ",
        "\x00",
        "Fri, 31 Dec 99999 23:59:59 GMT",
    ],
)
def test_retry_after_that_is_not_a_finite_number_or_date_is_absent(value):
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("value", ["-1", "-1e308", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_retry_after_in_the_past_is_zero(value):
    assert parse_retry_after(value, NOW) == 0


def test_remaining_style_headers_that_overflow_give_no_reading():
    headers = {
        "X-RateLimit-Limit": "1e308",
        "X-RateLimit-Remaining": "-1e308",  # limit - remaining overflows to inf
        "X-RateLimit-Reset": "30",
    }
    readings = parse_usage("ratelimit", headers, NOW)
    assert all(
        math.isfinite(r.used) and (r.reset_at is None or math.isfinite(r.reset_at))
        for r in readings
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"X-MBX-USED-WEIGHT-1M": "inf"},
        {"X-MBX-USED-WEIGHT-1M": "nan"},
        {"X-MBX-USED-WEIGHT-1M": "1e400"},
        {"X-RateLimit-Limit": "nan", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"},
        {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "nan"},
        {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "inf"},
    ],
)
def test_no_reading_carries_a_non_finite_figure(headers):
    for fmt in ("binance", "gate", "ratelimit"):
        for reading in parse_usage(fmt, headers, NOW):
            figures = (reading.used, reading.limit, reading.remaining, reading.reset_at)
            assert all(f is None or math.isfinite(f) for f in figures), reading


@pytest.mark.parametrize("server_wait", [float("nan"), float("inf"), -5.0, 1e308])
def test_backoff_pause_is_finite_and_capped_whatever_the_server_wait(server_wait):
    from freqtrade_ratekit.workers import MAX_PAUSE_S

    policy = RetryPolicy()
    for streak in (1, 2, 50):
        pause = policy.pause_seconds(server_wait, streak, random.Random(1))
        assert math.isfinite(pause) and 0 <= pause <= MAX_PAUSE_S


@pytest.mark.parametrize(
    "field", ["default_retry_after_s", "backoff_base_s", "backoff_cap_s", "max_pause_s"]
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_retry_policy_refuses_times_that_are_not_finite(field, value):
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})


def test_max_pause_is_three_days_and_the_policy_default():
    from freqtrade_ratekit.workers import MAX_PAUSE_S

    assert MAX_PAUSE_S == 3 * 86400
    assert RetryPolicy().max_pause_s == MAX_PAUSE_S


# ---------------------------------------------------------------- Bybit and KuCoin


@pytest.fixture
def fake_time():
    """A monotonic and a wall clock that move only when a test says so."""
    from types import SimpleNamespace

    from tests.helpers import FakeClock

    return SimpleNamespace(clock=FakeClock(1000.0), wall=FakeClock(NOW))


# The example of https://bybit-exchange.github.io/docs/v5/rate-limit (read 2026-12-02).
BYBIT_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": "141",
    "X-Bapi-Limit": "100",
    "X-Bapi-Limit-Status": "99",
    "X-Bapi-Limit-Reset-Timestamp": "1672738134824",
}
# The example of https://www.kucoin.com/docs-new/rate-limit (read 2026-12-02).
KUCOIN_HEADERS = {
    "gw-ratelimit-limit": "500",
    "gw-ratelimit-remaining": "300",
    "gw-ratelimit-reset": "1489",
}
# Bybit's answer over a UID limit (same page): HTTP 200, retCode 10006.
BYBIT_TOO_MANY = '{"retCode":10006,"retMsg":"Too many visits!","result":{},"time":1672738134824}'
# KuCoin's answer over a resource pool's quota (same page): HTTP 429, code 429000.
KUCOIN_TOO_MANY = '{"code":"429000","msg":"Too Many Requests"}'


def test_bybit_limit_status_and_reset_timestamp():
    (reading,) = parse_usage("bybit", BYBIT_HEADERS, NOW)
    assert (reading.kind, reading.interval_s) == ("requests", None)
    assert (reading.used, reading.limit, reading.remaining) == (1, 100, 99)
    assert reading.reset_at == pytest.approx(1672738134.824)


def test_kucoin_pool_quota_with_reset_countdown_in_milliseconds():
    (reading,) = parse_usage("kucoin", KUCOIN_HEADERS, NOW)
    assert (reading.used, reading.limit, reading.remaining) == (200, 500, 300)
    assert reading.reset_at == pytest.approx(NOW + 1.489)


def test_kucoin_headers_are_read_from_a_case_insensitive_mapping():
    from requests.structures import CaseInsensitiveDict

    headers = CaseInsensitiveDict({"GW-RateLimit-Limit": "4000", "GW-RateLimit-Remaining": "0"})
    (reading,) = parse_usage("kucoin", headers, NOW)
    assert (reading.used, reading.remaining, reading.reset_at) == (4000, 0, None)


@pytest.mark.parametrize(
    ("fmt", "headers"),
    [
        ("bybit", {"X-Bapi-Limit": "inf", "X-Bapi-Limit-Status": "1"}),
        ("bybit", {"X-Bapi-Limit": "10"}),
        ("kucoin", {"gw-ratelimit-limit": "nan", "gw-ratelimit-remaining": "1"}),
        ("kucoin", {"gw-ratelimit-remaining": "1"}),
    ],
)
def test_bybit_and_kucoin_headers_without_two_finite_figures_give_no_reading(fmt, headers):
    assert parse_usage(fmt, headers, NOW) == []


def test_a_negative_or_absurd_kucoin_countdown_is_no_reset_time():
    for reset in ("-5", "1e400"):
        (reading,) = parse_usage("kucoin", {**KUCOIN_HEADERS, "gw-ratelimit-reset": reset}, NOW)
        assert reading.reset_at is None


@pytest.mark.parametrize(
    ("fmt", "body", "limited"),
    [
        ("bybit", BYBIT_TOO_MANY, True),
        ("bybit", '{"retCode":0,"retMsg":"OK","result":{"price":"10006"}}', False),
        ("kucoin", KUCOIN_TOO_MANY, True),
        ("kucoin", '{"code":"200000","data":{"size":"429000"}}', False),
        ("kucoin", "429000 <html>gateway</html>", False),
        ("okx", '{"code":"50011","msg":"Too Many Requests","data":[]}', True),
        ("okx", '{"code":"0","msg":"","data":[{"last":"50011"}]}', False),
        ("binance", KUCOIN_TOO_MANY, False),
        ("kucoin", None, False),
        ("kucoin", '{"code":"429000","data":"' + "x" * 5000 + '"}', False),  # not an error body
    ],
)
def test_rate_limit_bodies(fmt, body, limited):
    from freqtrade_ratekit.weights.headers import body_says_rate_limited

    assert body_says_rate_limited(fmt, body) is limited


def test_bybit_uid_limit_exhausted_pauses_the_endpoint_until_the_reset(fake_time):
    ledger = Ledger(preset_for("bybit"), mode="enforce", clock=fake_time.clock, wall=fake_time.wall)
    charge = ledger.charge_for("private", "POST", "v5/order/create", {}, 2.5)
    ledger.acquire(charge)
    reset_ms = int((fake_time.wall() + 0.8) * 1000)
    headers = {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "0"}
    headers["X-Bapi-Limit-Reset-Timestamp"] = str(reset_ms)
    ledger.on_response(charge, 200, headers, BYBIT_TOO_MANY)
    pools = {p["name"]: p for p in ledger.snapshot()["pools"]}
    order = pools["BYBIT_ORDER:v5/order/create"]
    assert order["server_used"] == 20 and order["status_429"] == 1
    assert order["paused_until"] is not None and order["paused_until"] >= reset_ms / 1000
    assert pools["BYBIT_IP"]["status_429"] == 1  # the IP pool of the same call counts it too
    assert ledger.snapshot()["endpoints"][0]["status_429"] == 1


def test_kucoin_quota_headers_raise_the_resource_pool_count(fake_time):
    ledger = Ledger(
        preset_for("kucoin"), mode="enforce", clock=fake_time.clock, wall=fake_time.wall
    )
    charge = ledger.charge_for("private", "POST", "hf/orders", {}, 1)
    ledger.acquire(charge)
    ledger.on_response(charge, 200, KUCOIN_HEADERS)
    spot = next(p for p in ledger.snapshot()["pools"] if p["name"] == "KUCOIN_SPOT")
    assert spot["server_used"] == 200 and spot["used"] >= 200 and spot["paused_until"] is None


def test_kucoin_429000_pauses_the_pool_for_the_reset_countdown(fake_time):
    ledger = Ledger(
        preset_for("kucoin"), mode="enforce", clock=fake_time.clock, wall=fake_time.wall
    )
    charge = ledger.charge_for("public", "GET", "market/allTickers", {}, 15)
    ledger.acquire(charge)
    exhausted = {**KUCOIN_HEADERS, "gw-ratelimit-remaining": "0", "gw-ratelimit-reset": "12000"}
    ledger.on_response(charge, 429, exhausted, KUCOIN_TOO_MANY)
    public = next(p for p in ledger.snapshot()["pools"] if p["name"] == "KUCOIN_PUBLIC")
    assert public["status_429"] == 1
    assert public["paused_until"] == pytest.approx(fake_time.wall() + 12, abs=1)
