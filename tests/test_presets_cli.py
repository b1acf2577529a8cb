"""`freqtrade-ratekit presets`: the presets as a table and as stable JSON."""

from __future__ import annotations

import json
import re

import pytest

from freqtrade_ratekit import cli
from freqtrade_ratekit.weights.presets import preset_names


@pytest.fixture
def presets_json(capsys):
    """The parsed output of `freqtrade-ratekit presets --json`, by preset name."""
    assert cli.main(["presets", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    return {row["name"]: row for row in document["presets"]}


def test_json_lists_every_preset_by_name(presets_json):
    assert list(presets_json) == preset_names()


def test_json_rows_have_the_documented_keys(presets_json):
    keys = {
        "name",
        "exchange_ids",
        "trading_modes",
        "pools",
        "headers_read",
        "limits_from_exchange",
        "sources",
        "read_on",
    }
    pool_keys = {"name", "limit", "interval_s", "scope", "kind", "per_endpoint"}
    for row in presets_json.values():
        assert set(row) == keys
        assert all(set(pool) == pool_keys for pool in row["pools"])
        assert row["sources"] and all(url.startswith("https://") for url in row["sources"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["read_on"])
        assert row["limits_from_exchange"] is False
        assert row["exchange_ids"] and row["trading_modes"]


def test_json_carries_the_published_figures(presets_json):
    bybit = {pool["name"]: pool for pool in presets_json["bybit_futures"]["pools"]}
    assert bybit["BYBIT_IP"] == {
        "name": "BYBIT_IP",
        "limit": 600.0,
        "interval_s": 5.0,
        "scope": "ip",
        "kind": "window",
        "per_endpoint": False,
    }
    assert bybit["BYBIT_ORDER"]["limit"] == 10.0 and bybit["BYBIT_ORDER"]["per_endpoint"]
    assert presets_json["bybit_futures"]["exchange_ids"] == ["bybit"]
    assert presets_json["bybit_futures"]["trading_modes"] == ["futures"]
    kraken = {pool["name"]: pool for pool in presets_json["kraken"]["pools"]}
    assert kraken["KRAKEN_PRIVATE"]["kind"] == "decay"
    assert "gw-ratelimit-remaining" in presets_json["kucoin"]["headers_read"]
    assert "X-Bapi-Limit-Status" in presets_json["bybit_spot"]["headers_read"]
    assert presets_json["hyperliquid"]["trading_modes"] == ["futures", "spot"]


def test_json_is_stable(capsys):
    assert cli.main(["presets", "--json"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["presets", "--json"]) == 0
    assert capsys.readouterr().out == first
    assert first == json.dumps(json.loads(first), indent=2, sort_keys=True) + "\n"


def test_table_shows_each_preset_with_its_pools_and_source(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in preset_names():
        assert name in out
    assert "BYBIT_IP 600 / 5s ip window" in out
    assert "KRAKEN_PRIVATE 15 / 45s account decay" in out
    assert "https://www.kucoin.com/docs-new/rate-limit" in out
    assert "(2026-12-02)" in out


def test_help_and_bad_arguments(capsys):
    assert cli.main(["presets", "--help"]) == 0
    assert "--json" in capsys.readouterr().out
    assert cli.main(["presets", "--nope"]) == 2


def test_the_command_is_in_the_usage():
    assert "presets" in cli.COMMANDS
    assert re.search(r"^  presets +\S", cli.USAGE, re.MULTILINE)


def test_the_supported_exchanges_page_lists_every_preset_with_its_date():
    """docs/exchanges.md is written by hand: it must not lose a preset or keep an old date."""
    from pathlib import Path

    from freqtrade_ratekit.weights.presets import all_presets

    page = Path(__file__).parents[1] / "docs" / "exchanges.md"
    rows = {
        line.split("|")[2].strip(" `"): line
        for line in page.read_text().splitlines()
        if line.startswith("| ") and line.count("|") == 9
    }
    for preset in all_presets():
        assert preset.name in rows, f"{preset.name} missing from docs/exchanges.md"
        row = rows[preset.name]
        assert f"({preset.read_on})" in row
        assert row.rstrip(" |").endswith("yes" if preset.limits_from_exchange else "no")
