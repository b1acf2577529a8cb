"""Property: `check-config` and the bot's config loader agree on every `ratekit` section.

Random and hostile sections (NaN, ±inf, huge ints, wrong types, unicode, control characters,
nested junk, unknown keys, bad URLs), with random FREQTRADE__RATEKIT__* environment variables,
are written to a real config file and given to both:
- `freqtrade-ratekit check-config -c FILE` (in-process, through `cli.main`), and
- Freqtrade's own `Configuration.load_config`, as `patches.install()` wraps it for the bot.
They must accept the same inputs, reject with the same message, and neither may raise anything
but the named config error (OperationalException carrying the RatekitConfigError text, for the
bot; exit code 1 with that text, for check-config).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from freqtrade_ratekit import cli, patches
from freqtrade_ratekit.cli.check_config import load_like_freqtrade
from freqtrade_ratekit.config import DEFAULTS, RatekitConfigError, validate_bot_config

HOSTILE_STRINGS = [
    "",
    " ",
    "abc\n",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "ü∂ø漢字🙂",
    "memory",
    "auto",
    "binance_spot",
    "okx",
    "nope",
    "observe",
    "enforce",
    "off",
    "ip",
    "account",
    "REQUEST_WEIGHT",
    "request_weight",
    "OKX_PUBLIC:market/tickers",
    "REQUEST_WEIGHT:x",
    "redis://127.0.0.1:6379/0",
    "redis://:pw@10.0.0.5:6379/1",
    "redis://h:99999/0",
    "redis://h:0/0",
    "redis://h:abc/0",
    "redis://h:6379/0?socket_timeout=abc",
    "redis://h:6379/0?password=pw&db=x",
    "redis://h:6379/99999999999999999999",
    "redis://h h:6379/0",
    "redis://[::1",
    "rediss://:pw@cache:6380",
    "unix:///run/redis.sock",
    "mysql://db",
    "http://127.0.0.1:1/api/v3",
    "https://u:pw@cg.example/api?x_cg_pro_api_key=k",
    "http://h:99999/",
    "http://",
    "ftp://x",
    "x" * 1000,
]
HOSTILE_NUMBERS = [
    0,
    1,
    -1,
    5.0,
    0.5,
    -0.0,
    1e-300,
    2**31,
    2**53 + 1,
    2**63,
    2**64,
    10**400,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
]


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
STRINGS = st.one_of(st.sampled_from(HOSTILE_STRINGS), TEXT)
PLAUSIBLE = st.one_of(st.integers(min_value=1, max_value=600), st.floats(0.01, 1.0))
NUMBERS = st.one_of(
    PLAUSIBLE,
    PLAUSIBLE,
    st.sampled_from(HOSTILE_NUMBERS),
    st.integers(min_value=-(10**6), max_value=10**7),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
NESTED = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(STRINGS, children, max_size=3)
    ),
    max_leaves=8,
)
# Nesting deeper than any valid section, now and then (not half the time: it hides the rest).
JUNK = st.one_of(*[NESTED] * 8, st.sampled_from([_deep(20), _deep(200)]))


def _leaf(default: Any) -> st.SearchStrategy[Any]:
    """Mostly values of the right kind (so deeper checks run), sometimes junk."""
    if isinstance(default, bool):
        right: st.SearchStrategy[Any] = st.booleans()
    elif isinstance(default, int | float):
        right = NUMBERS
    else:
        right = STRINGS
    return st.one_of(st.just(default), st.just(default), right, right, JUNK)


POOL_NAMES = (
    st.sampled_from(
        [
            "REQUEST_WEIGHT",
            "request_weight",
            "MINE",
            "OKX_PUBLIC:market/tickers",
            "CCXT_RATE_LIMIT",
            "",
        ]
    )
    | TEXT
)
POOL = st.fixed_dictionaries(
    {},
    optional={
        "limit": NUMBERS,
        "interval": NUMBERS,
        "scope": st.sampled_from(["ip", "account", "host"]),
        "extra": JUNK,
    },
)
ENDPOINT = st.fixed_dictionaries(
    {},
    optional={"weight": NUMBERS, "pools": st.lists(POOL_NAMES, max_size=3) | JUNK, "extra": JUNK},
)
SPECIAL: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("weights", "pools"): st.dictionaries(POOL_NAMES, POOL | JUNK, max_size=3),
    ("weights", "endpoints"): st.dictionaries(POOL_NAMES, ENDPOINT | JUNK, max_size=3),
}


def _group(name: str, defaults: dict[str, Any]) -> st.SearchStrategy[Any]:
    optional = {key: SPECIAL.get((name, key), _leaf(value)) for key, value in defaults.items()}
    fields = st.fixed_dictionaries({}, optional=optional)
    with_unknown = st.builds(
        lambda known, unknown: {**unknown, **known},
        fields,
        st.dictionaries(STRINGS, JUNK, max_size=2),
    )
    return st.one_of(fields, fields, fields, with_unknown, JUNK)


STRUCTURED = st.fixed_dictionaries(
    {},
    optional={
        key: _group(key, value) if isinstance(value, dict) else _leaf(value)
        for key, value in DEFAULTS.items()
    },
)
LEAF_PATHS = [
    (group, key) for group, values in DEFAULTS.items() if isinstance(values, dict) for key in values
]


@st.composite
def nearly_valid(draw: st.DrawFn) -> dict[str, Any]:
    """The defaults with one to three leaves replaced: each check gets hit on its own."""
    section = copy.deepcopy(DEFAULTS)
    for group, key in draw(st.lists(st.sampled_from(LEAF_PATHS), min_size=1, max_size=3)):
        default = DEFAULTS[group][key]
        section[group][key] = draw(SPECIAL.get((group, key), _leaf(default)))
    return section


SECTIONS = st.one_of(STRUCTURED, STRUCTURED, nearly_valid(), nearly_valid(), JUNK)
EXCHANGES = st.sampled_from(
    [
        ("binance", "spot"),
        ("binance", "futures"),
        ("okx", "spot"),
        ("kraken", "spot"),
        (None, "spot"),
    ]
)
ENV_KEYS = st.sampled_from(
    [
        "FREQTRADE__RATEKIT__ENABLED",
        "FREQTRADE__RATEKIT__FIAT__TIMEOUT",
        "FREQTRADE__RATEKIT__RATE_CACHE__TTL",
        "FREQTRADE__RATEKIT__RATE_CACHE__MAXSIZE",
        "FREQTRADE__RATEKIT__WEIGHTS__MODE",
        "FREQTRADE__RATEKIT__WEIGHTS__PRESET",
        "FREQTRADE__RATEKIT__WEIGHTS__BACKEND",
        "FREQTRADE__RATEKIT__WEIGHTS__SCOPE_ID",
        "FREQTRADE__RATEKIT__WEIGHTS__POOLS__REQUEST_WEIGHT__LIMIT",
        "FREQTRADE__RATEKIT__NOPE",
    ]
)
ENV_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "5", "1.5", "true", "f", "[1, 2]", "{}"]),
    st.sampled_from([s for s in HOSTILE_STRINGS if "\x00" not in s]),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8),
)
ENVIRONMENTS = st.one_of(st.just({}), st.dictionaries(ENV_KEYS, ENV_VALUES, max_size=2))


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """These FREQTRADE__* variables and no others, for one example."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("FREQTRADE__")}
    for name in saved:
        del os.environ[name]
    os.environ.update(variables)
    try:
        yield
    finally:
        for name in [name for name in os.environ if name.startswith("FREQTRADE__")]:
            del os.environ[name]
        os.environ.update(saved)


@pytest.fixture
def bot_loader(mocker: Any) -> Iterator[Any]:
    """Freqtrade's Configuration.load_config with ratekit installed; `activate` is a double
    (no workers, no feature patches), so the test sees whether the bot would activate."""
    from freqtrade.configuration import Configuration
    from freqtrade.enums import RunMode

    activate = mocker.patch.object(patches, "activate")
    assert patches.install()

    def load(path: str) -> bool:
        """Load like the bot; True when ratekit was activated."""
        activate.reset_mock()
        Configuration({"config": [path]}, RunMode.OTHER).load_config()
        return bool(activate.called)

    yield load
    patches.uninstall()


def check_config(path: str, as_json: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["check-config", "-c", path, *(["--json"] if as_json else [])])
    return code, out.getvalue(), err.getvalue()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(section=SECTIONS, exchange=EXCHANGES, env=ENVIRONMENTS, as_json=st.booleans())
def test_check_config_and_the_bot_loader_agree(
    tmp_path: Path, bot_loader: Any, section: Any, exchange: Any, env: Any, as_json: bool
) -> None:
    from freqtrade.exceptions import OperationalException

    name, mode = exchange
    user_data = tmp_path / "user_data"
    user_data.mkdir(exist_ok=True)
    config = {
        "exchange": {"name": name} if name else {},
        "trading_mode": mode,
        "user_data_dir": str(user_data),
        "ratekit": section,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))

    with environment(env):
        try:  # Freqtrade's own merge can fail (a FIAT__TIMEOUT variable over "fiat": 5)
            _, merged = load_like_freqtrade([str(path)])
        except Exception as exc:
            event(f"load error {type(exc).__name__}")
            merged = None
        code, out, err = check_config(str(path), as_json)
        bot_error: Exception | None = None
        activated = False
        try:
            activated = bot_loader(str(path))
        except OperationalException as exc:
            bot_error = exc
        except Exception as exc:
            if merged is not None:  # anything but a named error is a ratekit crash
                raise
            bot_error = exc

    if merged is None:  # stock Freqtrade refuses the file or environment: both refuse
        event("Freqtrade itself refuses")
        assert code == 1 and "Could not load" in err and bot_error is not None
        return
    enabled = False
    try:
        enabled = validate_bot_config(merged).enabled
        direct_error = None
    except RatekitConfigError as exc:  # nothing else may escape
        direct_error = str(exc)
    event("accepted" if bot_error is None else "rejected by ratekit")
    if bot_error is None:
        assert direct_error is None
        assert code == 0, err
        assert activated == enabled  # the bot activates exactly when check-config says so
        if as_json:
            assert json.loads(out)["enabled"] is enabled
        else:
            assert f"ratekit {'enabled' if enabled else 'disabled'}" in out
    else:
        assert direct_error == str(bot_error)
        assert code == 1
        assert str(bot_error) in err
    assert "Traceback" not in out + err
