# ruff: noqa: F811  (pytest fixtures imported from tests.sim_fixtures are parameters here)
"""The harness and the emulator runner: configs, a real stock Freqtrade bot, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from freqtrade_ratekit.sim.harness import (
    API_USERNAME,
    BotProcess,
    find_free_port,
    make_bot_config,
)
from freqtrade_ratekit.sim.stock import COINGECKO_URL_ENV
from tests.sim_fixtures import coingecko_emulator, exchange_emulator  # noqa: F401


def test_bot_config_shape(tmp_path):
    config = make_bot_config(
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        8099,
        pairs=["BTC/USDT", "ETH/USDT"],
        max_open_trades=2,
        db_dir=tmp_path,
        extra={"internals": {"process_throttle_secs": 3}, "bot_name": "x"},
    )
    assert "ratekit" not in config
    assert config["dry_run"] is True and config["force_entry_enable"] is True
    assert config["exchange"]["pair_whitelist"] == ["BTC/USDT", "ETH/USDT"]
    assert config["exchange"]["ccxt_config"]["urls"]["api"]["public"].startswith(
        "http://127.0.0.1:1/"
    )
    assert config["api_server"]["listen_port"] == 8099
    assert config["api_server"]["username"] == API_USERNAME
    assert config["db_url"] == f"sqlite:///{tmp_path}/tradesv3.dryrun.sqlite"
    assert config["internals"] == {"process_throttle_secs": 3, "heartbeat_interval": 0}
    assert config["bot_name"] == "x"
    assert config["fiat_display_currency"] == "USD"

    with_ratekit = make_bot_config(
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        8099,
        pairs=["BTC/USDT"],
        max_open_trades=1,
        ratekit={"enabled": True, "fiat": {"background_refresh": True}},
        fiat_display_currency=None,
        db_dir=tmp_path,
    )
    assert with_ratekit["ratekit"] == {
        "enabled": True,
        "fiat": {"coingecko_url": "http://127.0.0.1:2", "background_refresh": True},
    }
    assert "fiat_display_currency" not in with_ratekit


def test_bot_commands(tmp_path):
    config = make_bot_config(
        "http://e", "http://c", 1, pairs=["BTC/USDT"], max_open_trades=1, db_dir=tmp_path
    )
    stock = BotProcess(config, tmp_path, with_ratekit=False).command()
    ratekit = BotProcess(config, tmp_path, with_ratekit=True).command()
    assert stock[1:4] == ["-m", "freqtrade_ratekit.sim.stock", "trade"]
    assert ratekit[1:4] == ["-m", "freqtrade_ratekit.cli", "trade"]
    assert "RatekitDemoStrategy" in stock
    assert BotProcess(config, tmp_path, with_ratekit=False).coingecko_url == "http://c"
    launched = BotProcess(
        config, tmp_path, with_ratekit=True, launcher=["py", "timed.py", "ratekit"]
    ).command()
    assert launched[:4] == ["py", "timed.py", "ratekit", "trade"]
    assert launched[4:] == ratekit[4:]


def test_emulator_runner_prints_urls_and_config_then_stops_on_sigterm():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "freqtrade_ratekit.sim.runner",
            "--window-s",
            "10",
            "--weight-limit",
            "500",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        exchange_line = process.stdout.readline().strip()
        coingecko_line = process.stdout.readline().strip()
        websocket_line = process.stdout.readline().strip()
        assert exchange_line.startswith("exchange: http://127.0.0.1:")
        assert coingecko_line.startswith("coingecko: http://127.0.0.1:")
        exchange_url = exchange_line.split(": ", 1)[1]
        coingecko_url = coingecko_line.split(": ", 1)[1]
        assert websocket_line == f"exchange websocket: {exchange_url.replace('http', 'ws')}/ws"
        text = ""
        while True:
            text += process.stdout.readline()
            try:
                snippet = json.loads(text)
                break
            except json.JSONDecodeError:
                continue
        assert snippet["ratekit"]["fiat"]["coingecko_url"] == coingecko_url
        assert snippet["exchange"]["name"] == "binance"
        assert snippet["exchange"]["enable_ws"] is True
        ws_urls = snippet["exchange"]["ccxt_config"]["urls"]["api"]["ws"]
        assert ws_urls["spot"] == ws_urls["margin"] == websocket_line.split(": ", 1)[1]
        response = requests.get(f"{exchange_url}/api/v3/ping", timeout=5)
        assert response.headers["X-MBX-USED-WEIGHT-10S"] == "1"
        assert requests.get(f"{exchange_url}/_sim/settings").json()["weight_limit"] == 500
        assert requests.get(f"{coingecko_url}/api/v3/ping", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.e2e
def test_stock_bot_runs_against_both_emulators(
    tmp_path: Path, exchange_emulator, coingecko_emulator
):
    pairs = exchange_emulator.emulator.universe.usdt_pairs()[:5]
    config = make_bot_config(
        exchange_emulator.url,
        coingecko_emulator.url,
        find_free_port(),
        pairs=pairs,
        max_open_trades=3,
        db_dir=tmp_path,
    )
    bot = BotProcess(config, tmp_path / "bot", with_ratekit=False)
    with bot:
        entered = bot.open_trades(3)
        assert [t["pair"] for t in entered] == pairs[:3]
        status, profit, _ = bot.get("/api/v1/profit")
        assert status == 200
        assert profit["trade_count"] == 3
        assert profit["profit_all_fiat"] != 0  # USDT -> USD came from the CoinGecko emulator
        assert bot.client.count()["current"] == 3
        assert bot.get("/api/v1/status")[0] == 200
    assert bot.process is not None and bot.process.returncode is not None
    endpoints = exchange_emulator.stats()["endpoints"]
    assert endpoints["/api/v3/exchangeInfo"]["calls"] >= 1
    assert endpoints["/api/v3/depth"]["calls"] >= 3  # dry-run market fills read the book
    gecko = coingecko_emulator.stats()
    assert gecko["endpoints"]["/api/v3/coins/list"]["calls"] >= 1
    assert gecko["endpoints"]["/api/v3/simple/price"]["calls"] >= 1
    assert COINGECKO_URL_ENV not in config  # passed through the environment only
    assert "Traceback" not in bot.log_text()
