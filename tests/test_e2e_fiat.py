"""Background fiat end to end: real ratekit bots against the CoinGecko emulator.

Design rule 5 ("fiat never blocks"), proved with a real bot: while CoinGecko hangs, answers 429
or returns broken JSON, `/api/v1/profit` and `/api/v1/status` answer at once with the last known
fiat price, the ratekit routes show the stale state and the error, and the price is fetched again
as soon as CoinGecko is back. A restart reuses the coin list saved on disk, and the CoinGecko API
key never shows up in the log or in a ratekit route.

Fiat values are checked through the price they were converted with: open trades keep moving
with the exchange emulator's prices, so `profit_all_fiat` itself changes, but
`profit_all_fiat / profit_all_coin` is the USDT->USD price the converter handed out.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from freqtrade_ratekit.sim import (
    CoinGeckoEmulator,
    ExchangeEmulator,
    RunningEmulator,
    start_coingecko_emulator,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

REFRESH_INTERVAL = 2.0
STALE_AFTER = 3.0  # above the refresh period plus a call, so a healthy price never looks stale
# The bot's CoinGecko timeout. Longer than READER_LIMIT_S on purpose: a reader that waited for
# the background call would be caught, and the emulator's hang (300 s) outlasts both.
COINGECKO_TIMEOUT = 5.0
READER_LIMIT_S = 2.0
RETRY_AFTER = 3  # seconds, sent by the emulator with every forced 429
SLACK_S = 5.0  # scheduling noise on a busy 2-core CI machine; never part of the claim itself
PAIR = "usdt/usd"  # stake USDT shown in USD
API_KEY = "CG-e2e-fiat-secret-7d41c9a0b2"
OPEN_TRADES = 2
COINS_LIST = "/api/v3/coins/list"
SIMPLE_PRICE = "/api/v3/simple/price"


def fiat_bot_config(
    exchange: RunningEmulator[ExchangeEmulator],
    coingecko: RunningEmulator[CoinGeckoEmulator],
    db_dir: Path,
) -> dict[str, Any]:
    return make_bot_config(
        exchange.url,
        coingecko.url,
        find_free_port(),
        pairs=exchange.emulator.universe.usdt_pairs()[:OPEN_TRADES],
        max_open_trades=OPEN_TRADES,
        ratekit={
            "enabled": True,
            "fiat": {
                "refresh_interval": REFRESH_INTERVAL,
                "stale_after": STALE_AFTER,
                "timeout": COINGECKO_TIMEOUT,
            },
            # /profit computed on every request, as stock does: its fiat conversion runs on
            # the request path here, which is what these tests hold to "never waits"
            "readers": {"snapshot": False},
        },
        fiat_display_currency="USD",
        extra={"coingecko": {"api_key": API_KEY, "is_demo": True}},
        db_dir=db_dir,
    )


def fiat_pair(bot: BotProcess) -> dict[str, Any]:
    """The USDT->USD record of `/api/v1/ratekit/fiat` (an empty dict before it is registered)."""
    status, body, _ = bot.get("/api/v1/ratekit/fiat", timeout=10)
    assert status == 200, body
    return next((p for p in body["pairs"] if p["pair"] == PAIR), {})


def fiat_document(bot: BotProcess) -> dict[str, Any]:
    status, body, _ = bot.get("/api/v1/ratekit/fiat", timeout=10)
    assert status == 200, body
    return dict(body)


def is_fresh(record: dict[str, Any]) -> bool:
    return record.get("state") == "fresh" and bool(record.get("price"))


def reader_fiat_prices(bot: BotProcess) -> list[float]:
    """The USDT->USD prices `/profit` and `/status` converted with, asserting they were fast."""
    status, profit, seconds = bot.get("/api/v1/profit", timeout=60)
    assert status == 200, profit
    assert seconds < READER_LIMIT_S, f"/profit took {seconds:.2f}s"
    assert profit["profit_all_coin"], f"no stake profit to convert: {profit}"
    prices = [profit["profit_all_fiat"] / profit["profit_all_coin"]]

    status, trades, seconds = bot.get("/api/v1/status", timeout=60)
    assert status == 200, trades
    assert seconds < READER_LIMIT_S, f"/status took {seconds:.2f}s"
    assert len(trades) == OPEN_TRADES
    prices += [trade["profit_fiat"] / trade["profit_abs"] for trade in trades]
    return prices


def assert_readers_use(bot: BotProcess, price: float) -> None:
    for served in reader_fiat_prices(bot):
        assert served == pytest.approx(price, rel=1e-9)


def assert_readers_follow_the_route(bot: BotProcess) -> None:
    """Readers convert with the route's price, read right before or right after them (a
    background round may land in between)."""
    before = fiat_pair(bot)["price"]
    served = reader_fiat_prices(bot)
    after = fiat_pair(bot)["price"]
    for price in served:
        assert price == pytest.approx(before, rel=1e-9) or price == pytest.approx(
            after, rel=1e-9
        ), (price, before, after)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningEmulator[ExchangeEmulator]]:
    with start_exchange_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def coingecko() -> Iterator[RunningEmulator[CoinGeckoEmulator]]:
    with start_coingecko_emulator() as emulator:
        yield emulator


@pytest.fixture
def healthy_coingecko(coingecko: RunningEmulator[CoinGeckoEmulator]) -> Iterator[None]:
    """Each test starts, and leaves, with CoinGecko answering normally."""
    healthy = {"hang": False, "force_429": False, "malformed_rate": 0.0}
    coingecko.update(**healthy)
    yield
    coingecko.update(**healthy)


@pytest.fixture(scope="module")
def fiat_bot(
    tmp_path_factory: pytest.TempPathFactory,
    exchange: RunningEmulator[ExchangeEmulator],
    coingecko: RunningEmulator[CoinGeckoEmulator],
) -> Iterator[BotProcess]:
    """One ratekit bot with open trades and a fresh USDT->USD price, shared by the module."""
    workdir = tmp_path_factory.mktemp("fiat-bot")
    bot = BotProcess(fiat_bot_config(exchange, coingecko, workdir), workdir, with_ratekit=True)
    bot.start()
    try:
        bot.open_trades(OPEN_TRADES)
        bot.get("/api/v1/profit")  # the first conversion registers the pair with the converter
        wait_for(lambda: fiat_pair(bot), is_fresh, 30, f"a first fresh {PAIR} price")
        yield bot
    finally:
        bot.stop()


# -- outages ---------------------------------------------------------------------------------


def ride_out_outage(bot: BotProcess, error_marker: str) -> None:
    """While CoinGecko misbehaves: readers stay fast on the last price, the routes show the
    stale state and the error."""

    def observe() -> dict[str, Any]:
        assert_readers_follow_the_route(bot)
        return fiat_pair(bot)

    wait_for(
        observe,
        lambda r: error_marker in (r.get("last_error") or ""),
        REFRESH_INTERVAL + COINGECKO_TIMEOUT + SLACK_S,
        f"a CoinGecko error containing {error_marker!r}",
    )
    # From the first failure on, no round can succeed: the price is the last known one.
    price = fiat_pair(bot)["price"]
    assert price > 0

    def observe_fixed_price() -> dict[str, Any]:
        assert_readers_use(bot, price)
        return fiat_pair(bot)

    stale = wait_for(
        observe_fixed_price,
        lambda r: r["state"] == "stale",
        STALE_AFTER + SLACK_S,
        f"{PAIR} shown as stale",
    )
    assert stale["price"] == price
    assert stale["age_s"] >= STALE_AFTER
    assert error_marker in stale["last_error"]
    # The same picture in the status document that `freqtrade-ratekit status` reads.
    _, status, _ = bot.get("/api/v1/ratekit/status", timeout=10)
    shown = next(p for p in status["fiat"]["pairs"] if p["pair"] == PAIR)
    assert shown["state"] == "stale"
    assert shown["price"] == price
    assert error_marker in shown["last_error"]
    assert status["fiat"]["consecutive_failures"] >= 1
    assert_readers_use(bot, price)


def assert_recovers_within_one_period(bot: BotProcess) -> None:
    """After CoinGecko recovers, the round the route announces (or the end of a 429 pause),
    at the latest one period later, fetches the price again; readers then use it."""
    document = fiat_document(bot)
    last_refresh = document["last_refresh_at"]
    scheduled_in = next(p for p in document["pairs"] if p["pair"] == PAIR)["next_refresh_in_s"]
    paused_for = max(0.0, (document["paused_until"] or 0.0) - time.time())
    wait_for(
        lambda: fiat_pair(bot),
        lambda r: is_fresh(r) and r["last_error"] is None,
        max(scheduled_in, paused_for) + REFRESH_INTERVAL + SLACK_S,
        f"{PAIR} fresh again after CoinGecko recovered",
    )
    document = fiat_document(bot)
    assert document["last_refresh_at"] > last_refresh
    assert document["consecutive_failures"] == 0
    assert document["paused_until"] is None
    assert_readers_follow_the_route(bot)


@pytest.mark.usefixtures("healthy_coingecko")
def test_hanging_coingecko_does_not_hold_readers(
    fiat_bot: BotProcess, coingecko: RunningEmulator[CoinGeckoEmulator]
) -> None:
    coingecko.update(hang=True)  # hang_timeout_s is 300 s: far beyond any wait here
    ride_out_outage(fiat_bot, "Timeout")
    coingecko.update(hang=False)
    assert_recovers_within_one_period(fiat_bot)


@pytest.mark.usefixtures("healthy_coingecko")
def test_rate_limited_coingecko_is_left_alone_until_retry_after(
    fiat_bot: BotProcess, coingecko: RunningEmulator[CoinGeckoEmulator]
) -> None:
    started = time.time()
    coingecko.update(force_429=True, retry_after=RETRY_AFTER)
    ride_out_outage(fiat_bot, "HTTP 429")
    document = fiat_document(fiat_bot)
    assert document["calls"]["status_429"] >= 1
    wait_for(
        lambda: [e for e in coingecko.stats(since=started)["log"] if e["status"] == 429],
        lambda rejected: len(rejected) >= 2,
        2 * RETRY_AFTER + SLACK_S,
        "a second 429 (one Retry-After after the first)",
    )
    coingecko.update(force_429=False)
    assert_recovers_within_one_period(fiat_bot)

    # Retry-After honoured: no CoinGecko call was sent while the bot was told to wait.
    log = [e for e in coingecko.stats(since=started)["log"] if e["endpoint"] == SIMPLE_PRICE]
    for rejected, following in itertools.pairwise(log):
        if rejected["status"] == 429:
            assert following["t"] - rejected["done"] >= RETRY_AFTER - 0.2, log


@pytest.mark.usefixtures("healthy_coingecko")
def test_malformed_coingecko_answers_keep_the_last_price(
    fiat_bot: BotProcess, coingecko: RunningEmulator[CoinGeckoEmulator]
) -> None:
    coingecko.update(malformed_rate=1.0)
    ride_out_outage(fiat_bot, "malformed JSON")
    coingecko.update(malformed_rate=0.0)
    assert_recovers_within_one_period(fiat_bot)


# -- coin list on disk -----------------------------------------------------------------------


def test_restart_with_coin_list_on_disk_makes_no_coins_list_call(
    tmp_path: Path,
    exchange: RunningEmulator[ExchangeEmulator],
    coingecko_emulator: RunningEmulator[CoinGeckoEmulator],
) -> None:
    """Its own CoinGecko emulator: the call log then holds these two bots' calls only."""
    coingecko = coingecko_emulator
    first = BotProcess(fiat_bot_config(exchange, coingecko, tmp_path), tmp_path, with_ratekit=True)
    coin_list_file = first.userdir / "ratekit" / "coingecko_coins_list.json"
    with first:
        wait_for(coin_list_file.exists, bool, 30, f"the coin list saved at {coin_list_file}")
        assert fiat_document(first)["coin_list"]["source"] == "network"
    first_run = [e["endpoint"] for e in coingecko.stats()["log"]]
    assert first_run.count(COINS_LIST) == 1, first_run
    saved = coin_list_file.read_text()
    assert len(json.loads(saved)["coins"]) == len(coingecko.emulator.coins)
    assert API_KEY not in saved

    # Same workdir, so the same user_data dir and coin_list_path; a fresh API port.
    second = BotProcess(fiat_bot_config(exchange, coingecko, tmp_path), tmp_path, with_ratekit=True)
    second_started = time.time()
    with second:
        second.get("/api/v1/profit")  # registers USDT->USD with the converter
        record = wait_for(lambda: fiat_pair(second), is_fresh, 30, f"a fresh {PAIR} price")
        assert record["gecko_id"] == "tether"
        document = fiat_document(second)
    assert document["coin_list"]["source"] == "disk"
    assert document["coin_list"]["entries"] == len(coingecko.emulator.coins)
    assert document["calls"]["coins_list"] == 0
    second_run = [e["endpoint"] for e in coingecko.stats(since=second_started)["log"]]
    assert second_run.count(COINS_LIST) == 0, second_run
    assert second_run.count(SIMPLE_PRICE) >= 1  # it did talk to CoinGecko, for prices only


# -- the API key -----------------------------------------------------------------------------


@pytest.mark.usefixtures("healthy_coingecko")
def test_api_key_never_appears_in_logs_or_ratekit_routes(
    fiat_bot: BotProcess, coingecko: RunningEmulator[CoinGeckoEmulator]
) -> None:
    """Checked with a CoinGecko error in the log (more after the outage tests, when they ran
    first): error paths are where a key in a URL would leak."""
    coingecko.update(force_429=True, retry_after=1)
    wait_for(
        lambda: fiat_pair(fiat_bot),
        lambda r: "HTTP 429" in (r.get("last_error") or ""),
        REFRESH_INTERVAL + SLACK_S,
        "a CoinGecko 429 reported",
    )
    coingecko.update(force_429=False)
    for route in ("status", "cache", "fiat", "weights", "metrics"):
        response = requests.get(
            f"{fiat_bot.api_url}/api/v1/ratekit/{route}",
            auth=(fiat_bot.username, fiat_bot.password),
            timeout=10,
        )
        assert response.status_code == 200, route
        assert API_KEY not in response.text, route
    log = fiat_bot.log_text()
    assert "CoinGecko rate limit" in log
    assert API_KEY not in log
