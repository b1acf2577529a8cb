"""The `ratekit` section: every bad value is rejected with a message naming key, value, rule."""

import json
import os
from pathlib import Path

import pytest

from freqtrade_ratekit.cli import main as cli_main
from freqtrade_ratekit.config import (
    DEFAULTS,
    RATEKIT_SCHEMA,
    RatekitConfigError,
    mask_url,
    parse_settings,
    redis_url_problem,
    validate_bot_config,
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


# --- issue 11: hardening ------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


def nested(path: tuple[str, ...], value: object) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value  # type: ignore[return-value]


def numeric_leaves(schema: dict = RATEKIT_SCHEMA, path: tuple[str, ...] = ()) -> list:
    """Every number of the schema, pools and endpoints under a sample name."""
    if schema.get("type") in ("number", "integer"):
        return [path]
    leaves = []
    for key, child in schema.get("properties", {}).items():
        leaves += numeric_leaves(child, (*path, key))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        name = "REQUEST_WEIGHT" if path[-1:] == ("pools",) else "depth"
        leaves += numeric_leaves(extra, (*path, name))
    return leaves


NUMERIC_LEAVES = numeric_leaves()


def section_with(path: tuple[str, ...], value: object) -> dict:
    """A section where `path` is `value` and every other required key is valid."""
    section = nested(path, value)
    if path[:2] == ("weights", "pools"):
        pool = section["weights"]["pools"]["REQUEST_WEIGHT"]
        pool.setdefault("limit", 100)
        pool.setdefault("interval", 60)
    return section


def test_every_number_of_the_schema_is_covered():
    assert len(NUMERIC_LEAVES) == 18
    assert ("fiat", "timeout") in NUMERIC_LEAVES
    assert ("weights", "pools", "REQUEST_WEIGHT", "interval") in NUMERIC_LEAVES


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("path", NUMERIC_LEAVES, ids=".".join)
def test_nan_and_infinity_are_rejected_by_name(path, value):
    """Old code: NaN passed every bound (and inf every unbounded one)."""
    with pytest.raises(RatekitConfigError) as info:
        validate_bot_config({"exchange": {"name": "binance"}, "ratekit": section_with(path, value)})
    dotted = "ratekit." + ".".join(path)
    assert info.value.problems == [f"{dotted} = {value!r}: must be a finite number"]


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("weights", "pools", "REQUEST_WEIGHT", "limit"), 2**63, "must be <= 1000000000"),
        (("weights", "pools", "REQUEST_WEIGHT", "limit"), 10**400, "must be <= 1000000000"),
        (("weights", "pools", "REQUEST_WEIGHT", "interval"), 1e12, "must be <= 604800"),
        (("weights", "endpoints", "depth", "weight"), 1e300, "must be <= 1000000000"),
        (("rate_cache", "ttl"), 1e308, "must be <= 86400"),
        (("rate_cache", "refresh_interval"), 10**10, "must be <= 86400"),
        (("rate_cache", "trading_max_age"), 61, "must be <= 60"),
        (("fiat", "refresh_interval"), 10**10, "must be <= 86400"),
        (("fiat", "coin_list_max_age"), 1e20, "must be <= 31536000"),
        (("readers", "max_age"), 10**6, "must be <= 3600"),
    ],
)
def test_huge_values_that_break_the_bot_are_bounded(path, value, rule):
    """Old code: no upper bound; 10**400 even made float() overflow when the ledger started."""
    with pytest.raises(RatekitConfigError) as info:
        validate_bot_config({"exchange": {"name": "binance"}, "ratekit": section_with(path, value)})
    (problem,) = info.value.problems
    assert problem.startswith("ratekit." + ".".join(path)) and problem.endswith(rule)


def test_an_integral_float_becomes_an_int():
    settings = parse_settings({"rate_cache": {"maxsize": 5.0}, "weights": {"expected_bots": 2.0}})
    assert type(settings.rate_cache.maxsize) is int and type(settings.weights.expected_bots) is int


def test_a_huge_bad_value_is_cut_in_the_error():
    """Old code: a 10 MB value was echoed whole."""
    with pytest.raises(RatekitConfigError) as info:
        parse_settings({"rate_cache": {"maxsize": "x" * 10_000_000}})
    assert len(str(info.value)) < 1000
    assert "(10000002 characters): must be of type integer" in str(info.value)


def test_a_huge_int_is_cut_and_a_deep_nesting_is_named_not_recursed():
    with pytest.raises(RatekitConfigError) as info:
        parse_settings({"rate_cache": {"maxsize": 10**4000}})
    assert len(str(info.value)) < 1000
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(RatekitConfigError, match="nested more than 16 levels deep"):
        parse_settings({"fiat": deep})


def test_many_problems_are_listed_up_to_a_cap():
    with pytest.raises(RatekitConfigError) as info:
        parse_settings({f"key{i}": i for i in range(500)})
    assert len(info.value.problems) == 500
    assert str(info.value).count("\n") < 60 and "... and 450 more" in str(info.value)


@pytest.mark.parametrize("scope_id", ["abc\n", "\nabc", "a" * 65, ""])
def test_scope_id_must_match_whole(scope_id):
    """Old code: `$` matched before the final newline, so "abc\\n" was accepted."""
    with pytest.raises(RatekitConfigError, match=r"ratekit\.weights\.scope_id = .*: must match"):
        parse_settings({"weights": {"scope_id": scope_id}})


def test_odd_keys_are_quoted_in_messages():
    with pytest.raises(RatekitConfigError) as info:
        parse_settings({"rate_cache\n  - ratekit.fake: forged": 1})
    (problem,) = info.value.problems
    assert "\n" not in problem and problem.startswith("ratekit['rate_cache\\n")


@pytest.mark.parametrize(
    "section",
    [
        {"weights": "redis://:pw@h/0"},
        {"weights": ["redis://:pw@h/0"]},
        {"weights": {"pools": {"X": {"limit": 1, "interval": 1, "scope": "redis://u:pw@h"}}}},
        {"fiat": [{"token": "pw"}]},
    ],
)
def test_a_secret_inside_a_wrongly_typed_value_is_masked(section):
    with pytest.raises(RatekitConfigError) as info:
        parse_settings(section)
    assert "pw" not in str(info.value)


BINANCE = {"exchange": {"name": "binance"}}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {**BINANCE, "ratekit": {"weights": {"preset": "binnace"}}},
            "ratekit.weights.preset = 'binnace': unknown preset; must be one of auto, ",
        ),
        (
            {"ratekit": {"weights": {"preset": "binnace"}}},  # no exchange: still a typo
            "ratekit.weights.preset = 'binnace': unknown preset",
        ),
        (
            {**BINANCE, "ratekit": {"weights": {"endpoints": {"depth": {"pools": ["NOPE"]}}}}},
            "ratekit.weights.endpoints.depth.pools[0] = 'NOPE': unknown pool; must be one of "
            "weights.pools or a pool of preset binance_spot (binance, spot): DAPI_REQUEST_WEIGHT",
        ),
        (
            {
                **BINANCE,
                "trading_mode": "futures",
                "ratekit": {"weights": {"endpoints": {"x": {"pools": ["REQUEST_WEIGHT:x"]}}}},
            },
            "unknown pool; must be one of weights.pools or a pool of preset binance_futures",
        ),
        (
            {
                **BINANCE,
                "ratekit": {"weights": {"pools": {"request_weight": {"limit": 1, "interval": 1}}}},
            },
            "ratekit.weights.pools.request_weight: not a pool of preset binance_spot (binance, "
            "spot) and no weights.endpoints entry charges it, so it would limit nothing; did you "
            "mean 'REQUEST_WEIGHT'?",
        ),
        (
            {**BINANCE, "ratekit": {"weights": {"backend": "redis://h:6379/0?socket_timeout=x"}}},
            "ratekit.weights.backend = 'redis://h:6379/0?socket_timeout=x': redis-py cannot use "
            "this URL (Invalid value for 'socket_timeout' in connection URL.)",
        ),
        (
            {**BINANCE, "ratekit": {"weights": {"backend": "redis://h:6379/0?db=one"}}},
            "ratekit.weights.backend = 'redis://h:6379/0?db=one': the db query parameter",
        ),
        (
            {**BINANCE, "ratekit": {"weights": {"backend": "redis://:pw@h:99999/0"}}},
            "ratekit.weights.backend = '***': not a valid URL (Port out of range 0-65535)",
        ),
        (
            {**BINANCE, "ratekit": {"weights": {"backend": "redis://h :6379/0"}}},
            "a URL cannot contain spaces",
        ),
        (
            {**BINANCE, "ratekit": {"fiat": {"coingecko_url": "http://h:99999/api"}}},
            "ratekit.fiat.coingecko_url = '***': not a valid URL (Port out of range 0-65535)",
        ),
        (
            {**BINANCE, "ratekit": {"fiat": {"coin_list_path": "a\x00b"}}},
            "ratekit.fiat.coin_list_path = 'a\\x00b': must match",
        ),
    ],
)
def test_what_only_the_bot_used_to_catch_is_caught_by_validation(config, expected):
    """Old code: each was accepted by check-config and failed at the first exchange call, when
    the Redis client was built, or never."""
    with pytest.raises(RatekitConfigError) as info:
        validate_bot_config(config)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "config",
    [
        {**BINANCE, "ratekit": {"weights": {"preset": "okx"}}},
        {
            "exchange": {"name": "bitvavo"},
            "ratekit": {"weights": {"endpoints": {"x": {"weight": 2}}}},
        },
        {
            "exchange": {"name": "bitvavo"},
            "ratekit": {"weights": {"pools": {"CCXT_RATE_LIMIT": {"limit": 5, "interval": 1}}}},
        },
        {
            **BINANCE,
            "ratekit": {
                "weights": {
                    "pools": {"MINE": {"limit": 5, "interval": 1}},
                    "endpoints": {"public GET depth": {"weight": 3, "pools": ["MINE"]}},
                }
            },
        },
        {
            "exchange": {"name": "okx"},
            "ratekit": {
                "weights": {"pools": {"OKX_PUBLIC:market/tickers": {"limit": 5, "interval": 2}}}
            },
        },
        {
            "exchange": {"name": "okx"},
            "ratekit": {"weights": {"endpoints": {"x": {"pools": ["OKX_PUBLIC:x"]}}}},
        },
        {**BINANCE, "ratekit": {"weights": {"backend": "rediss://:pw@cache.example:6380/2"}}},
    ],
)
def test_valid_weight_overrides_are_accepted(config):
    validate_bot_config(config)


# --- check-config loads like the bot: files, environment, the same function ----------------


@pytest.fixture
def no_freqtrade_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("FREQTRADE__"):
            monkeypatch.delenv(name)
    return monkeypatch


def write(path: Path, config: dict) -> str:
    path.write_text(json.dumps(config))
    return str(path)


def test_check_config_rejects_nan_written_in_the_file(tmp_path, capsys, no_freqtrade_env):
    """Freqtrade's parser reads the literal NaN; old check-config accepted it."""
    path = tmp_path / "config.json"
    path.write_text('{"ratekit": {"enabled": true, "fiat": {"timeout": NaN}}}')
    assert cli_main(["check-config", "-c", str(path)]) == 1
    assert "ratekit.fiat.timeout = nan: must be a finite number" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "FREQTRADE__RATEKIT__FIAT__TIMEOUT",
            "nan",
            "ratekit.fiat.timeout = nan: must be a finite",
        ),
        ("FREQTRADE__RATEKIT__RATE_CACHE__TTL", "1e400", "ratekit.rate_cache.ttl = inf: must be"),
        ("FREQTRADE__RATEKIT__WEIGHTS__MODE", "loud", "ratekit.weights.mode = 'loud': must be one"),
        ("FREQTRADE__RATEKIT__WEIGHTS__SCOPE_ID", "123", "ratekit.weights.scope_id = 123: must be"),
        ("FREQTRADE__EXCHANGE__NAME", "binance", "ratekit.weights.endpoints.x.pools[0] = 'NOPE'"),
    ],
)
def test_check_config_applies_environment_variables_like_the_bot(
    tmp_path, capsys, no_freqtrade_env, variable, value, expected
):
    """Old check-config ignored FREQTRADE__* variables, which the bot merges over the file."""
    ratekit = {"enabled": True, "weights": {"endpoints": {"x": {"pools": ["NOPE"]}}}}
    if variable != "FREQTRADE__EXCHANGE__NAME":
        ratekit = {"enabled": True}
    path = write(tmp_path / "config.json", {"ratekit": ratekit})
    assert cli_main(["check-config", "-c", path]) == 0 or variable == "FREQTRADE__EXCHANGE__NAME"
    capsys.readouterr()
    no_freqtrade_env.setenv(variable, value)
    assert cli_main(["check-config", "-c", path]) == 1
    captured = capsys.readouterr()
    assert expected in captured.err


def test_check_config_names_the_environment_overrides_but_not_their_values(
    tmp_path, capsys, no_freqtrade_env
):
    path = write(tmp_path / "config.json", {"ratekit": {"enabled": False}})
    no_freqtrade_env.setenv("FREQTRADE__RATEKIT__ENABLED", "true")
    no_freqtrade_env.setenv("FREQTRADE__RATEKIT__WEIGHTS__BACKEND", "redis://:hunter22@h:6379/0")
    assert cli_main(["check-config", "-c", path]) == 0
    out = capsys.readouterr().out
    assert "ratekit enabled" in out
    assert "FREQTRADE__RATEKIT__WEIGHTS__BACKEND" in out and "FREQTRADE__RATEKIT__ENABLED" in out
    assert "hunter22" not in out


def test_check_config_merges_several_files_like_freqtrade(tmp_path, capsys, no_freqtrade_env):
    first = write(tmp_path / "a.json", {"ratekit": {"enabled": True, "fiat": {"timeout": 500}}})
    second = write(tmp_path / "b.json", {"ratekit": {"fiat": {"timeout": 7}}})
    assert cli_main(["check-config", "-c", first]) == 1
    assert cli_main(["check-config", "-c", first, "-c", second, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["enabled"] is True and out["fiat"]["timeout"] == 7


def test_check_config_usage_error_returns_a_code(capsys):
    assert cli_main(["check-config", "--no-such-flag"]) == 2
    capsys.readouterr()


BOT_REJECTS = [
    {"exchange": {"name": "binance"}, "ratekit": {"weights": {"preset": "nope"}}},
    {"exchange": {"name": "binance"}, "ratekit": {"fiat": {"timeout": NAN}}},
    {
        "exchange": {"name": "binance"},
        "ratekit": {"enabled": True, "weights": {"endpoints": {"x": {"pools": ["NOPE"]}}}},
    },
    {"exchange": {"name": "binance"}, "ratekit": {"weights": {"backend": "redis://h/0?db=x"}}},
]


@pytest.mark.parametrize("config", BOT_REJECTS)
def test_the_bot_loader_and_check_config_give_the_same_error(tmp_path, capsys, config):
    """Freqtrade's own Configuration.load_config, as ratekit's install() wraps it."""
    from freqtrade.configuration import Configuration
    from freqtrade.enums import RunMode
    from freqtrade.exceptions import OperationalException

    from freqtrade_ratekit import patches

    (tmp_path / "user_data").mkdir()
    path = write(tmp_path / "config.json", {**config, "user_data_dir": str(tmp_path / "user_data")})
    assert cli_main(["check-config", "-c", path]) == 1
    check_config_error = capsys.readouterr().err
    patches.install()
    try:
        with pytest.raises(OperationalException) as info:
            Configuration({"config": [path]}, RunMode.OTHER).load_config()
    finally:
        patches.uninstall()
    assert str(info.value) in check_config_error
    assert not patches.is_active()


def test_check_config_security_warnings_do_not_change_the_exit_code(tmp_path, capsys):
    config = {
        "exchange": {"name": "binance", "key": "AKfakekey0001", "secret": "Sfakesecret0002"},
        "api_server": {
            "enabled": True,
            "listen_ip_address": "0.0.0.0",
            "username": "freqtrader",
            "password": "change-me",
            "jwt_secret_key": "x" * 40,
            "CORS_origins": ["*"],
        },
        "ratekit": {"enabled": True},
    }
    path = write(tmp_path / "config.json", config)
    assert cli_main(["check-config", "-c", path]) == 0
    out = capsys.readouterr().out
    for key in (
        "exchange.key",
        "exchange.secret",
        "api_server.password",
        "api_server.CORS_origins",
    ):
        assert f"! {key}:" in out
    assert cli_main(["check-config", "-c", path, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["enabled"] is True
    assert "! exchange.secret:" in captured.err
    for secret in ("AKfakekey0001", "Sfakesecret0002", "change-me"):
        assert secret not in captured.out + captured.err + out
