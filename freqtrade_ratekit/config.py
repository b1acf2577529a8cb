"""The `ratekit` section of a Freqtrade config: schema, defaults, validation, effective settings.

Validation follows Freqtrade's own style (a JSON schema checked with jsonschema) but reports
every problem with the full key path, the offending value and what is allowed, because a typo
in a rate-limit setting must stop the bot before it trades, not be silently ignored.

`validate_bot_config` is the one entry point for a whole Freqtrade config: the bot's config
loader and `freqtrade-ratekit check-config` both call it, so they cannot disagree. It adds to
the schema what a schema cannot say: every number finite (Freqtrade's JSON parser accepts
`NaN` and `Infinity`, and jsonschema's bounds never fail on NaN), patterns matched whole, a
usable Redis URL, and weight presets and pools resolved against the config's exchange.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft7Validator, ValidationError, validators

from freqtrade_ratekit.redact import MASK, is_secret_name, mask_url, shorten

SECTION = "ratekit"

# Upper bounds, in seconds unless named otherwise. Each one is far above any useful value and
# far below what breaks something: an infinite or huge period overflows `Event.wait()`, an
# interval in milliseconds must stay an exact integer for Redis `PX`/`PEXPIRE` (int64) and for
# the Lua scripts (doubles, exact to 2**53), and limits and weights are summed in those windows.
MAX_TTL_S = 86_400  # a fresh rate older than a day is no longer a price
MAX_STALE_S = 7 * 86_400
MAX_PERIOD_S = 86_400  # background refresh periods
MAX_COIN_LIST_AGE_S = 365 * 86_400
MAX_READER_AGE_S = 3_600
MAX_POOL_INTERVAL_S = 7 * 86_400  # the longest published window is one day (Binance ORDERS_1D)
MAX_POOL_LIMIT = 1_000_000_000  # Binance's largest published limit is 200 000 / day
MAX_ENDPOINT_WEIGHT = MAX_POOL_LIMIT
MAX_URL_CHARS = 2_048
MAX_PATH_CHARS = 4_096
MAX_NAME_CHARS = 200
MAX_REDIS_DB = 2**31 - 1
# Deeper than any valid section (ratekit.weights.endpoints.X.pools[0] is 5 levels): refused
# before the schema runs, so a hostile nesting cannot reach a recursive repr() or validator.
MAX_DEPTH = 16
# Problems listed in one error message; a section with thousands of bad keys needs no more.
MAX_PROBLEMS_SHOWN = 50


def _number(
    *,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
) -> dict[str, Any]:
    """A bounded, finite number (`finite` is this module's keyword: NaN and ±inf fail it)."""
    schema: dict[str, Any] = {"type": "integer" if integer else "number", "finite": True}
    if minimum is not None:
        schema["minimum"] = minimum
    if exclusive_minimum is not None:
        schema["exclusiveMinimum"] = exclusive_minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


# Two keywords differ from plain JSON Schema: `finite` (above), and `pattern`, which must match
# the whole string (re.fullmatch): JSON Schema searches, and `$` also matches before a final
# newline, so `^[a-z]+$` would accept "abc\n".
RATEKIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean", "description": "Switch ratekit on for this bot."},
        "rate_cache": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "maxsize": _number(minimum=1, maximum=1_000_000, integer=True),
                "ttl": _number(exclusive_minimum=0, maximum=MAX_TTL_S),
                "stale_ttl": _number(exclusive_minimum=0, maximum=MAX_STALE_S),
                "negative_ttl": _number(minimum=0, maximum=MAX_TTL_S),
                "prewarm": {"type": "boolean"},
                "prewarm_whitelist": {"type": "boolean"},
                "refresh_interval": _number(minimum=0, maximum=MAX_PERIOD_S),
            },
        },
        "fiat": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "background_refresh": {"type": "boolean"},
                "refresh_interval": _number(minimum=1, maximum=MAX_PERIOD_S),
                "stale_after": _number(exclusive_minimum=0, maximum=MAX_STALE_S),
                "coin_list_path": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_PATH_CHARS,
                    "pattern": "[^\\x00]+",
                },
                "coin_list_max_age": _number(exclusive_minimum=0, maximum=MAX_COIN_LIST_AGE_S),
                "coingecko_url": {
                    "type": ["string", "null"],
                    "maxLength": MAX_URL_CHARS,
                    "pattern": "https?://[!-~]+",
                },
                "timeout": _number(exclusive_minimum=0, maximum=120),
            },
        },
        "weights": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["off", "observe", "enforce"]},
                "headroom": _number(exclusive_minimum=0, maximum=1),
                "preset": {"type": "string", "minLength": 1, "maxLength": 64},
                "pools": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["limit", "interval"],
                        "properties": {
                            "limit": _number(minimum=1, maximum=MAX_POOL_LIMIT, integer=True),
                            "interval": _number(exclusive_minimum=0, maximum=MAX_POOL_INTERVAL_S),
                            "scope": {"enum": ["ip", "account"]},
                        },
                    },
                },
                "endpoints": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "weight": _number(minimum=0, maximum=MAX_ENDPOINT_WEIGHT),
                            "pools": {
                                "type": "array",
                                "items": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": MAX_NAME_CHARS,
                                },
                                "minItems": 1,
                            },
                        },
                    },
                },
                "backend": {"type": "string", "minLength": 1, "maxLength": MAX_URL_CHARS},
                "scope_id": {"type": "string", "pattern": "[A-Za-z0-9_.:-]{1,64}"},
                "expected_bots": _number(minimum=1, maximum=1000, integer=True),
                "redis_timeout": _number(exclusive_minimum=0, maximum=5),
            },
        },
        "readers": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "snapshot": {"type": "boolean"},
                "max_age": _number(exclusive_minimum=0, maximum=MAX_READER_AGE_S),
            },
        },
        "api": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"enabled": {"type": "boolean"}},
        },
    },
}

DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "rate_cache": {
        "maxsize": 1000,
        "ttl": 300,
        "stale_ttl": 3600,
        "negative_ttl": 300,
        "prewarm": True,
        "prewarm_whitelist": False,
        "refresh_interval": 60,
    },
    "fiat": {
        "background_refresh": True,
        "refresh_interval": 300,
        "stale_after": 1800,
        "coin_list_path": "ratekit/coingecko_coins_list.json",
        "coin_list_max_age": 7 * 24 * 3600,
        "coingecko_url": None,
        "timeout": 10,
    },
    "weights": {
        "mode": "observe",
        "headroom": 0.8,
        "preset": "auto",
        "pools": {},
        "endpoints": {},
        "backend": "memory",
        "scope_id": "default",
        "expected_bots": 3,
        "redis_timeout": 0.25,
    },
    "readers": {"snapshot": True, "max_age": 5},
    "api": {"enabled": True},
}

_REDIS_SCHEMES = ("redis", "rediss", "unix")
# Keys whose value is a URL that may carry credentials: masked wherever a value is shown.
_URL_KEYS = (("weights", "backend"), ("fiat", "coingecko_url"))


class RatekitConfigError(ValueError):
    """The `ratekit` section is invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = [f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        super().__init__("Invalid 'ratekit' configuration:\n" + "\n".join(shown))


@dataclass(frozen=True)
class RateCacheSettings:
    maxsize: int
    ttl: float
    stale_ttl: float
    negative_ttl: float
    prewarm: bool
    prewarm_whitelist: bool
    refresh_interval: float


@dataclass(frozen=True)
class FiatSettings:
    background_refresh: bool
    refresh_interval: float
    stale_after: float
    coin_list_path: str
    coin_list_max_age: float
    coingecko_url: str | None
    timeout: float

    def resolved_coin_list_path(self, user_data_dir: str | Path | None) -> Path:
        """Relative paths live under the bot's user_data directory, like Freqtrade's own files."""
        path = Path(self.coin_list_path).expanduser()
        if path.is_absolute() or user_data_dir is None:
            return path
        return Path(user_data_dir) / path


@dataclass(frozen=True)
class WeightSettings:
    mode: str
    headroom: float
    preset: str
    pools: Mapping[str, Mapping[str, Any]]
    endpoints: Mapping[str, Mapping[str, Any]]
    backend: str
    scope_id: str
    expected_bots: int
    redis_timeout: float

    @property
    def uses_redis(self) -> bool:
        return self.backend != "memory"


@dataclass(frozen=True)
class ReaderSettings:
    snapshot: bool
    max_age: float


@dataclass(frozen=True)
class RatekitSettings:
    enabled: bool
    rate_cache: RateCacheSettings
    fiat: FiatSettings
    weights: WeightSettings
    readers: ReaderSettings
    api_enabled: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def effective(self) -> dict[str, Any]:
        """The merged section as a plain dict, secrets masked: safe to print or serve."""
        return mask_secrets(copy.deepcopy(dict(self.raw)))


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _format_path(path: Any) -> str:
    """`ratekit.weights.pools['a b'][0]`: odd keys are quoted, so a key with a newline or a
    control character cannot forge another line of the error message."""
    parts = [SECTION]
    for item in path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(item, str) and _IDENTIFIER.fullmatch(item):
            parts.append(f".{item}")
        else:
            parts.append(f"[{_show(item)}]")
    return "".join(parts)


_RULES = {
    "type": "must be of type {}",
    "minimum": "must be >= {}",
    "maximum": "must be <= {}",
    "exclusiveMinimum": "must be > {}",
    "exclusiveMaximum": "must be < {}",
    "pattern": "must match {}",
    "minLength": "must not be empty",
    "maxLength": "must be at most {} characters",
    "minItems": "must have at least {} item(s)",
    "finite": "must be a finite number",
}


def _describe_allowed(error: Any) -> str:
    expected = error.validator_value
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, expected))}"
    if error.validator == "required":
        return f"requires the keys {', '.join(expected)}"
    rule = _RULES.get(error.validator)
    return rule.format(expected) if rule else "is not allowed"


def _finite(validator: Any, finite: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if finite and isinstance(instance, float) and not math.isfinite(instance):
        yield ValidationError("must be a finite number")


def _fullmatch(
    validator: Any, pattern: str, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and re.fullmatch(pattern, instance) is None:
        yield ValidationError(f"does not match {pattern!r}")


_Validator = validators.extend(Draft7Validator, {"finite": _finite, "pattern": _fullmatch})
_VALIDATOR = _Validator(RATEKIT_SCHEMA)


def _masked(value: Any, depth: int = 0) -> Any:
    """A copy of `value` safe to echo: URLs masked, values under secret-named keys hidden."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if depth > MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and is_secret_name(key) else _masked(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item, depth + 1) for item in value]
    return value


def _show(value: Any) -> str:
    """A bad value as an error message shows it: masked, and cut when long (a 10 MB value
    would bury the message and may be a pasted secret)."""
    try:
        return shorten(_masked(value))
    except (RecursionError, ValueError):  # repr() of a huge int raises ValueError
        return f"<unprintable {type(value).__name__}>"


def _too_deep(section: Any) -> list[str]:
    """The paths nested deeper than MAX_DEPTH, found without recursion."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), section)]
    problems = []
    while stack:
        path, value = stack.pop()
        children: Any = ()
        if isinstance(value, Mapping):
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        for key, child in children:
            if not isinstance(child, Mapping | list):
                continue
            if len(path) + 1 >= MAX_DEPTH:
                problems.append(
                    f"{_format_path(path[:MAX_DEPTH])}: nested more than {MAX_DEPTH} levels deep"
                )
                return problems
            stack.append(((*path, key), child))
    return problems


def _schema_problems(section: Any) -> list[str]:
    problems = _too_deep(section)
    if problems:
        return problems
    errors = sorted(_VALIDATOR.iter_errors(section), key=lambda e: list(map(str, e.path)))
    # One message per key: NaN and inf get "must be a finite number", not also a bound.
    non_finite = {tuple(e.path) for e in errors if e.validator == "finite"}
    for error in errors:
        if error.validator != "finite" and tuple(error.path) in non_finite:
            continue
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - known, key=str):
                path = _format_path([*error.path, key])
                problems.append(f"{path}: unknown key; allowed keys: {', '.join(sorted(known))}")
            continue
        path = _format_path(error.path)
        problems.append(f"{path} = {_show(error.instance)}: {_describe_allowed(error)}")
    return problems


def _deep_merge(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _semantic_problems(merged: Mapping[str, Any]) -> list[str]:
    problems = []
    cache = merged["rate_cache"]
    if cache["stale_ttl"] < cache["ttl"]:
        problems.append(
            f"ratekit.rate_cache.stale_ttl = {cache['stale_ttl']!r}: must be >= "
            f"rate_cache.ttl ({cache['ttl']!r}), stale rates outlive fresh ones"
        )
    coingecko_url = merged["fiat"]["coingecko_url"]
    if coingecko_url is not None:
        problem = _http_url_problem(coingecko_url)
        if problem:
            problems.append(f"ratekit.fiat.coingecko_url = {_show(coingecko_url)}: {problem}")
    weights = merged["weights"]
    backend = weights["backend"]
    if backend != "memory":
        problem = redis_url_problem(backend)
        if problem:
            problems.append(f"ratekit.weights.backend = {_show(backend)}: {problem}")
    for group, what in (("pools", "pool"), ("endpoints", "endpoint")):
        for name in weights[group]:
            if not (0 < len(name) <= MAX_NAME_CHARS and name.isprintable()):
                problems.append(
                    f"{_format_path(['weights', group, name])}: a {what} name must be 1 to "
                    f"{MAX_NAME_CHARS} printable characters"
                )
    return problems


def _http_url_problem(url: str) -> str | None:
    """Why `url` cannot be requested (the schema already checked its scheme)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if not parts.hostname:
        return "the URL needs a host, e.g. https://api.coingecko.com/api/v3"
    return None


def redis_url_problem(url: str) -> str | None:
    """Why `url` is not a usable Redis URL, or None when it is.

    Ends with redis-py's own URL parser when it is installed, so every URL this accepts is one
    `RedisBackend` can open: a bad option in the query (`?socket_timeout=abc`) is named here,
    not raised as a traceback when the bot starts.
    """
    if any(char.isspace() or not char.isprintable() for char in url):
        return "a URL cannot contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in _REDIS_SCHEMES:
        return "must be 'memory' or a redis://, rediss:// or unix:// URL"
    if parts.scheme != "unix" and not parts.hostname:
        return "a redis URL needs a host, e.g. redis://127.0.0.1:6379/0"
    if port is not None and not 0 < port < 65536:
        return "port must be between 1 and 65535"
    db = parts.path.lstrip("/")
    if parts.scheme != "unix" and db and not (db.isascii() and db.isdigit()):
        return f"database must be a number, got {_show(db)}"
    if parts.scheme != "unix" and db and int(db) > MAX_REDIS_DB:
        return f"database must be between 0 and {MAX_REDIS_DB}"
    for name, value in query:
        if name == "db" and not (value.isascii() and value.isdigit()):
            return "the db query parameter must be a number"
    try:
        from redis.connection import parse_url
    except ImportError:
        return "the redis backend needs the redis package: pip install 'freqtrade-ratekit[redis]'"
    try:
        parse_url(url)
    except ValueError as exc:
        return f"redis-py cannot use this URL ({mask_url(str(exc))})"
    return None


def mask_secrets(section: dict[str, Any]) -> dict[str, Any]:
    """Mask every URL-valued key of a merged section in place (Redis backend, CoinGecko URL)."""
    for group, key in _URL_KEYS:
        values = section.get(group)
        if isinstance(values, dict) and isinstance(values.get(key), str):
            values[key] = mask_url(values[key])
    return section


def parse_settings(section: Any) -> RatekitSettings:
    """Validate a `ratekit` section (None = absent) and merge it with the defaults.

    Only what the section alone can tell; `validate_bot_config` adds the checks that need the
    rest of the bot's config (exchange, trading mode).
    """
    if section is None:
        section = {}
    problems = _schema_problems(section)
    if problems:
        raise RatekitConfigError(problems)
    merged = _deep_merge(DEFAULTS, section)
    problems = _semantic_problems(merged)
    if problems:
        raise RatekitConfigError(problems)
    # JSON Schema's "integer" admits 5.0: the components get real ints.
    merged["rate_cache"]["maxsize"] = int(merged["rate_cache"]["maxsize"])
    merged["weights"]["expected_bots"] = int(merged["weights"]["expected_bots"])
    return RatekitSettings(
        enabled=merged["enabled"],
        rate_cache=RateCacheSettings(**merged["rate_cache"]),
        fiat=FiatSettings(**merged["fiat"]),
        weights=WeightSettings(**merged["weights"]),
        readers=ReaderSettings(**merged["readers"]),
        api_enabled=merged["api"]["enabled"],
        raw=merged,
    )


def exchange_of(config: Mapping[str, Any]) -> tuple[str | None, str]:
    """(exchange id, trading mode) of a Freqtrade config, as the bot's Exchange sees them:
    the lower-cased `exchange.name` (None when absent) and `trading_mode` (default spot)."""
    exchange = config.get("exchange")
    name = exchange.get("name") if isinstance(exchange, Mapping) else None
    mode = config.get("trading_mode") or "spot"
    mode = getattr(mode, "value", mode)  # Freqtrade may have put a TradingMode there
    exchange_id = name.strip().lower() if isinstance(name, str) and name.strip() else None
    return exchange_id, mode if isinstance(mode, str) else "spot"


def _preset_problems(weights: WeightSettings, exchange_id: str | None, mode: str) -> list[str]:
    """The weight preset resolved the way the bot's ledger resolves it, and every pool
    override and endpoint pool checked against it: a typo would otherwise surface at the first
    exchange call, or never (a pool nothing charges does nothing)."""
    from freqtrade_ratekit.weights.presets import preset_for, preset_names

    known_presets = preset_names()
    if weights.preset != "auto" and weights.preset not in known_presets:
        return [
            f"ratekit.weights.preset = {_show(weights.preset)}: unknown preset; must be one "
            f"of auto, {', '.join(known_presets)}"
        ]
    if exchange_id is None:
        return []  # no exchange named: `auto` cannot be resolved, the bot will resolve it
    try:
        # rate_limit_ms only sizes the fallback pool; validation needs the names alone.
        base = preset_for(exchange_id, trading_mode=mode, name=weights.preset, rate_limit_ms=1000)
    except ValueError as exc:
        return [f"ratekit.weights.preset = {_show(weights.preset)}: {exc}"]
    preset_pools = {spec.name: spec for spec in base.pools}
    templates = {name for name, spec in preset_pools.items() if spec.per_endpoint}
    where = f"preset {base.name} ({exchange_id}, {mode})"

    def known(pool: str) -> bool:
        return _preset_has(pool, preset_pools, templates) or pool in weights.pools

    problems = []
    used_by_endpoints: set[str] = set()
    for key, fields in weights.endpoints.items():
        for index, pool in enumerate(fields.get("pools", ())):
            used_by_endpoints.add(pool)
            if not known(pool):
                problems.append(
                    f"{_format_path(['weights', 'endpoints', key, 'pools', index])} = "
                    f"{_show(pool)}: unknown pool; must be one of weights.pools or a pool of "
                    f"{where}: {', '.join(sorted(preset_pools))}"
                )
    for pool in weights.pools:
        if _preset_has(pool, preset_pools, templates) or pool in used_by_endpoints:
            continue
        hint = next((p for p in preset_pools if p.lower() == pool.lower()), None)
        problems.append(
            f"{_format_path(['weights', 'pools', pool])}: not a pool of {where} and no "
            "weights.endpoints entry charges it, so it would limit nothing"
            + (
                f"; did you mean {hint!r}? (names are case-sensitive, and Freqtrade lower-cases "
                "the keys of FREQTRADE__* environment variables)"
                if hint
                else f"; pools of the preset: {', '.join(sorted(preset_pools))}"
            )
        )
    if problems:
        return problems
    try:  # the bot's own call: whatever it would refuse is refused here, with the key named
        preset_for(
            exchange_id,
            trading_mode=mode,
            name=weights.preset,
            rate_limit_ms=1000,
            pools=weights.pools,
            endpoints=weights.endpoints,
        )
    except (ValueError, KeyError, OverflowError) as exc:
        return [f"ratekit.weights: {shorten(str(exc))}"]
    return []


def _preset_has(pool: str, preset_pools: Mapping[str, Any], templates: set[str]) -> bool:
    """Whether the preset has pool `pool`: one of its own, or one endpoint's pool of a
    per-endpoint template ("OKX_PUBLIC:market/tickers")."""
    template, _, endpoint = pool.partition(":")
    return pool in preset_pools or (bool(endpoint) and template in templates)


def validate_bot_config(config: Mapping[str, Any]) -> RatekitSettings:
    """The settings of a whole Freqtrade config (files and FREQTRADE__* environment already
    merged), or RatekitConfigError naming every problem.

    The one validation: the bot's config loader and `check-config` both call it, so a config
    that one accepts the other accepts. Schema and bounds, semantics, then the weight preset
    resolved against `exchange.name` and `trading_mode`.
    """
    if not isinstance(config, Mapping):
        raise RatekitConfigError([f"the config must be an object, got {type(config).__name__}"])
    settings = parse_settings(config.get(SECTION))
    exchange_id, mode = exchange_of(config)
    problems = _preset_problems(settings.weights, exchange_id, mode)
    if problems:
        raise RatekitConfigError(problems)
    return settings
