# ruff: noqa: F811  (pytest fixtures imported from tests.sim_fixtures are parameters here)
"""The CoinGecko emulator over real HTTP, also through pycoingecko as Freqtrade uses it."""

from __future__ import annotations

import math
import threading
import time

import pytest
import requests
from freqtrade.util.coin_gecko import FtCoinGeckoApi

from tests.sim_fixtures import (
    assert_setting_refused,
    coingecko_emulator,  # noqa: F401  (fixture)
)


def test_coins_list_is_realistic(coingecko_emulator):
    coins = requests.get(f"{coingecko_emulator.url}/api/v3/coins/list").json()
    assert len(coins) >= 17000
    by_id = {c["id"]: c for c in coins}
    assert len(by_id) == len(coins)
    for coin_id, symbol in (
        ("tether", "usdt"),
        ("bitcoin", "btc"),
        ("ethereum", "eth"),
        ("binancecoin", "bnb"),
    ):
        assert by_id[coin_id]["symbol"] == symbol
    assert sum(c["symbol"] == "usdt" for c in coins) > 1  # look-alikes, as on the real list


def test_simple_price_many_ids_and_currencies(coingecko_emulator):
    response = requests.get(
        f"{coingecko_emulator.url}/api/v3/simple/price",
        params={
            "ids": "bitcoin,tether,ethereum,not-a-coin",
            "vs_currencies": "usd,eur,btc",
            "x_cg_demo_api_key": "ignored",
        },
        headers={"x-cg-demo-api-key": "ignored"},
    )
    prices = response.json()
    assert set(prices) == {"bitcoin", "tether", "ethereum"}
    assert set(prices["bitcoin"]) == {"usd", "eur", "btc"}
    assert prices["tether"]["usd"] == pytest.approx(1.0, abs=0.01)
    assert prices["bitcoin"]["btc"] == pytest.approx(1.0, rel=0.05)
    assert prices["bitcoin"]["eur"] < prices["bitcoin"]["usd"]
    missing = requests.get(f"{coingecko_emulator.url}/api/v3/simple/price")
    assert missing.status_code == 400


def test_pycoingecko_client_works_against_the_root_base_url(coingecko_emulator):
    client = FtCoinGeckoApi(api_key="demo-key", is_demo=True, retries=1)
    client.api_base_url = coingecko_emulator.url + "/"  # what patches.redirect_coingecko sets
    assert any(c["id"] == "tether" for c in client.get_coins_list())
    price = client.get_price(ids="tether", vs_currencies="usd")
    assert price["tether"]["usd"] == pytest.approx(1.0, abs=0.01)
    assert set(coingecko_emulator.stats()["endpoints"]) == {
        "/api/v3/coins/list",
        "/api/v3/simple/price",
    }


def test_forced_429_with_retry_after(coingecko_emulator):
    coingecko_emulator.update(force_429=True, retry_after=42)
    response = requests.get(f"{coingecko_emulator.url}/api/v3/ping")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert response.json()["status"]["error_code"] == 429
    assert coingecko_emulator.stats()["totals"]["status_429"] == 1
    coingecko_emulator.update(force_429=False)
    assert requests.get(f"{coingecko_emulator.url}/api/v3/ping").status_code == 200


def test_calls_per_minute_limit(coingecko_emulator):
    coingecko_emulator.update(calls_per_minute=3)
    statuses = [requests.get(f"{coingecko_emulator.url}/ping").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    coingecko_emulator.reset()
    assert requests.get(f"{coingecko_emulator.url}/ping").status_code == 200


def test_unknown_ids_failures_and_malformed(coingecko_emulator):
    base = coingecko_emulator.url
    coingecko_emulator.update(unknown_symbols=["tether"])
    params = {"ids": "tether,bitcoin", "vs_currencies": "usd"}
    assert set(requests.get(f"{base}/simple/price", params=params).json()) == {"bitcoin"}
    coingecko_emulator.update(fail_rate=1.0, fail_status=502)
    assert requests.get(f"{base}/simple/price", params=params).status_code == 502
    coingecko_emulator.update(fail_rate=0.0, malformed_rate=1.0)
    with pytest.raises(ValueError):
        requests.get(f"{base}/simple/price", params=params).json()


def test_hang_holds_requests_until_cleared(coingecko_emulator):
    coingecko_emulator.update(hang=True)
    done = threading.Event()

    def call() -> None:
        requests.get(f"{coingecko_emulator.url}/api/v3/ping", timeout=30)
        done.set()

    worker = threading.Thread(target=call)
    worker.start()
    assert not done.wait(0.5)
    hung_at = time.time()
    settings = requests.put(f"{coingecko_emulator.url}/_sim/settings", json={"hang": False})
    assert settings.json()["hang"] is False
    assert done.wait(10)
    worker.join(10)
    assert not worker.is_alive()
    # Not merely slow to arrive: the call reached the emulator before the hang was cleared
    # and was answered only after.
    (entry,) = coingecko_emulator.stats()["log"]
    assert entry["t"] < hung_at <= entry["done"]


def test_settings_put_rejects_a_non_utf8_body_with_a_400(coingecko_emulator):
    before = coingecko_emulator.settings()
    response = requests.put(
        f"{coingecko_emulator.url}/_sim/settings",
        data=b'{"retry_after": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400  # was a 500 (UnicodeDecodeError)
    assert "UTF-8" in response.json()["error"]
    assert coingecko_emulator.settings() == before


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("fail_status", 42, "42"),
        ("fail_status", 302, "302"),
        ("fail_rate", math.nan, "nan"),
        ("malformed_rate", math.inf, "inf"),
        ("latency_ms", math.nan, "nan"),
        ("retry_after", math.nan, "nan"),
        ("retry_after", -1, "-1"),
        ("calls_per_minute", math.inf, "inf"),
        ("calls_per_minute", -1, "-1"),
    ],
)
def test_settings_must_be_finite_and_in_range(coingecko_emulator, key, value, shown):
    assert_setting_refused(coingecko_emulator, key, value, shown)


def test_a_huge_retry_after_can_still_be_served(coingecko_emulator):
    """Clients must cope with absurd headers (ratekit caps them), so the emulator can send one."""
    coingecko_emulator.update(force_429=True, retry_after=1_000_000_000)
    response = requests.get(f"{coingecko_emulator.url}/api/v3/ping")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1000000000"
