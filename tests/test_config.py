"""The `ratekit` section: every bad value is rejected with a message naming key, value, rule."""

import json
from pathlib import Path

import pytest

from freqtrade_ratekit.cli import main as cli_main
from freqtrade_ratekit.config import (
    DEFAULTS,
    RatekitConfigError,
    mask_url,
    parse_settings,
    redis_url_problem,
)

ROOT = Path(__file__).resolve().parent.parent

BAD_SECTIONS = [
    ({"enabld": True}, "ratekit.enabld: unknown key"),
    ({"enabled": "yes"}, "ratekit.enabled = 'yes': must be of type boolean"),
    ({"rate_cache": {"maxsize": 0}}, "ratekit.rate_cache.maxsize = 0: must be >= 1"),
    (
        {"rate_cache": {"maxsize": 10.5}},
        "ratekit.rate_cache.maxsize = 10.5: must be of type integer",
    ),
    ({"rate_cache": {"ttl": -5}}, "ratekit.rate_cache.ttl = -5: must be > 0"),
    (
        {"rate_cache": {"ttl": 600, "stale_ttl": 60}},
        "ratekit.rate_cache.stale_ttl = 60: must be >=",
    ),
    ({"rate_cache": {"negative_ttl": "300"}}, "ratekit.rate_cache.negative_ttl = '300'"),
    ({"rate_cache": {"refresh": 10}}, "ratekit.rate_cache.refresh: unknown key"),
    ({"fiat": {"coingecko_url": "ftp://x"}}, "ratekit.fiat.coingecko_url = 'ftp://x': must match"),
    ({"fiat": {"refresh_interval": 0}}, "ratekit.fiat.refresh_interval = 0: must be >= 1"),
    ({"fiat": {"timeout": 500}}, "ratekit.fiat.timeout = 500: must be <= 120"),
    ({"weights": {"mode": "loud"}}, "ratekit.weights.mode = 'loud': must be one of off, observe"),
    ({"weights": {"headroom": 1.5}}, "ratekit.weights.headroom = 1.5: must be <= 1"),
    ({"weights": {"headroom": 0}}, "ratekit.weights.headroom = 0: must be > 0"),
    ({"weights": {"backend": "mysql://db"}}, "ratekit.weights.backend = 'mysql://db': must be"),
    ({"weights": {"backend": "redis://"}}, "a redis URL needs a host"),
    ({"weights": {"backend": "redis://localhost:6379/abc"}}, "database must be a number"),
    ({"weights": {"expected_bots": 0}}, "ratekit.weights.expected_bots = 0: must be >= 1"),
    ({"weights": {"scope_id": "has space"}}, "ratekit.weights.scope_id = 'has space': must match"),
    ({"weights": {"pools": {"X": {"limit": 10}}}}, "ratekit.weights.pools.X = {'limit': 10}"),
    (
        {"weights": {"pools": {"X": {"limit": 1, "interval": 1, "scope": "host"}}}},
        "must be one of ip",
    ),
    (
        {"weights": {"endpoints": {"depth": {"weight": -1}}}},
        "ratekit.weights.endpoints.depth.weight",
    ),
    ({"api": {"enabled": 1}}, "ratekit.api.enabled = 1: must be of type boolean"),
    ([], "ratekit = []: must be of type object"),
]


@pytest.mark.parametrize(("section", "expected"), BAD_SECTIONS)
def test_bad_section_is_rejected_with_key_value_and_rule(section, expected):
    with pytest.raises(RatekitConfigError) as info:
        parse_settings(section)
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(RatekitConfigError) as info:
        parse_settings({"enabled": 3, "weights": {"mode": "x", "headroom": 7}})
    assert len(info.value.problems) == 3


def test_absent_section_means_disabled_with_defaults():
    settings = parse_settings(None)
    assert settings.enabled is False
    assert settings.rate_cache.ttl == 300  # stock Freqtrade's TTL
    assert settings.effective() == DEFAULTS


def test_defaults_merge_with_given_values():
    settings = parse_settings({"enabled": True, "rate_cache": {"maxsize": 5000}})
    assert settings.rate_cache.maxsize == 5000
    assert settings.rate_cache.ttl == DEFAULTS["rate_cache"]["ttl"]
    assert settings.weights.mode == "observe"


def test_redis_password_never_shown():
    settings = parse_settings({"weights": {"backend": "redis://user:s3cret@host:6379/1"}})
    assert settings.weights.backend.endswith("@host:6379/1")
    assert "s3cret" not in json.dumps(settings.effective())
    with pytest.raises(RatekitConfigError) as info:
        parse_settings({"weights": {"backend": "redis://:s3cret@host:6379/db"}})
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("redis://u:pw@h/0", "redis://u:***@h/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_valid_redis_urls():
    assert redis_url_problem("redis://127.0.0.1:6379/0") is None
    assert redis_url_problem("rediss://:pw@cache.example:6380") is None
    assert redis_url_problem("unix:///run/redis.sock") is None


def test_check_config_prints_effective_settings(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {"ratekit": {"enabled": True, "weights": {"backend": "redis://:topsecret@h:6379/0"}}}
        )
    )
    assert cli_main(["check-config", "-c", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["enabled"] is True
    assert out["rate_cache"]["maxsize"] == DEFAULTS["rate_cache"]["maxsize"]
    assert out["weights"]["backend"] == "redis://:***@h:6379/0"


def test_check_config_fails_on_bad_section(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"ratekit": {"rate_cache": {"ttl": "long"}}}))
    assert cli_main(["check-config", "-c", str(path)]) == 1
    assert "ratekit.rate_cache.ttl = 'long'" in capsys.readouterr().err


def leaf_paths(section: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in section.items():
        if isinstance(value, dict) and value and key not in ("pools", "endpoints"):
            paths |= leaf_paths(value, f"{prefix}{key}.")
        else:
            paths.add(f"{prefix}{key}")
    return paths


def test_the_example_config_is_valid_and_shows_every_key():
    from freqtrade.configuration.load_config import load_config_file

    example = load_config_file(str(ROOT / "user_data" / "config.json"))
    parse_settings(example["ratekit"])
    missing = leaf_paths(DEFAULTS) - leaf_paths(example["ratekit"])
    assert not missing, f"user_data/config.json does not show {sorted(missing)}"


def test_the_readme_documents_every_key():
    readme = (ROOT / "README.md").read_text()
    undocumented = [p for p in sorted(leaf_paths(DEFAULTS)) if f"`{p}`" not in readme]
    assert not undocumented, undocumented
