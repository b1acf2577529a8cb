"""Security advice (check-config's security section) and the status CLI's password handling."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from freqtrade_ratekit.cli import status_client as status
from freqtrade_ratekit.security import (
    SecurityWarning,
    api_server_warnings,
    credentials_in_file,
    is_loopback,
    redis_warnings,
    security_warnings,
)

ROOT = Path(__file__).resolve().parent.parent
STRONG_PASSWORD = "Xk2-vL9q-Rt4m-Wp7z"
STRONG_JWT = "tq3Yh8Kp2Lm9Vx4Rz7Nw6Bc5Gd1Fs0Ja"
SAFE_API = {
    "enabled": True,
    "listen_ip_address": "0.0.0.0",
    "listen_port": 8080,
    "username": "alice",
    "password": STRONG_PASSWORD,
    "jwt_secret_key": STRONG_JWT,
    "ws_token": "Zr8-Pq3m-Lk7x-Vb2n",
    "CORS_origins": ["http://127.0.0.1:3000"],
}


def keys(warnings: list[SecurityWarning]) -> list[str]:
    return [warning.key for warning in warnings]


def api(**changes: object) -> dict:
    section = copy.deepcopy(SAFE_API)
    for key, value in changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    return {"api_server": section}


def test_the_example_config_has_no_warnings():
    from freqtrade.configuration.load_config import load_config_file

    assert security_warnings(load_config_file(str(ROOT / "user_data" / "config.json"))) == []


def test_a_safe_config_has_no_warnings():
    config = {
        "exchange": {"name": "binance", "key": "", "secret": ""},
        **api(),
        "ratekit": {"enabled": True, "weights": {"backend": "rediss://:pw@cache.lan:6380/0"}},
    }
    assert security_warnings(config, file_config={**config, "ratekit": {}}) == []


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("key", "FREQTRADE__EXCHANGE__KEY"),
        ("secret", "FREQTRADE__EXCHANGE__SECRET"),
        ("password", "FREQTRADE__EXCHANGE__PASSWORD"),
        ("uid", "FREQTRADE__EXCHANGE__UID"),
        ("apiKey", "FREQTRADE__EXCHANGE__KEY"),  # FREQTRADE__EXCHANGE__APIKEY would be lost
        ("privateKey", "FREQTRADE__EXCHANGE__PRIVATE_KEY"),
    ],
)
def test_exchange_credentials_in_the_file_are_named_with_their_variable(name, variable):
    secret = "planted-Secret-123"
    (warning,) = credentials_in_file({"exchange": {"name": "binance", name: secret}})
    assert warning.key == f"exchange.{name}"
    assert variable in warning.fix and "no withdrawals" in warning.fix
    assert secret not in warning.text()


def test_credentials_only_in_the_environment_are_not_flagged():
    file_config = {"exchange": {"name": "binance", "key": "", "secret": None}}
    merged = {"exchange": {"name": "binance", "key": "from-env", "secret": "from-env"}}
    assert security_warnings(merged, file_config=file_config) == []
    # written in the file, even if the environment overrides it: still exposed on disk
    assert keys(security_warnings(merged, file_config=merged)) == [
        "exchange.key",
        "exchange.secret",
    ]


def test_ccxt_config_credentials_keep_their_case_in_the_variable():
    (warning,) = credentials_in_file({"exchange": {"ccxt_config": {"apiKey": "k"}}})
    assert warning.key == "exchange.ccxt_config.apiKey"
    assert "FREQTRADE__EXCHANGE__CCXT_CONFIG__apiKey" in warning.fix


def test_a_redis_password_in_the_file_is_flagged():
    config = {"ratekit": {"weights": {"backend": "redis://h:6379/0?password=hunter2"}}}
    (warning,) = credentials_in_file(config)
    assert warning.key == "ratekit.weights.backend"
    assert "FREQTRADE__RATEKIT__WEIGHTS__BACKEND" in warning.fix
    assert "hunter2" not in warning.text()


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        ({"password": ""}, "api_server.password", "is empty"),
        ({"password": None}, "api_server.password", "is empty"),
        ({"password": "Short-pw1"}, "api_server.password", "shorter than 12 characters"),
        ({"password": "change-me"}, "api_server.password", "default or example"),
        ({"password": "SuperSecurePassword"}, "api_server.password", "default or example"),
        ({"password": "alice"}, "api_server.password", "same as the username"),
        ({"jwt_secret_key": "somethingrandom"}, "api_server.jwt_secret_key", "default"),
        ({"jwt_secret_key": None}, "api_server.jwt_secret_key", "default"),  # Freqtrade's own
        ({"jwt_secret_key": "x" * 31}, "api_server.jwt_secret_key", "shorter than 32"),
        ({"ws_token": "q9Z"}, "api_server.ws_token", "shorter than 12"),
        ({"ws_token": ["Zr8-Pq3m-Lk7x-Vb2n", "secret"]}, "api_server.ws_token[1]", "default"),
    ],
)
def test_weak_api_credentials_beyond_loopback(changes, key, reason):
    warnings = api_server_warnings(api(**changes))
    assert keys(warnings) == [key]
    (warning,) = warnings
    assert reason in warning.problem and "0.0.0.0" in warning.problem
    assert "127.0.0.1" in warning.fix
    for value in changes.values():
        if isinstance(value, str) and value:
            assert value not in warning.text()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_weak_api_credentials_on_loopback_are_not_flagged(host):
    config = api(listen_ip_address=host, password="change-me", jwt_secret_key="super-secret")
    assert api_server_warnings(config) == []


def test_a_disabled_api_server_is_not_checked():
    assert api_server_warnings(api(enabled=False, password="", CORS_origins=["*"])) == []


def test_cors_wildcard_is_flagged_even_on_loopback():
    (warning,) = api_server_warnings(api(listen_ip_address="127.0.0.1", CORS_origins=["*"]))
    assert warning.key == "api_server.CORS_origins" and "exact origins" in warning.fix


@pytest.mark.parametrize(
    ("backend", "missing"),
    [
        ("redis://10.0.0.5:6379/0", "no password and no TLS"),
        ("redis://:pw@redis.lan:6379/0", "no TLS"),
        ("redis://redis.lan/0?password=pw", "no TLS"),
        ("rediss://redis.lan:6380/0", "no password"),
    ],
)
def test_redis_on_another_host_without_password_or_tls(backend, missing):
    (warning,) = redis_warnings({"ratekit": {"enabled": True, "weights": {"backend": backend}}})
    assert warning.key == "ratekit.weights.backend"
    assert f"is used with {missing}:" in warning.problem and "rediss://" in warning.fix
    assert ":pw" not in warning.text() and "password=pw" not in warning.text()


@pytest.mark.parametrize(
    "ratekit",
    [
        {"enabled": True, "weights": {"backend": "redis://127.0.0.1:6379/0"}},
        {"enabled": True, "weights": {"backend": "redis://localhost/0"}},
        {"enabled": True, "weights": {"backend": "unix:///run/redis.sock"}},
        {"enabled": True, "weights": {"backend": "rediss://:pw@redis.lan:6380/0"}},
        {"enabled": True, "weights": {"backend": "memory"}},
        {"enabled": False, "weights": {"backend": "redis://10.0.0.5/0"}},
    ],
)
def test_redis_that_needs_no_warning(ratekit):
    assert redis_warnings({"ratekit": ratekit}) == []


@pytest.mark.parametrize(
    "config",
    [
        {"exchange": "binance", "api_server": [], "ratekit": 3},
        {
            "exchange": {"key": 5, "ccxt_config": "x"},
            "api_server": {"enabled": True, "CORS_origins": "*"},
        },
        {"api_server": {"enabled": True, "listen_ip_address": {"x": 1}, "ws_token": [None, 3]}},
        {"ratekit": {"enabled": True, "weights": {"backend": "redis://[::1"}}},
        {"ratekit": {"enabled": True, "weights": {"backend": "redis://h:99999/0"}}},
    ],
)
def test_malformed_configs_never_raise(config):
    security_warnings(config)


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("redis") and not is_loopback(None)


# --- status -u/-p: the README's short options, and no password in a usage error -------------


def test_status_has_the_short_options_the_readme_shows():
    """Old code: only --username/--password existed; `-u`/`-p` were usage errors."""
    args = status.build_parser().parse_args(["--url", "http://h:1", "-u", "me", "-p", "pw"])
    assert (args.username, args.password) == ("me", "pw")


PLANTED = "Pl4nted-Passw0rd"


@pytest.mark.parametrize(
    "argv",
    [
        ["-u", "me", "-p", PLANTED, "--bogus"],
        ["--password", PLANTED, "stray"],
        [f"--password={PLANTED}", "--watch", "-1x"],
        [f"-p{PLANTED}", "--bogus"],
        [f"--pass={PLANTED}", "--top", "many"],
        [f"--pasword={PLANTED}"],  # a mistyped flag: argparse would list it verbatim
        ["--pasword", PLANTED],
        ["--username", "me", "-x", PLANTED],
        ["-p", f"-{PLANTED}"],
        ["--json", "--watch", "1", "-p", PLANTED],
    ],
)
def test_status_usage_errors_never_echo_the_password(argv, capsys):
    """Old code: `-p s3cret` was "unrecognized arguments: -p s3cret", password and all."""
    assert status.main(argv) == status.EXIT_USAGE
    captured = capsys.readouterr()
    assert "error:" in captured.err
    assert PLANTED not in captured.out + captured.err


def test_status_usage_errors_still_name_the_bad_option(capsys):
    assert status.main(["--no-such-flag"]) == status.EXIT_USAGE
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
