"""Usage headers of exchange responses, turned into readings the ledger can merge.

Formats (each exchange's documented header names, see the preset modules for the sources):
- "binance": X-MBX-USED-WEIGHT-<n><S|M|H|D> (weight used by the IP in that interval) and
  X-MBX-ORDER-COUNT-<n><S|M|H|D> (orders placed by the account in that interval).
- "gate": X-Gate-RateLimit-Requests-Remain / -Limit / -Reset-Timestamp (per endpoint).
- "bybit": X-Bapi-Limit (the endpoint's limit for this UID), X-Bapi-Limit-Status (remaining),
  X-Bapi-Limit-Reset-Timestamp (epoch ms); over the limit Bybit answers HTTP 200 with
  retCode 10006.
- "kucoin": gw-ratelimit-limit (the resource pool's quota), gw-ratelimit-remaining,
  gw-ratelimit-reset (countdown in ms); over the quota HTTP 429 with code 429000.
- "ratelimit": the common X-RateLimit-Limit / -Remaining / -Reset (per endpoint).
- "okx", "bitfinex", "kraken", "hyperliquid", "bitget", "htx", "bitmart", "bingx": no usage
  header is read yet; only status codes, rate-limit bodies and Retry-After count.
Every format also understands the generic X-RateLimit-* headers when present.

Hostile values: a figure that is not a finite number (NaN, inf, an overflow such as
`limit - remaining` of two huge values) gives no reading. Retry-After is read by the package's
one parser, `workers.parse_retry_after`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

_INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GENERIC = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
HEADERS_READ: dict[str, tuple[str, ...]] = {
    "binance": ("X-MBX-USED-WEIGHT-*", "X-MBX-ORDER-COUNT-*"),
    "gate": (
        "X-Gate-RateLimit-Limit",
        "X-Gate-RateLimit-Requests-Remain",
        "X-Gate-RateLimit-Reset-Timestamp",
    ),
    "bybit": ("X-Bapi-Limit", "X-Bapi-Limit-Status", "X-Bapi-Limit-Reset-Timestamp"),
    "kucoin": ("gw-ratelimit-limit", "gw-ratelimit-remaining", "gw-ratelimit-reset"),
}
"""The usage headers each format reads besides the generic X-RateLimit-* ones (for listings)."""
_RATE_LIMIT_BODIES = {
    "kucoin": ("code", "429000"),
    "bybit": ("retCode", "10006"),
    # OKX's public error table lists 50011 "Too Many Requests" with HTTP 429 and with HTTP 200
    # (https://www.okx.com/docs-v5/en/#error-code-rest-public, read 2026-12-02 via the mirror
    # cited in presets/okx.py)
    "okx": ("code", "50011"),
}
_MAX_ERROR_BODY = 2048  # a rate-limit answer is a short JSON object; market data is not read


def headers_read(header_format: str) -> tuple[str, ...]:
    """The usage headers `parse_usage` reads for `header_format`, generic ones last."""
    return (*HEADERS_READ.get(header_format, ()), *_GENERIC)


_BINANCE_HEADER = re.compile(r"^x-mbx-(used-weight|order-count)-(\d+)([smhd])$")


@dataclass(frozen=True)
class UsageReading:
    """What the exchange says about one limit.

    `kind` is "weight", "orders" or "requests"; `interval_s` None means "the endpoint's own
    window" (Gate, X-RateLimit-*). `reset_at` is a unix timestamp when known.
    """

    kind: str
    interval_s: float | None
    used: float
    limit: float | None = None
    remaining: float | None = None
    reset_at: float | None = None


def parse_usage(
    header_format: str, headers: Mapping[str, str] | None, now: float
) -> list[UsageReading]:
    """All usage readings in `headers` for `header_format`; unparsable values are skipped.

    Runs on every response: Binance's headers are picked in one pass over the lower-cased
    names; the dict of X- headers the other formats look up is built only when needed."""
    if not headers:
        return []
    if header_format == "binance":
        readings = _binance(_lower_items(headers))
        if readings:
            return readings
    lowered = {
        name: str(value) for name, value in _lower_items(headers) if name[:2] in ("x-", "gw")
    }
    if header_format == "bybit":
        readings = _remaining_style(
            lowered,
            limit="x-bapi-limit",
            remaining="x-bapi-limit-status",
            reset="x-bapi-limit-reset-timestamp",
            now=now,
        )
        if readings:
            return readings
    if header_format == "kucoin":
        readings = _remaining_style(
            lowered,
            limit="gw-ratelimit-limit",
            remaining="gw-ratelimit-remaining",
            reset="gw-ratelimit-reset",
            now=now,
            reset_in_ms=True,
        )
        if readings:
            return readings
    if header_format == "gate":
        readings = _remaining_style(
            lowered,
            limit="x-gate-ratelimit-limit",
            remaining="x-gate-ratelimit-requests-remain",
            reset="x-gate-ratelimit-reset-timestamp",
            now=now,
        )
        if readings:
            return readings
    return _remaining_style(
        lowered,
        limit="x-ratelimit-limit",
        remaining="x-ratelimit-remaining",
        reset="x-ratelimit-reset",
        now=now,
    )


def _lower_items(headers: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """(lower-cased name, value) pairs. requests' CaseInsensitiveDict (ccxt's sync client)
    already stores the lower-cased names: `lower_items()` is twice as fast as `items()`."""
    lower_items = getattr(headers, "lower_items", None)
    if callable(lower_items):
        return cast("Iterable[tuple[str, str]]", lower_items())
    return ((str(name).lower(), value) for name, value in headers.items())


def _binance(headers: Iterable[tuple[str, str]]) -> list[UsageReading]:
    readings = []
    for name, value in headers:
        if not name.startswith("x-mbx-"):
            continue
        match = _BINANCE_HEADER.match(name)
        if match is None:
            continue
        used = _header_float(value)
        if used is None:
            continue
        kind = "weight" if match.group(1) == "used-weight" else "orders"
        interval = int(match.group(2)) * _INTERVAL_SECONDS[match.group(3)]
        readings.append(UsageReading(kind, float(interval), used))
    return readings


def _remaining_style(
    headers: Mapping[str, str],
    *,
    limit: str,
    remaining: str,
    reset: str,
    now: float,
    reset_in_ms: bool = False,
) -> list[UsageReading]:
    """One reading from limit/remaining/reset headers. `reset_in_ms`: the reset is a countdown
    in milliseconds (KuCoin's gw-ratelimit-reset: 1489 is 1.489 s, not 1489 s)."""
    limit_value = _header_float(headers.get(limit))
    remaining_value = _header_float(headers.get(remaining))
    if limit_value is None or remaining_value is None:
        return []
    used = limit_value - remaining_value
    if not math.isfinite(used):  # two huge figures: no usable reading
        return []
    return [
        UsageReading(
            "requests",
            None,
            max(0.0, used),
            limit=limit_value,
            remaining=remaining_value,
            reset_at=_countdown_ms(headers.get(reset), now)
            if reset_in_ms
            else _reset_timestamp(headers.get(reset), now),
        )
    ]


def _countdown_ms(value: str | None, now: float) -> float | None:
    number = _header_float(value)
    if number is None or number < 0:
        return None
    moment = now + number / 1000.0
    return moment if math.isfinite(moment) else None


def body_says_rate_limited(header_format: str, body: object) -> bool:
    """Whether a response body is the exchange's rate-limit answer whatever its HTTP status:
    Bybit's retCode 10006 (sent with HTTP 200), KuCoin's code 429000, OKX's code 50011. Only
    short bodies are
    parsed, and only when they contain the code."""
    marker = _RATE_LIMIT_BODIES.get(header_format)
    if marker is None or not isinstance(body, str) or len(body) > _MAX_ERROR_BODY:
        return False
    key, code = marker
    if code not in body:
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and str(document.get(key)) == code


def _reset_timestamp(value: str | None, now: float) -> float | None:
    """Reset as a unix timestamp: epoch seconds/milliseconds, or seconds from now."""
    number = _header_float(value)
    if number is None:
        return None
    if number > 1e11:  # epoch milliseconds
        return number / 1000.0
    if number > 1e9:  # epoch seconds
        return number
    moment = now + number
    return moment if math.isfinite(moment) else None


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts and CaseInsensitiveDicts."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def _header_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None
