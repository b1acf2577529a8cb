"""The `ratekit` section of a Freqtrade config: schema, defaults, validation, effective settings.

Each key is declared once, as a field of the settings dataclasses (`key(...)`: type, default,
bounds, documentation); the JSON schema, DEFAULTS, the settings objects and the reference table
of docs/configuration.md (`reference_table()`, `python -m freqtrade_ratekit.config`) are
generated from that declaration.

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
import dataclasses
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft7Validator, ValidationError, validators

from freqtrade_ratekit.redact import MASK, is_secret_name, mask_url, shorten
from freqtrade_ratekit.weights.presets import preset_names

SECTION = "ratekit"

# Upper bounds, in seconds unless named otherwise. Each one is far above any useful value and
# far below what breaks something: an infinite or huge period overflows `Event.wait()`, an
# interval in milliseconds must stay an exact integer for Redis `PX`/`PEXPIRE` (int64) and for
# the Lua scripts (doubles, exact to 2**53), and limits and weights are summed in those windows.
MAX_TTL_S = 86_400  # a fresh rate older than a day is no longer a price
MAX_STALE_S = 7 * 86_400
MAX_PERIOD_S = 86_400  # background refresh periods
MAX_TRADING_AGE_S = 60  # a trading decision on prices older than a minute is no longer "current"
MAX_COIN_LIST_AGE_S = 365 * 86_400
MAX_READER_AGE_S = 3_600
MAX_POOL_INTERVAL_S = 7 * 86_400  # the longest published window is one day (Binance ORDERS_1D)
MAX_POOL_LIMIT = 1_000_000_000  # Binance's largest published limit is 200 000 / day
MAX_ENDPOINT_WEIGHT = MAX_POOL_LIMIT
MAX_URL_CHARS = 2_048
MAX_PATH_CHARS = 4_096
MAX_NAME_CHARS = 200
MAX_REDIS_DB = 2**31 - 1
MAX_RESERVE = 0.9  # a command must keep some share of a pool, or it could never send a call
# Deeper than any valid section (ratekit.weights.endpoints.X.pools[0] is 5 levels): refused
# before the schema runs, so a hostile nesting cannot reach a recursive repr() or validator.
MAX_DEPTH = 16
# Problems listed in one error message; a section with thousands of bad keys needs no more.
MAX_PROBLEMS_SHOWN = 50


# --- the declaration ----------------------------------------------------------------------
#
# Every key of the section is declared once, as a field of the frozen settings dataclasses
# below: its Python type (the attribute the components read), its default, its bounds and its
# documentation. RATEKIT_SCHEMA, DEFAULTS, the settings objects `parse_settings` builds and the
# configuration reference in docs/configuration.md (`reference_table()`) are all made from it.
#
# Two schema keywords differ from plain JSON Schema: `finite` (NaN and ±inf fail it; every
# number gets it), and `pattern`, which must match the whole string (re.fullmatch): JSON Schema
# searches, and `$` also matches before a final newline, so `^[a-z]+$` would accept "abc\n".

_DECLARATION = "ratekit"  # the dataclass field metadata key holding a key's declaration


@dataclass(frozen=True)
class _Declared:
    """What a `key(...)` field declares; the JSON type comes from the field's annotation."""

    default: Any
    meaning: str
    allowed: str | None
    rules: Mapping[str, Any]
    schema: Mapping[str, Any] | None
    url: bool


def key(
    default: Any,
    *,
    meaning: str,
    allowed: str | None = None,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    enum: tuple[str, ...] | None = None,
    schema: Mapping[str, Any] | None = None,
    url: bool = False,
) -> Any:
    """Declare one key of the `ratekit` section as a settings field.

    `meaning` and `allowed` are the documentation columns (`allowed` is derived from the bounds
    when omitted); the bounds become the key's JSON schema, whose type is the field's
    annotation (`bool`, `int`, `float`, `str`, `str | None`); `schema` replaces the derived
    schema for values the annotation cannot describe (pools, endpoints). `url` marks a value
    that may carry credentials: it is masked wherever the effective settings are shown.
    """
    rules = {
        "minimum": minimum,
        "exclusiveMinimum": exclusive_minimum,
        "maximum": maximum,
        "minLength": min_length,
        "maxLength": max_length,
        "pattern": pattern,
        "enum": list(enum) if enum is not None else None,
    }
    declared = _Declared(
        default=default,
        meaning=meaning,
        allowed=allowed,
        rules={name: rule for name, rule in rules.items() if rule is not None},
        schema=schema,
        url=url,
    )
    metadata = {_DECLARATION: declared}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _leaf(json_type: str | list[str] | None, rules: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON schema leaf: the type, `finite` for numbers, then the rules, in a fixed order."""
    schema: dict[str, Any] = {} if json_type is None else {"type": json_type}
    if json_type in ("number", "integer"):
        schema["finite"] = True
    for name in ("minimum", "exclusiveMinimum", "maximum", "minLength", "maxLength", "pattern"):
        if name in rules:
            schema[name] = rules[name]
    if "enum" in rules:
        schema["enum"] = rules["enum"]
    return schema


def _number(
    *,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
) -> dict[str, Any]:
    """A bounded, finite number, for the values inside pools and endpoints."""
    rules = {"minimum": minimum, "exclusiveMinimum": exclusive_minimum, "maximum": maximum}
    return _leaf(
        "integer" if integer else "number",
        {name: rule for name, rule in rules.items() if rule is not None},
    )


_POOL_SCHEMA: dict[str, Any] = {
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
}

_ENDPOINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "weight": _number(minimum=0, maximum=MAX_ENDPOINT_WEIGHT),
            "pools": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
                "minItems": 1,
            },
        },
    },
}

_TO = " \N{EN DASH} "  # a range in the reference: "1 \N{EN DASH} 86 400"
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _show_number(number: float) -> str:
    """A bound as the reference shows it: 3600, 86 400, 10⁹."""
    if isinstance(number, float) and not number.is_integer():
        return repr(number)
    number = int(number)
    exponent = len(str(number)) - 1
    if number >= 10**9 and number == 10**exponent:
        return "10" + str(exponent).translate(_SUPERSCRIPTS)
    return f"{number:,}".replace(",", " ") if number >= 10_000 else str(number)


def _derive_allowed(json_type: str | list[str] | None, rules: Mapping[str, Any]) -> str:
    """The `allowed` column of the reference, from a key's type and bounds."""
    if "enum" in rules:
        return " \\| ".join(f"`{value}`" for value in rules["enum"])
    if "pattern" in rules and set(rules) == {"pattern"}:
        return f"`{rules['pattern']}`"
    prefix = "int " if json_type == "integer" else ""
    if json_type in ("number", "integer") and "maximum" in rules:
        top = _show_number(rules["maximum"])
        if "minimum" in rules:
            return f"{prefix}{_show_number(rules['minimum'])}{_TO}{top}"
        if "exclusiveMinimum" in rules:
            return f"{prefix}> {_show_number(rules['exclusiveMinimum'])}, ≤ {top}"
    if json_type == "boolean" and not rules:
        return "bool"
    raise TypeError(f"cannot describe {json_type} {dict(rules)}: declare `allowed`")


@dataclass(frozen=True)
class Key:
    """One key of the `ratekit` section, as the declaration resolves it."""

    path: tuple[str, ...]  # ("rate_cache", "ttl")
    python_type: Any  # the settings attribute's type
    default: Any
    schema: Mapping[str, Any]  # the value's JSON schema
    allowed: str  # the reference's `allowed` column
    meaning: str  # the reference's `meaning` column
    url: bool  # may carry credentials: masked when shown

    @property
    def dotted(self) -> str:
        """`rate_cache.ttl`, as the reference and the error messages name the key."""
        return ".".join(self.path)


_JSON_TYPES: dict[Any, str | list[str]] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    str | None: ["string", "null"],
}


def _resolve(path: tuple[str, ...], python_type: Any, declared: _Declared) -> Key:
    rules = declared.rules
    if declared.schema is not None:
        schema = dict(declared.schema)
        json_type = schema.get("type")
    else:
        json_type = None if "enum" in rules else _JSON_TYPES.get(python_type)
        if json_type is None and "enum" not in rules:
            raise TypeError(f"ratekit.{'.'.join(path)}: no JSON type for {python_type}")
        schema = _leaf(json_type, rules)
    schema["description"] = declared.meaning
    allowed = declared.allowed or _derive_allowed(json_type, rules)
    return Key(path, python_type, declared.default, schema, allowed, declared.meaning, declared.url)


@dataclass(frozen=True)
class RateCacheSettings:
    maxsize: int = key(
        1000,
        minimum=1,
        maximum=1_000_000,
        meaning="LRU capacity per side (entry, exit); stock: 100",
    )
    ttl: float = key(
        300,
        exclusive_minimum=0,
        maximum=MAX_TTL_S,
        meaning="a rate is *fresh* this long; trading decisions only ever see fresh rates "
        "(stock: 300)",
    )
    stale_ttl: float = key(
        3600,
        exclusive_minimum=0,
        maximum=MAX_STALE_S,
        allowed=f"≥ `ttl`, ≤ {_show_number(MAX_STALE_S)}",
        meaning="readers (`/status`, `/profit`, Telegram) may be shown a stale rate up to this age",
    )
    negative_ttl: float = key(
        300,
        minimum=0,
        maximum=MAX_TTL_S,
        meaning="a pair that failed to price is not retried for this long",
    )
    prewarm: bool = key(True, meaning="load open trades' rates at start-up in one batched call")
    prewarm_whitelist: bool = key(False, meaning="also pre-warm and refresh the whitelist")
    refresh_interval: float = key(
        60,
        minimum=0,
        maximum=MAX_PERIOD_S,
        meaning="background batched refresh period; 0 = off",
    )
    trading_batch: bool = key(
        True,
        meaning="price each bot iteration's trading reads (`refresh=True`: exits, entries, "
        "order replacement) from one batched call fetched at the iteration's start; false = "
        "stock's one call per pair",
    )
    trading_max_age: float = key(
        2.0,
        exclusive_minimum=0,
        maximum=MAX_TRADING_AGE_S,
        meaning="the oldest exchange data a trading decision may use, from the batch's arrival; "
        "older data falls back to stock's per-pair fetch. 2 s: longer than one batch round trip "
        "plus a light strategy's analysis, shorter than the default `process_throttle_secs` "
        "(5 s), so an iteration never decides on the previous iteration's prices",
    )
    stream: bool = key(
        False,
        meaning="serve trading reads from the exchange's websocket book tickers (ccxt.pro, its "
        "own connection) while younger than `trading_max_age`, the REST batch as fallback; "
        "needs `trading_batch` and `exchange.enable_ws` (off: no stream). Off by default: one "
        "more websocket connection per bot",
    )


@dataclass(frozen=True)
class FiatSettings:
    background_refresh: bool = key(True, meaning="CoinGecko only from a background thread")
    refresh_interval: float = key(
        300,
        minimum=1,
        maximum=MAX_PERIOD_S,
        meaning="period of the batched `simple/price` refresh",
    )
    stale_after: float = key(
        1800,
        exclusive_minimum=0,
        maximum=MAX_STALE_S,
        meaning="age after which a fiat price is reported `stale`",
    )
    coin_list_path: str = key(
        "ratekit/coingecko_coins_list.json",
        min_length=1,
        max_length=MAX_PATH_CHARS,
        pattern="[^\\x00]+",
        allowed="path",
        meaning="coin list kept on disk; relative to `user_data/`",
    )
    coin_list_max_age: float = key(
        7 * 24 * 3600,
        exclusive_minimum=0,
        maximum=MAX_COIN_LIST_AGE_S,
        meaning="reuse the coin list on disk up to this age",
    )
    coingecko_url: str | None = key(
        None,
        max_length=MAX_URL_CHARS,
        pattern="https?://[!-~]+",
        allowed="http(s) URL or `null`",
        url=True,
        meaning="CoinGecko base URL (proxy, mirror, emulator); `null` picks the public API, or "
        "the Pro API when `coingecko.api_key` is set with `is_demo: false`",
    )
    timeout: float = key(
        10,
        exclusive_minimum=0,
        maximum=120,
        meaning="HTTP timeout of the background fiat refresh",
    )

    def resolved_coin_list_path(self, user_data_dir: str | Path | None) -> Path:
        """Relative paths live under the bot's user_data directory, like Freqtrade's own files."""
        path = Path(self.coin_list_path).expanduser()
        if path.is_absolute() or user_data_dir is None:
            return path
        return Path(user_data_dir) / path


@dataclass(frozen=True)
class WeightSettings:
    mode: str = key(
        "observe",
        enum=("off", "observe", "enforce"),
        meaning="`observe` counts and reports; `enforce` also makes a call wait before it would "
        "pass `headroom \N{MULTIPLICATION SIGN} limit`",
    )
    headroom: float = key(
        0.8,
        exclusive_minimum=0,
        maximum=1,
        meaning="fraction of each published limit to use",
    )
    preset: str = key(
        "auto",
        min_length=1,
        max_length=64,
        allowed=", ".join(f"`{name}`" for name in ("auto", *preset_names())),
        meaning="weight tables and limits; `auto` picks by exchange id",
    )
    pools: Mapping[str, Mapping[str, Any]] = key(
        {},
        schema=_POOL_SCHEMA,
        allowed=f"`{{NAME: {{limit, interval, scope}}}}`: `limit` int 1{_TO}"
        f"{_show_number(MAX_POOL_LIMIT)}, `interval` > 0, ≤ {_show_number(MAX_POOL_INTERVAL_S)}",
        meaning="override or add pools (`scope`: `ip` \\| `account`); NAME is a pool of the "
        "preset, or one a `weights.endpoints` entry charges",
    )
    endpoints: Mapping[str, Mapping[str, Any]] = key(
        {},
        schema=_ENDPOINT_SCHEMA,
        allowed=f"`{{PATH: {{weight, pools}}}}`: `weight` 0{_TO}"
        f"{_show_number(MAX_ENDPOINT_WEIGHT)}, `pools` named in the preset or `weights.pools`",
        meaning="override an endpoint's weight or pools",
    )
    backend: str = key(
        "memory",
        min_length=1,
        max_length=MAX_URL_CHARS,
        allowed="`memory` or a `redis://…`, `rediss://…`, `unix://…` URL redis-py accepts",
        url=True,
        meaning="`redis://` shares one budget between bots",
    )
    scope_id: str = key(
        "default",
        pattern="[A-Za-z0-9_.:-]{1,64}",
        meaning="bots with the same scope share a budget (one per host/IP)",
    )
    expected_bots: int = key(
        3,
        minimum=1,
        maximum=1000,
        meaning="with Redis unreachable, each bot uses `limit / expected_bots`",
    )
    redis_timeout: float = key(
        0.25,
        exclusive_minimum=0,
        maximum=5,
        meaning="socket timeout of Redis calls before falling back to the local share",
    )
    reserve: float = key(
        0.5,
        minimum=0,
        maximum=MAX_RESERVE,
        meaning="share of each pool (of `headroom \N{MULTIPLICATION SIGN} limit`) that only live "
        "bots may use: non-bot commands (`download-data`, `list-markets`, `webserver`, "
        "backtesting's market load, ...) run at the lowest priority and are admitted only while "
        "the pool holds less than `(1 \N{MINUS SIGN} reserve) \N{MULTIPLICATION SIGN} headroom "
        "\N{MULTIPLICATION SIGN} limit`; bot calls may use all of it. 0.5: with the default "
        "headroom a download gets at most 2400 of Binance's 6000 weight/min and the bots of the "
        "scope always keep 2400, two busy bots' worth (~1200/min each)",
    )

    @property
    def uses_redis(self) -> bool:
        return self.backend != "memory"


@dataclass(frozen=True)
class ReaderSettings:
    snapshot: bool = key(
        True,
        meaning="serve `/profit` (REST and Telegram) from a snapshot recomputed in the background",
    )
    max_age: float = key(
        5,
        exclusive_minimum=0,
        maximum=MAX_READER_AGE_S,
        meaning="recompute the snapshot at least this often while it is read; a committed "
        "trade change recomputes it at once",
    )


@dataclass(frozen=True)
class ApiSettings:
    enabled: bool = key(True, meaning="expose the ratekit REST routes on Freqtrade's API server")


@dataclass(frozen=True)
class RatekitSettings:
    enabled: bool = key(False, meaning="switch ratekit on for this bot")
    rate_cache: RateCacheSettings = field(default_factory=RateCacheSettings)
    fiat: FiatSettings = field(default_factory=FiatSettings)
    weights: WeightSettings = field(default_factory=WeightSettings)
    readers: ReaderSettings = field(default_factory=ReaderSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def api_enabled(self) -> bool:
        return self.api.enabled

    def effective(self) -> dict[str, Any]:
        """The merged section as a plain dict, secrets masked: safe to print or serve."""
        return mask_secrets(copy.deepcopy(dict(self.raw)))


@dataclass(frozen=True)
class _Group:
    """A settings class resolved against its annotations: its keys and nested objects."""

    cls: type
    children: tuple[tuple[str, Key | _Group], ...]


def _tree(cls: type, prefix: tuple[str, ...] = ()) -> _Group:
    """The section a settings class declares: a `key(...)` field is a key, a field annotated
    with a settings class a nested object; other fields (`raw`) are not part of the section."""
    hints = get_type_hints(cls)
    children: list[tuple[str, Key | _Group]] = []
    for item in dataclasses.fields(cls):
        hint, path = hints[item.name], (*prefix, item.name)
        if _DECLARATION in item.metadata:
            children.append((item.name, _resolve(path, hint, item.metadata[_DECLARATION])))
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            children.append((item.name, _tree(hint, path)))
    return _Group(cls, tuple(children))


def _object_schema(group: _Group) -> dict[str, Any]:
    properties = {
        name: copy.deepcopy(dict(item.schema)) if isinstance(item, Key) else _object_schema(item)
        for name, item in group.children
    }
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _defaults(group: _Group) -> dict[str, Any]:
    return {
        name: copy.deepcopy(item.default) if isinstance(item, Key) else _defaults(item)
        for name, item in group.children
    }


def _keys(group: _Group) -> Iterator[Key]:
    for _, item in group.children:
        yield from [item] if isinstance(item, Key) else _keys(item)


def _build(group: _Group, values: dict[str, Any]) -> Any:
    """The settings object of a merged, validated (sub)section."""
    kwargs: dict[str, Any] = {}
    for name, item in group.children:
        if isinstance(item, Key):
            if item.python_type is int:  # JSON Schema's "integer" admits 5.0: make it an int,
                values[name] = int(values[name])  # in the effective settings too
            kwargs[name] = values[name]
        else:
            kwargs[name] = _build(item, values[name])
    return group.cls(**kwargs)


_TREE = _tree(RatekitSettings)
KEYS: tuple[Key, ...] = tuple(_keys(_TREE))  # every key of the section, in declaration order
RATEKIT_SCHEMA: dict[str, Any] = _object_schema(_TREE)
DEFAULTS: dict[str, Any] = _defaults(_TREE)

_REDIS_SCHEMES = ("redis", "rediss", "unix")
# Keys whose value is a URL that may carry credentials: masked wherever a value is shown.
_URL_KEYS = tuple(item.path for item in KEYS if item.url)


class RatekitConfigError(ValueError):
    """The `ratekit` section is invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = [f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        super().__init__("Invalid 'ratekit' configuration:\n" + "\n".join(shown))


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
    if cache["stream"] and not cache["trading_batch"]:
        problems.append(
            "ratekit.rate_cache.stream = true: needs rate_cache.trading_batch = true (the "
            "stream serves the trading batch's reads, and the REST batch is its fallback)"
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
    settings: RatekitSettings = _build(_TREE, merged)
    return dataclasses.replace(settings, raw=merged)


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


# --- the configuration reference (docs/configuration.md) ---------------------------------

REFERENCE_BEGIN = (
    "<!-- generated from freqtrade_ratekit/config.py: edit the declaration there, then run "
    "`python -m freqtrade_ratekit.config --write docs/configuration.md` -->"
)
REFERENCE_END = "<!-- end of generated table -->"

_REFERENCE_INTRO = """\
# Configuration reference

One top-level key, `"ratekit"`. Unknown keys are errors (typos must not be silently ignored);
every error names the key path, the bad value and what is allowed, and stops the bot before it
trades. Times are in seconds. Every number must be finite and within its bounds (Freqtrade's
JSON parser accepts `NaN` and `Infinity`; they are errors here), patterns match the whole
value, and `weights` is checked against the rest of the config: the preset resolved for
`exchange.name` and `trading_mode`, every pool named. `FREQTRADE__RATEKIT__*` environment
variables are merged first, as Freqtrade merges them (it lower-cases their keys, so pool names
can only be overridden in a file). See `user_data/config.json` for a commented example, and
check a config with `freqtrade-ratekit check-config -c config.json`: the bot runs the same
validation when it loads its config.
"""

_REFERENCE_OUTRO = """\
Freqtrade's own `coingecko` section (`api_key`, `is_demo`) keeps working; the key is never
logged or served.
"""


def _show_default(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def reference_table() -> str:
    """The Markdown table of every key (key | default | allowed | meaning), from the
    declaration: docs/configuration.md holds it, and a test keeps the two equal."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    rows += [
        f"| `{item.dotted}` | `{_show_default(item.default)}` | {item.allowed} | {item.meaning} |"
        for item in KEYS
    ]
    return "\n".join(rows) + "\n"


def reference_page() -> str:
    """The whole docs/configuration.md as generated: intro, the marked table, the outro."""
    return f"{_REFERENCE_INTRO}\n{_marked_table()}\n\n{_REFERENCE_OUTRO}"


def _marked_table() -> str:
    # Blank lines around the table: Markdown must not read it as part of the HTML comments.
    return f"{REFERENCE_BEGIN}\n\n{reference_table()}\n{REFERENCE_END}"


def documented_table(text: str) -> str | None:
    """The table between the markers of a reference page, or None when a marker is missing."""
    begin, end = text.find(REFERENCE_BEGIN), text.find(REFERENCE_END)
    if begin < 0 or end < begin:
        return None
    return text[begin + len(REFERENCE_BEGIN) : end].strip("\n") + "\n"


def write_reference(path: str | Path) -> bool:
    """Bring the reference page at `path` up to date with the declaration: the marked table is
    replaced, the prose around it kept (a missing page or marker: the whole page is written).
    Returns whether the file changed."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if old is None or documented_table(old) is None:
        new = reference_page()
    else:
        head, _, rest = old.partition(REFERENCE_BEGIN)
        _, _, tail = rest.partition(REFERENCE_END)
        new = f"{head}{_marked_table()}{tail}"
    if new == old:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m freqtrade_ratekit.config`: print the reference table; `--write PATH` updates
    a reference page; `--check PATH` exits 1 when the page's table is not the declaration's."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m freqtrade_ratekit.config")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="PATH", help="update the reference page at PATH")
    action.add_argument("--check", metavar="PATH", help="fail when PATH's table is out of date")
    args = parser.parse_args(argv)
    if args.write:
        changed = write_reference(args.write)
        print(f"{args.write}: {'updated' if changed else 'up to date'}")
        return 0
    if args.check:
        path = Path(args.check)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if documented_table(text) != reference_table():
            print(
                f"{path}: the configuration table differs from freqtrade_ratekit/config.py; "
                f"run python -m freqtrade_ratekit.config --write {path}",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(reference_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
