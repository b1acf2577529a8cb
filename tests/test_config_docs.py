"""The configuration is declared once: the schema, the defaults, the settings objects, the
reference in docs/configuration.md and the example config all agree with the declaration."""

import json
from pathlib import Path

import pytest

from freqtrade_ratekit import config
from freqtrade_ratekit.config import (
    DEFAULTS,
    KEYS,
    RATEKIT_SCHEMA,
    RatekitSettings,
    documented_table,
    parse_settings,
    reference_table,
    write_reference,
)

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "configuration.md"
FIX = "run: python -m freqtrade_ratekit.config --write docs/configuration.md"


def dig(tree, path):
    for name in path:
        tree = tree[name]
    return tree


def test_the_reference_table_is_the_declarations():
    documented = documented_table(REFERENCE.read_text(encoding="utf-8"))
    assert documented is not None, f"docs/configuration.md lost its table markers; {FIX}"
    assert documented == reference_table(), f"docs/configuration.md is out of date; {FIX}"


def test_the_reference_documents_every_key_once():
    text = REFERENCE.read_text(encoding="utf-8")
    for key in KEYS:
        assert text.count(f"| `{key.dotted}` |") == 1, key.dotted
    assert reference_table().count("\n") == len(KEYS) + 2


def test_the_example_config_is_valid_and_shows_every_key():
    from freqtrade.configuration.load_config import load_config_file

    example = load_config_file(str(ROOT / "user_data" / "config.json"))
    parse_settings(example["ratekit"])
    missing = []
    for key in KEYS:
        try:
            dig(example["ratekit"], key.path)
        except (KeyError, TypeError):
            missing.append(key.dotted)
    assert not missing, f"user_data/config.json does not show {missing}"


def test_schema_defaults_and_settings_come_from_the_declaration():
    assert [key.dotted for key in KEYS][:3] == ["enabled", "rate_cache.maxsize", "rate_cache.ttl"]
    assert len(KEYS) == 31
    settings = parse_settings(None)
    assert settings == RatekitSettings()  # the dataclass defaults are the section's defaults
    for key in KEYS:
        assert dig(DEFAULTS, key.path) == key.default
        leaf = dig(RATEKIT_SCHEMA, [part for name in key.path for part in ("properties", name)])
        assert leaf["description"] == key.meaning
        attribute = settings
        for name in key.path:
            attribute = getattr(attribute, name)
        assert attribute == key.default, key.dotted
    assert settings.api_enabled is True and settings.rate_cache.ttl == 300


def test_today_s_defaults_are_kept():
    assert DEFAULTS["rate_cache"] == {
        "maxsize": 1000,
        "ttl": 300,
        "stale_ttl": 3600,
        "negative_ttl": 300,
        "prewarm": True,
        "prewarm_whitelist": False,
        "refresh_interval": 60,
        "trading_batch": True,
        "trading_max_age": 2.0,
        "stream": False,
    }
    assert DEFAULTS["fiat"]["coin_list_max_age"] == 604_800
    assert DEFAULTS["weights"]["redis_timeout"] == 0.25
    assert DEFAULTS["api"] == {"enabled": True} and DEFAULTS["enabled"] is False


def test_the_schema_is_not_shared_with_the_declaration():
    """Mutating the exported schema or defaults cannot change what the next call validates."""
    assert RATEKIT_SCHEMA["properties"]["weights"]["properties"]["pools"] is not next(
        key.schema for key in KEYS if key.dotted == "weights.pools"
    )
    assert DEFAULTS["weights"]["pools"] is not RatekitSettings().weights.pools


def test_the_preset_row_names_every_preset():
    from freqtrade_ratekit.weights.presets import preset_names

    (preset,) = [key for key in KEYS if key.dotted == "weights.preset"]
    for name in ["auto", *preset_names()]:
        assert f"`{name}`" in preset.allowed, f"{name} missing from weights.preset's allowed"


def test_url_keys_are_masked_in_the_effective_settings():
    settings = parse_settings(
        {
            "weights": {"backend": "redis://:hunter2@h:6379/0"},
            "fiat": {"coingecko_url": "https://u:hunter2@cg.example/api/v3"},
        }
    )
    assert {key.dotted for key in KEYS if key.url} == {"weights.backend", "fiat.coingecko_url"}
    assert "hunter2" not in json.dumps(settings.effective())


def test_write_reference_replaces_the_table_and_keeps_the_prose(tmp_path):
    page = tmp_path / "configuration.md"
    assert write_reference(page) is True
    assert documented_table(page.read_text()) == reference_table()
    stale = page.read_text().replace("Configuration reference", "Settings, our way")
    stale = stale.replace("| `fiat.timeout` | `10` |", "| `fiat.timeout` | `11` |")
    page.write_text(stale)
    assert config.main(["--check", str(page)]) == 1
    assert write_reference(page) is True and write_reference(page) is False
    assert "# Settings, our way" in page.read_text()
    assert config.main(["--check", str(page)]) == 0


@pytest.mark.parametrize("text", ["", "# no markers\n", f"{config.REFERENCE_END}\n"])
def test_a_page_without_markers_has_no_table(text):
    assert documented_table(text) is None
