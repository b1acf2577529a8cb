"""The `ratekit` section of a Freqtrade config: schema, defaults, validation, effective settings.

Validation follows Freqtrade's own style (a JSON schema checked with jsonschema) but reports
every problem with the full key path, the offending value and what is allowed, because a typo
in a rate-limit setting must stop the bot before it trades, not be silently ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jsonschema import Draft7Validator

SECTION = "ratekit"
MASK = "***"

_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_NON_NEGATIVE = {"type": "number", "minimum": 0}

RATEKIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean", "description": "Switch ratekit on for this bot."},
        "rate_cache": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "maxsize": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                "ttl": _POSITIVE,
                "stale_ttl": _POSITIVE,
                "negative_ttl": _NON_NEGATIVE,
                "prewarm": {"type": "boolean"},
                "prewarm_whitelist": {"type": "boolean"},
                "refresh_interval": _NON_NEGATIVE,
            },
        },
        "fiat": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "background_refresh": {"type": "boolean"},
                "refresh_interval": {"type": "number", "minimum": 1},
                "stale_after": _POSITIVE,
                "coin_list_path": {"type": "string", "minLength": 1},
                "coin_list_max_age": _POSITIVE,
                "coingecko_url": {"type": ["string", "null"], "pattern": "^https?://"},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
            },
        },
        "weights": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["off", "observe", "enforce"]},
                "headroom": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "preset": {"type": "string", "minLength": 1},
                "pools": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["limit", "interval"],
                        "properties": {
                            "limit": {"type": "integer", "minimum": 1},
                            "interval": _POSITIVE,
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
                            "weight": _NON_NEGATIVE,
                            "pools": {
                                "type": "array",
                                "items": {"type": "string", "minLength": 1},
                                "minItems": 1,
                            },
                        },
                    },
                },
                "backend": {"type": "string", "minLength": 1},
                "scope_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
                "expected_bots": {"type": "integer", "minimum": 1, "maximum": 1000},
                "redis_timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
            },
        },
        "readers": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"snapshot": {"type": "boolean"}, "max_age": _POSITIVE},
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


class RatekitConfigError(ValueError):
    """The `ratekit` section is invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "Invalid 'ratekit' configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        )


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


def _format_path(path: Any) -> str:
    parts = [SECTION]
    for item in path:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
    return "".join(parts).replace(".[", "[")


_RULES = {
    "type": "must be of type {}",
    "minimum": "must be >= {}",
    "maximum": "must be <= {}",
    "exclusiveMinimum": "must be > {}",
    "exclusiveMaximum": "must be < {}",
    "pattern": "must match {}",
    "minLength": "must not be empty",
    "minItems": "must have at least {} item(s)",
}


def _describe_allowed(error: Any) -> str:
    expected = error.validator_value
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, expected))}"
    if error.validator == "required":
        return f"requires the keys {', '.join(expected)}"
    rule = _RULES.get(error.validator)
    return rule.format(expected) if rule else str(error.message)


def _schema_problems(section: Any) -> list[str]:
    problems = []
    validator = Draft7Validator(RATEKIT_SCHEMA)
    for error in sorted(validator.iter_errors(section), key=lambda e: list(map(str, e.path))):
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - known):
                path = _format_path([*error.path, key])
                problems.append(f"{path}: unknown key; allowed keys: {', '.join(sorted(known))}")
            continue
        path = _format_path(error.path)
        shown = _redact_value(error.path, error.instance)
        problems.append(f"{path} = {shown!r}: {_describe_allowed(error)}")
    return problems


def _redact_value(path: Any, value: Any) -> Any:
    if list(path)[-1:] == ["backend"] and isinstance(value, str):
        return mask_url(value)
    return value


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
    backend = merged["weights"]["backend"]
    if backend != "memory":
        problem = redis_url_problem(backend)
        if problem:
            problems.append(f"ratekit.weights.backend = {mask_url(backend)!r}: {problem}")
    return problems


def redis_url_problem(url: str) -> str | None:
    """Why `url` is not a usable Redis URL, or None when it is."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in _REDIS_SCHEMES:
        return "must be 'memory' or a redis://, rediss:// or unix:// URL"
    if parts.scheme != "unix" and not parts.hostname:
        return "a redis URL needs a host, e.g. redis://127.0.0.1:6379/0"
    if port is not None and not 0 < port < 65536:
        return "port must be between 1 and 65535"
    db = parts.path.lstrip("/")
    if parts.scheme != "unix" and db and not db.isdigit():
        return f"database must be a number, got {db!r}"
    return None


def mask_url(url: str) -> str:
    """Hide the password (and a user that looks like a token) of a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if parts.password is None and not parts.username:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    credentials = f"{user}:{MASK}" if parts.password is not None else MASK
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path, parts.query, ""))


def mask_secrets(section: dict[str, Any]) -> dict[str, Any]:
    weights = section.get("weights")
    if isinstance(weights, dict) and isinstance(weights.get("backend"), str):
        weights["backend"] = mask_url(weights["backend"])
    return section


def parse_settings(section: Any) -> RatekitSettings:
    """Validate a `ratekit` section (None = absent) and merge it with the defaults."""
    if section is None:
        section = {}
    problems = _schema_problems(section)
    if problems:
        raise RatekitConfigError(problems)
    merged = _deep_merge(DEFAULTS, section)
    problems = _semantic_problems(merged)
    if problems:
        raise RatekitConfigError(problems)
    return RatekitSettings(
        enabled=merged["enabled"],
        rate_cache=RateCacheSettings(**merged["rate_cache"]),
        fiat=FiatSettings(**merged["fiat"]),
        weights=WeightSettings(**merged["weights"]),
        readers=ReaderSettings(**merged["readers"]),
        api_enabled=merged["api"]["enabled"],
        raw=merged,
    )


def settings_from_config(config: Mapping[str, Any]) -> RatekitSettings:
    """Settings of a whole Freqtrade config dict."""
    return parse_settings(config.get(SECTION))
