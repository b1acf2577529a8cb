"""Freqtrade commands that do not trade (download-data, list-markets, ...) against the exchange
emulator, in this process: weights armed at the lowest priority, nothing else of ratekit; the
download paces itself, keeps every candle, and says how long it waited for budget."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freqtrade.commands import Arguments
from freqtrade.configuration import Configuration
from freqtrade.enums import RunMode
from freqtrade.exchange import Exchange

from freqtrade_ratekit import patches, runtime
from freqtrade_ratekit.config import parse_settings
from freqtrade_ratekit.patches.exchange import rate_book_of
from freqtrade_ratekit.sim import exchange_ccxt_config
from freqtrade_ratekit.weights import Ledger
from tests.helpers import ratekit_threads, write_config


@pytest.fixture
def installed() -> Iterator[None]:
    assert patches.install()
    yield
    patches.uninstall()
    assert ratekit_threads() == set()


def exchange_config(url: str, pairs: list[str]) -> dict[str, Any]:
    block = exchange_ccxt_config(url, pairs, spot_only=True)
    block["only_from_ccxt"] = True  # klines from the REST API, not Binance's archive host
    return block


def make_exchange(url: str, runmode: RunMode, weights: dict[str, Any], **kwargs: Any) -> Exchange:
    section = {"enabled": True, "weights": weights}
    patches.activate(parse_settings(section), **kwargs)
    config = {
        "runmode": runmode,
        "dry_run": True,
        "stake_currency": "USDT",
        "exchange": exchange_config(url, ["BTC/USDT"]),
        "ratekit": section,
    }
    return Exchange(config, validate=False)


def ledger_of_this_process() -> Ledger:
    current = runtime.current()
    assert current is not None
    assert isinstance(current.weights, Ledger)
    return current.weights


def test_a_command_s_exchange_is_charged_at_the_lowest_priority(installed, exchange_emulator):
    exchange = make_exchange(
        exchange_emulator.url, RunMode.UTIL_EXCHANGE, {"mode": "enforce"}, command="list-markets"
    )
    try:
        assert rate_book_of(exchange) is None  # no rate cache, no trading batch: weights only
        for api in (exchange._api, exchange._api_async):
            assert "_ratekit_instrumentation" in api.__dict__
        ledger = ledger_of_this_process()
        assert ledger.background is True and ledger.reserve == 0.5
        exchange.reload_markets(True, load_leverage_tiers=False)  # the async client
        exchange._api.fetch_time()  # the sync one
        snapshot = ledger.snapshot()
        endpoints = {row["endpoint"] for row in snapshot["endpoints"]}
        assert {"public GET exchangeInfo", "public GET time"} <= endpoints
        client = snapshot["client"]
        assert client is not None
        assert (client["name"], client["run_mode"]) == ("list-markets", "util_exchange")
        assert [c["id"] for c in snapshot["clients"]] == [client["id"]]  # memory: its own only
    finally:
        exchange.close()


def test_without_a_command_name_the_run_mode_names_the_client(installed, exchange_emulator):
    exchange = make_exchange(exchange_emulator.url, RunMode.WEBSERVER, {"mode": "observe"})
    try:
        client = ledger_of_this_process().client
        assert client is not None and client.name == "webserver"
    finally:
        exchange.close()


def test_a_trading_bot_is_no_client(installed, exchange_emulator):
    exchange = make_exchange(exchange_emulator.url, RunMode.DRY_RUN, {"mode": "enforce"})
    try:
        assert rate_book_of(exchange) is not None
        ledger = ledger_of_this_process()
        assert ledger.background is False and ledger.client is None
    finally:
        exchange.close()


def test_weights_off_leaves_a_command_s_clients_as_stock(installed, exchange_emulator):
    exchange = make_exchange(exchange_emulator.url, RunMode.UTIL_EXCHANGE, {"mode": "off"})
    try:
        assert "_ratekit_instrumentation" not in exchange._api.__dict__
        assert runtime.current().weights is None
    finally:
        exchange.close()


def test_the_config_loader_names_the_command(installed, tmp_path):
    path = write_config(tmp_path, ratekit={"enabled": True})
    Configuration(
        {"config": [str(path)], "command": "download-data"}, RunMode.UTIL_EXCHANGE
    ).load_config()
    assert runtime.current().command == "download-data"


def test_a_progress_callback_reports_the_budget_in_each_description(installed, exchange_emulator):
    """The webserver's download job (FreqUI) reports its progress through a callback."""
    from freqtrade.data.history import history_utils
    from freqtrade.util import get_progress_tracker

    exchange = make_exchange(
        exchange_emulator.url, RunMode.WEBSERVER, {"mode": "enforce"}, command="webserver"
    )
    reported: list[tuple[Any, ...]] = []

    def ft_callback(task: Any) -> None:
        reported.append((task.id, task.description, task.completed, task.total))

    try:
        given = get_progress_tracker(ft_callback=ft_callback)
        tracker = history_utils.retrieve_progress_tracker(given)
        assert tracker is given
        assert history_utils.retrieve_progress_tracker(given) is given  # wrapped once
        with tracker as progress:
            task = progress.add_task("Downloading BTC/USDT", total=2)
            progress.update(task, advance=1)
        (task_id, description, completed, total) = reported[-1]
        assert (task_id, completed, total) == (task, 1, 2)
        assert description.startswith("Downloading BTC/USDT · ratekit: waited 0.0 s for exchange")
        assert "at most 50% of each pool" in description
        assert progress.tasks[0].description == "Downloading BTC/USDT"  # the task is its own
    finally:
        exchange.close()


PAIRS = ["BTC/USDT", "ETH/USDT"]
WINDOW_S = 3
DAYS = 2
TIMEFRAME = "5m"


def test_download_data_waits_for_budget_keeps_every_candle_and_says_so(
    installed, exchange_emulator, tmp_path, mocker, caplog
):
    """A pool of 20 per 3 s (10 for a command): the markets alone (weight 20, more than a
    command may hold: sent only into an empty window) wait for the calls before them to slide
    out, and the candle calls wait for the markets in turn, instead of failing."""
    import freqtrade.util

    from freqtrade_ratekit.weights.clients import summary

    ratekit = {
        "enabled": True,
        "weights": {
            "mode": "enforce",
            "headroom": 1.0,
            "pools": {"REQUEST_WEIGHT": {"limit": 20, "interval": WINDOW_S}},
        },
    }
    config = {
        "exchange": exchange_config(exchange_emulator.url, PAIRS),
        "stake_currency": "USDT",
        "dry_run": True,
        "pairlists": [{"method": "StaticPairList"}],
        "user_data_dir": str(tmp_path / "user_data"),
        "dataformat_ohlcv": "json",
        "ratekit": ratekit,
    }
    (tmp_path / "user_data").mkdir()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    datadir = tmp_path / "data"
    argv = ["download-data", "-c", str(path), "--datadir", str(datadir), "--days", str(DAYS)]
    argv += ["-t", TIMEFRAME, "-p", *PAIRS]
    args = Arguments(argv).get_parsed_arg()
    tracker = mocker.spy(freqtrade.util, "get_progress_tracker")

    with caplog.at_level(logging.INFO):
        args["func"](args)
        ledger = ledger_of_this_process()
        waiting = ledger.waiting_status()
        (call,) = tracker.call_args_list
        (line,) = call.kwargs["cust_callables"]
        shown = str(line())
        record = ledger.client_record("finished")
        patches.uninstall()  # the runtime's stop: the client's final record and log line

    assert record is not None and record["name"] == "download-data"
    # about two windows: the markets behind the first call, the candles behind the markets
    assert 1.0 < waiting["blocked_s"] <= 2 * WINDOW_S + 1, waiting
    assert f"ratekit: waited {waiting['blocked_s']:.1f} s for exchange budget" in shown
    assert "at most 50% of each pool" in shown
    lines = [
        r.getMessage() for r in caplog.records if "ran at the lowest priority" in r.getMessage()
    ]
    assert len(lines) == 1 and lines[0].startswith("ratekit: download-data (util_exchange)")
    assert summary(record).split("; waited")[0] in lines[0]
    assert exchange_emulator.stats()["totals"]["status_429"] == 0

    for pair in PAIRS:
        candles = candle_times(datadir, pair)
        step = 300_000
        assert all(b - a == step for a, b in itertools.pairwise(candles)), pair
        assert len(candles) >= DAYS * 288 - 1, (pair, len(candles))


def candle_times(datadir: Path, pair: str) -> list[int]:
    path = datadir / f"{pair.replace('/', '_')}-{TIMEFRAME}.json"
    return [row[0] for row in json.loads(path.read_text())]
