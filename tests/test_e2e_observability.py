"""Observability end to end: the ratekit REST routes, the Prometheus metrics and
`freqtrade-ratekit status`, read from a real ratekit bot trading against the emulators.

One bot serves the module. It carries fake exchange credentials, a CoinGecko API key and (when
a redis-server binary is available) a Redis weights backend behind a password, so that every
route can be checked for leaks while it shows real figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from freqtrade_ratekit import __version__, metrics
from freqtrade_ratekit.cli import status_client as status
from freqtrade_ratekit.sim import (
    CoinGeckoEmulator,
    ExchangeEmulator,
    RunningEmulator,
    exchange_ccxt_config,
    start_coingecko_emulator,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config
from tests.helpers import wait_for
from tests.redis_fixtures import RedisServer
from tests.test_documents import ROUTES as DOCUMENT_ROUTES
from tests.test_documents import validate as validate_document

pytestmark = pytest.mark.e2e

ROUTES = ("status", "cache", "fiat", "weights", "metrics")
JSON_ROUTES = ("status", "cache", "fiat", "weights")
EXCHANGE_KEY = "e2e-exchange-key-4c1f0b9d2a"
EXCHANGE_SECRET = "e2e-exchange-secret-9a8b7c6d5e"
COINGECKO_KEY = "CG-e2e-observability-3e5f7a"
REDIS_PASSWORD = "e2e-redis-pass-81d2c4"
PAIR_COUNT = 5
FIRST_TRADES = 2
FIAT_REFRESH_INTERVAL = 2.0
FIAT_PAIR = "usdt/usd"
WAIT_S = 30.0

# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningEmulator[ExchangeEmulator]]:
    with start_exchange_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def coingecko() -> Iterator[RunningEmulator[CoinGeckoEmulator]]:
    with start_coingecko_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def weights_backend() -> Iterator[str]:
    """A Redis URL with a password when redis-server is installed, else the memory backend."""
    if shutil.which("redis-server") is None:
        yield "memory"
        return
    with RedisServer(password=REDIS_PASSWORD) as server:
        yield server.url


@pytest.fixture(scope="module")
def bot(
    tmp_path_factory: pytest.TempPathFactory,
    exchange: RunningEmulator[ExchangeEmulator],
    coingecko: RunningEmulator[CoinGeckoEmulator],
    weights_backend: str,
) -> Iterator[BotProcess]:
    """A ratekit bot with open trades, a fresh fiat price and usage headers already seen."""
    workdir = tmp_path_factory.mktemp("observability-bot")
    pairs = exchange.emulator.universe.usdt_pairs()[:PAIR_COUNT]
    config = make_bot_config(
        exchange.url,
        coingecko.url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=PAIR_COUNT,
        ratekit={
            "enabled": True,
            "rate_cache": {"refresh_interval": 2, "stream": True},  # every metric exposed
            "fiat": {"refresh_interval": FIAT_REFRESH_INTERVAL, "stale_after": 60},
            "weights": {"mode": "observe", "backend": weights_backend},
        },
        extra={
            "exchange": {
                **exchange_ccxt_config(exchange.url, pairs, websocket=True),
                "key": EXCHANGE_KEY,
                "secret": EXCHANGE_SECRET,
            },
            "coingecko": {"api_key": COINGECKO_KEY, "is_demo": True},
        },
        db_dir=workdir,
    )
    bot = BotProcess(config, workdir, with_ratekit=True)
    bot.start()
    try:
        bot.open_trades(FIRST_TRADES)
        bot.get("/api/v1/profit")  # registers USDT->USD with the fiat converter
        wait_for(
            lambda: bot.get("/api/v1/ratekit/fiat")[1]["pairs"],
            lambda pairs: any(p["pair"] == FIAT_PAIR and p["state"] == "fresh" for p in pairs),
            WAIT_S,
            f"a fresh {FIAT_PAIR} price",
        )
        yield bot
    finally:
        bot.stop()


def get(bot: BotProcess, route: str, auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.get(f"{bot.api_url}/api/v1/ratekit/{route}", auth=auth, timeout=10)


def login(bot: BotProcess) -> tuple[str, str]:
    return (bot.username, bot.password)


def secrets_of(bot: BotProcess, weights_backend: str) -> dict[str, str]:
    server = bot.config["api_server"]
    found = {
        "exchange key": EXCHANGE_KEY,
        "exchange secret": EXCHANGE_SECRET,
        "CoinGecko API key": COINGECKO_KEY,
        "API password": server["password"],
        "JWT secret": server["jwt_secret_key"],
        "websocket token": server["ws_token"],
    }
    if weights_backend != "memory":
        found["Redis password"] = REDIS_PASSWORD
    return found


# -- the routes ------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_routes_need_freqtrade_auth(bot: BotProcess, route: str) -> None:
    assert get(bot, route).status_code == 401
    assert get(bot, route, (bot.username, "not-the-password")).status_code == 401
    response = get(bot, route, login(bot))
    assert response.status_code == 200
    if route in JSON_ROUTES:
        assert isinstance(response.json(), dict)
    else:
        assert response.headers["content-type"].startswith("text/plain")


def test_routes_carry_the_documented_figures(bot: BotProcess) -> None:
    """Design section 2, REST API: the fields every route promises, with live values."""
    document = get(bot, "status", login(bot)).json()
    assert document["version"] == __version__
    assert document["freqtrade_version"]
    assert document["enabled"] is True
    for section in ("rate_cache", "fiat", "weights"):
        assert document[section].get("active", True) is True, section  # live, not a placeholder

    cache = get(bot, "cache", login(bot)).json()
    for side in ("entry", "exit"):
        figures = cache["sides"][side]
        counts = ("size", "capacity", "hits", "misses", "stale_reads", "negative_hits", "evictions")
        for key in counts:
            assert isinstance(figures[key], int), (side, key)
        assert 0 <= figures["hit_ratio"] <= 1
        assert figures["size"] >= FIRST_TRADES
        for entry in figures["entries"]:
            assert entry["state"] in ("fresh", "stale", "failing")
            assert entry["rate"] > 0 and entry["age_s"] >= 0
    assert {"pairs", "seconds", "at"} <= set(cache["last_prewarm"])

    fiat = get(bot, "fiat", login(bot)).json()
    record = next(p for p in fiat["pairs"] if p["pair"] == FIAT_PAIR)
    assert record["price"] > 0
    assert record["state"] == "fresh"
    assert {"age_s", "last_error", "next_refresh_in_s"} <= set(record)

    weights = get(bot, "weights", login(bot)).json()
    pools = {pool["name"]: pool for pool in weights["pools"]}
    request_weight = pools["REQUEST_WEIGHT"]
    assert request_weight["limit"] == 6000 and request_weight["interval_s"] == 60
    assert request_weight["used"] > 0
    assert request_weight["remaining"] == request_weight["effective_limit"] - request_weight["used"]
    assert request_weight["server_used"] is not None  # the emulator's usage headers were read
    assert request_weight["paused_until"] is None
    for row in weights["endpoints"]:
        assert {"calls", "weight", "wait_s", "status_429", "status_418"} <= set(row)
    assert weights["backend"]["healthy"] is True


def test_the_bots_openapi_describes_every_route_exactly(bot: BotProcess) -> None:
    """The bot's own /openapi.json lists the ratekit routes; the live documents of every
    component match their schemas with no undeclared key (see tests/test_documents.py)."""
    openapi = requests.get(f"{bot.api_url}/openapi.json", timeout=10).json()
    for route, (schema_name, key_fields) in DOCUMENT_ROUTES.items():
        operation = openapi["paths"][f"/api/v1/ratekit/{route}"]["get"]
        assert f"#/components/schemas/{schema_name}" in json.dumps(operation["responses"]["200"])
        assert key_fields <= set(openapi["components"]["schemas"][schema_name]["properties"])
        validate_document(get(bot, route, login(bot)).json(), schema_name, openapi)


def test_no_route_and_no_log_line_holds_a_secret(bot: BotProcess, weights_backend: str) -> None:
    secrets = secrets_of(bot, weights_backend)
    for route in ROUTES:
        text = get(bot, route, login(bot)).text
        for name, secret in secrets.items():
            assert secret not in text, f"{name} in /api/v1/ratekit/{route}"
    log = bot.log_text()
    for name, secret in secrets.items():
        assert secret not in log, f"{name} in the bot log"
    if weights_backend != "memory":
        # The backend is named, with the password masked: proof the URL was seen and cleaned.
        settings = get(bot, "status", login(bot)).json()["settings"]
        assert settings["weights"]["backend"].startswith("redis://:***@127.0.0.1:")
        assert get(bot, "weights", login(bot)).json()["backend"]["kind"] == "redis"


# -- Prometheus metrics ----------------------------------------------------------------------


def scrape(bot: BotProcess) -> dict[str, Any]:
    """`/api/v1/ratekit/metrics` parsed by prometheus-client's own parser, by family name."""
    response = get(bot, "metrics", login(bot))
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def family_name(spec: metrics.MetricSpec) -> str:
    """The parser names a counter family without its `_total` suffix."""
    return spec.name.removesuffix("_total") if spec.kind == metrics.COUNTER else spec.name


def total(families: dict[str, Any], name: str, **labels: str) -> float:
    """Sum of the samples of counter/gauge `name` (PromQL spelling) matching `labels`."""
    family = families.get(name.removesuffix("_total")) or families[name]
    return sum(
        sample.value
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


# Documented metrics checked apart from the rest: the admission-wait histogram (by its
# samples), the refresher metrics (see test_refresher_metrics_are_exposed) and the non-bot
# clients of the scope, which this lone bot has none of (a real download-data beside a real
# bot shows them: tests/test_e2e_download.py).
WAIT_HISTOGRAM = "ratekit_weight_wait_seconds"
SCOPE_CLIENT_METRICS = tuple(
    spec.name for spec in metrics.METRICS if spec.name.startswith("ratekit_scope_client_")
)
REFRESHER_METRICS = (
    "ratekit_refresher_running",
    "ratekit_refresher_runs_total",
    "ratekit_refresher_consecutive_failures",
    "ratekit_refresher_last_duration_seconds",
    "ratekit_refresher_last_run_timestamp_seconds",
)


def test_every_documented_metric_is_exposed(bot: BotProcess) -> None:
    families = scrape(bot)
    weights = get(bot, "weights", login(bot)).json()
    specs = {spec.name: spec for spec in metrics.METRICS}
    assert set(metrics.DOCUMENTED_METRICS) == set(specs)

    histogram = WAIT_HISTOGRAM
    wait = families[histogram]
    assert wait.type == metrics.HISTOGRAM
    samples = {sample.name for sample in wait.samples}
    assert samples == {f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"}
    endpoints = {sample.labels["endpoint"] for sample in wait.samples}
    assert endpoints <= {row["endpoint"] for row in weights["endpoints"]}  # read later

    for name, spec in specs.items():
        if name in (WAIT_HISTOGRAM, *REFRESHER_METRICS, *SCOPE_CLIENT_METRICS):
            continue
        family = families.get(family_name(spec))
        assert family is not None, f"{name} is documented but not exposed"
        assert family.type == spec.kind, name
        assert family.documentation == spec.help, name
        assert family.samples, name
        for sample in family.samples:
            assert set(spec.labels) <= set(sample.labels), (name, sample)

    documented = {family_name(spec) for spec in metrics.METRICS}
    assert set(families) <= documented, set(families) - documented
    assert not [name for name in families if name.startswith("ratekit_scope_client_")]
    assert all(name.startswith("ratekit_") for name in families)


def test_refresher_metrics_are_exposed(bot: BotProcess) -> None:
    families = scrape(bot)
    for name in REFRESHER_METRICS:
        assert name.removesuffix("_total") in families, name
    assert total(families, "ratekit_refresher_running") == 1
    assert total(families, "ratekit_refresher_runs_total") >= 1


def test_cache_hits_count_status_reads(bot: BotProcess) -> None:
    open_trades = bot.open_trade_count()
    assert open_trades >= FIRST_TRADES
    before = scrape(bot)
    reads = 3
    for _ in range(reads):
        assert bot.get("/api/v1/status")[0] == 200
    after = scrape(bot)
    # Each /status prices every open trade at its exit rate, from memory (fresh TTL 300 s).
    gained = total(after, "ratekit_cache_hits_total", side="exit") - total(
        before, "ratekit_cache_hits_total", side="exit"
    )
    assert gained >= reads * open_trades


def test_profit_reads_are_counted_by_how_they_were_answered(bot: BotProcess) -> None:
    def answered(families: dict[str, Any]) -> float:
        if "ratekit_reader_snapshot_reads" not in families:  # no /profit read yet
            return 0.0
        name = "ratekit_reader_snapshot_reads_total"
        return sum(total(families, name, result=r) for r in ("fresh", "stale", "miss"))

    before = scrape(bot)
    for _ in range(3):
        assert bot.get("/api/v1/profit")[0] == 200
    after = scrape(bot)
    assert answered(after) - answered(before) == 3
    assert total(after, "ratekit_reader_snapshot_recomputes_total") >= 1


def test_weight_counters_count_exchange_calls(
    bot: BotProcess, exchange: RunningEmulator[ExchangeEmulator]
) -> None:
    status_code, trades, _ = bot.get("/api/v1/status")
    assert status_code == 200
    traded = {trade["pair"] for trade in trades}
    new_pairs = [p for p in bot.config["exchange"]["pair_whitelist"] if p not in traded][:2]
    assert len(new_pairs) == 2
    before = scrape(bot)
    emulator_before = exchange.stats()["totals"]
    for pair in new_pairs:
        bot.force_enter(pair)
    wait_for(bot.open_trade_count, lambda n: n == len(traded) + 2, WAIT_S, "two more trades")
    after = scrape(bot)
    emulator_after = exchange.stats()["totals"]

    calls = total(after, "ratekit_weight_calls_total") - total(before, "ratekit_weight_calls_total")
    weight = total(after, "ratekit_weight_charged_total") - total(
        before, "ratekit_weight_charged_total"
    )
    depth = total(after, "ratekit_weight_calls_total", endpoint="public GET depth") - total(
        before, "ratekit_weight_calls_total", endpoint="public GET depth"
    )
    assert depth >= 2  # a dry-run market entry fills against the order book
    assert calls >= depth
    assert weight >= calls  # every Binance REST endpoint weighs at least 1
    # The emulator saw that traffic too (it charges the same published weights).
    assert emulator_after["calls"] - emulator_before["calls"] >= depth
    assert emulator_after["weight"] > emulator_before["weight"]
    used = total(after, "ratekit_weight_pool_used", pool="REQUEST_WEIGHT")
    assert used > 0


def test_fiat_counters_count_coingecko_calls(
    bot: BotProcess, coingecko: RunningEmulator[CoinGeckoEmulator]
) -> None:
    before = scrape(bot)
    emulator_before = coingecko.stats()["endpoints"]["/api/v3/simple/price"]["calls"]
    simple_price = {"call": "simple_price"}
    after = wait_for(
        lambda: scrape(bot),
        lambda fams: (
            total(fams, "ratekit_fiat_calls_total", **simple_price)
            > total(before, "ratekit_fiat_calls_total", **simple_price)
        ),
        FIAT_REFRESH_INTERVAL + WAIT_S,
        "another simple/price call counted",
    )
    assert coingecko.stats()["endpoints"]["/api/v3/simple/price"]["calls"] > emulator_before
    assert total(after, "ratekit_fiat_calls_total", call="coins_list") == 1
    assert total(after, "ratekit_fiat_price", pair=FIAT_PAIR) > 0
    assert total(after, "ratekit_fiat_state", pair=FIAT_PAIR, state="fresh") == 1
    assert total(after, "ratekit_fiat_coin_list_entries") == len(coingecko.emulator.coins)


# -- freqtrade-ratekit status ----------------------------------------------------------------


def run_status(url: str, username: str, password: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "freqtrade_ratekit.cli",
            "status",
            "--url",
            url,
            "--username",
            username,
            "--password",
            password,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )


def test_status_command_prints_tables(bot: BotProcess) -> None:
    result = run_status(bot.api_url, bot.username, bot.password)
    assert result.returncode == status.EXIT_OK, result.stderr
    out = result.stdout
    assert f"ratekit {__version__}" in out
    assert "exchange binance" in out
    for heading in ("Rate cache", "Fiat prices", "Pools", "Endpoints by weight"):
        assert heading in out, heading
    assert "REQUEST_WEIGHT" in out
    assert "6,000" in out  # REQUEST_WEIGHT's published limit per minute
    assert FIAT_PAIR in out
    assert "mode observe, preset binance_spot, headroom 80%" in out
    assert bot.password not in out + result.stderr


def test_status_command_shows_the_running_refresher(bot: BotProcess) -> None:
    result = run_status(bot.api_url, bot.username, bot.password)
    assert result.returncode == status.EXIT_OK, result.stderr
    assert "Refresher: running, every 2.00 s" in result.stdout


def test_status_command_json(bot: BotProcess) -> None:
    result = run_status(bot.api_url, bot.username, bot.password, "--json")
    assert result.returncode == status.EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert {"rate_cache", "fiat", "weights"} <= set(document)
    assert set(document["rate_cache"]["sides"]) == {"entry", "exit"}
    assert any(p["pair"] == FIAT_PAIR for p in document["fiat"]["pairs"])
    assert document["weights"]["preset"] == "binance_spot"
    assert document["version"] == __version__


def test_status_command_with_a_wrong_password(bot: BotProcess) -> None:
    wrong = "definitely-wrong-password-5521"
    result = run_status(bot.api_url, bot.username, wrong)
    assert result.returncode == status.EXIT_UNAUTHORIZED
    assert "wrong username or password" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert bot.password not in result.stdout + result.stderr


def test_status_command_against_a_stock_bot(
    tmp_path: Path,
    exchange: RunningEmulator[ExchangeEmulator],
    coingecko: RunningEmulator[CoinGeckoEmulator],
) -> None:
    config = make_bot_config(
        exchange.url,
        coingecko.url,
        find_free_port(),
        pairs=exchange.emulator.universe.usdt_pairs()[:1],
        max_open_trades=1,
        db_dir=tmp_path,
    )
    with BotProcess(config, tmp_path, with_ratekit=False) as stock:
        result = run_status(stock.api_url, stock.username, stock.password)
        assert get(stock, "status", login(stock)).status_code == 404
    assert result.returncode == status.EXIT_NOT_ENABLED
    assert "ratekit is not enabled on the bot" in result.stderr
    assert stock.password not in result.stdout + result.stderr
