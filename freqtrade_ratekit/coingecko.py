"""A small, strict CoinGecko client for background use.

Why not pycoingecko: it waits up to 120 s per call, retries on its own, and puts the API key into
the query string (where it ends up in proxy and error logs). Here every call has a short
(connect, read) timeout, no hidden retries (the caller owns backoff), the key travels only in a
header, and every failure becomes one `CoinGeckoError` whose message never holds a secret.

Docs read on 2026-11-21:
- https://docs.coingecko.com/v3.0.1/reference/authentication (demo key: header
  `x-cg-demo-api-key`, root https://api.coingecko.com/api/v3/)
- https://docs.coingecko.com/reference/authentication (pro key: header `x-cg-pro-api-key`,
  root https://pro-api.coingecko.com/api/v3/)
- https://docs.coingecko.com/docs/errors-and-rate-limits (429 on rate limit; 10010/10011 when
  a key is sent to the wrong root URL)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"

# Freqtrade backs off 60 s after a CoinGecko 429 (freqtrade/rpc/fiat_convert.py); we use the
# same figure when the server does not say how long to wait.
DEFAULT_RETRY_AFTER = 60.0
# A connect that takes longer than this will not succeed; keep it shorter than the read timeout.
MAX_CONNECT_TIMEOUT = 3.05


def default_base_url(api_key: str, is_demo: bool) -> str:
    """The root URL pycoingecko would pick: pro only for a non-demo key (demo keys are
    rejected by the pro root with error 10011, and vice versa)."""
    return PRO_BASE_URL if api_key and not is_demo else PUBLIC_BASE_URL


def mask_url(url: str) -> str:
    """The URL without user info, query or fragment, so it can be logged and served."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/")


def parse_retry_after(value: str | None, now: float, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110
    section 10.2.3). Missing or unreadable → `default`; a date in the past → 0."""
    if not value:
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return default
    if not math.isfinite(seconds):
        return default
    return max(0.0, seconds)


class CoinGeckoError(Exception):
    """Any failed CoinGecko call: transport, HTTP status, or a body of the wrong shape."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CoinGeckoRateLimited(CoinGeckoError):
    """HTTP 429. `retry_after` is in seconds, already parsed (default 60 s)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class CoinGeckoClient:
    """Blocking calls to `coins/list` and `simple/price`, meant for one background thread."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str = "",
        is_demo: bool = True,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self._base_url = (base_url or default_base_url(api_key, is_demo)).rstrip("/")
        self._api_key = api_key
        self._timeout = (min(MAX_CONNECT_TIMEOUT, timeout), timeout)
        self._clock = clock
        self._session = session or requests.Session()
        self._headers = {"accept": "application/json"}
        if api_key:
            header = "x-cg-demo-api-key" if is_demo else "x-cg-pro-api-key"
            self._headers[header] = api_key

    @property
    def masked_base_url(self) -> str:
        return mask_url(self._base_url)

    def close(self) -> None:
        self._session.close()

    def coins_list(self) -> list[dict[str, str]]:
        """All coins as `{"id", "symbol", "name"}`; entries without a string id and symbol are
        dropped. Raises CoinGeckoError when the body is not a non-empty list of coins."""
        body = self._get("coins/list", {})
        if not isinstance(body, list):
            raise CoinGeckoError(f"coins/list: expected a list, got {type(body).__name__}")
        coins = valid_coins(body)
        if not coins:
            raise CoinGeckoError("coins/list: no valid entries")
        return coins

    def simple_price(
        self, ids: Sequence[str], vs_currencies: Sequence[str]
    ) -> dict[str, dict[str, float]]:
        """Prices as `{gecko_id: {vs: price}}`, only the numeric ones. Ids or currencies the
        server left out are simply absent; the caller decides what a gap means."""
        params = {"ids": ",".join(ids), "vs_currencies": ",".join(vs_currencies)}
        body = self._get("simple/price", params)
        if not isinstance(body, dict):
            raise CoinGeckoError(f"simple/price: expected an object, got {type(body).__name__}")
        prices: dict[str, dict[str, float]] = {}
        for gecko_id, quotes in body.items():
            if not isinstance(quotes, dict):
                continue
            numeric = {
                str(vs): float(value)
                for vs, value in quotes.items()
                if isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            }
            if numeric:
                prices[str(gecko_id)] = numeric
        return prices

    def _get(self, endpoint: str, params: Mapping[str, str]) -> Any:
        url = f"{self._base_url}/{endpoint}"
        try:
            response = self._session.get(
                url, params=params, headers=self._headers, timeout=self._timeout
            )
        except requests.Timeout as exc:
            raise CoinGeckoError(
                f"{endpoint}: {type(exc).__name__} after {self._timeout[1]:g}s"
            ) from None
        except requests.RequestException as exc:
            # str(exc) names the URL; keep only the class so nothing secret can leak.
            raise CoinGeckoError(f"{endpoint}: {type(exc).__name__}") from None
        with response:
            if response.status_code == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
                raise CoinGeckoRateLimited(
                    f"{endpoint}: HTTP 429, retry after {retry_after:g}s", retry_after=retry_after
                )
            if response.status_code != 200:
                raise CoinGeckoError(
                    f"{endpoint}: HTTP {response.status_code}{self._error_detail(response)}",
                    status=response.status_code,
                )
            try:
                return response.json()
            except ValueError as exc:
                raise CoinGeckoError(f"{endpoint}: malformed JSON ({exc})") from None

    def _error_detail(self, response: requests.Response) -> str:
        """CoinGecko's own error message (`{"status": {"error_message": ...}}`), redacted."""
        try:
            message = response.json()["status"]["error_message"]
        except (ValueError, KeyError, TypeError):
            return ""
        text = str(message)[:200]
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return f" ({text})"


def valid_coins(entries: list[Any]) -> list[dict[str, str]]:
    """Keep the entries that have string `id` and `symbol` (and a string `name`, or "")."""
    coins = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        gecko_id, symbol, name = entry.get("id"), entry.get("symbol"), entry.get("name", "")
        if isinstance(gecko_id, str) and gecko_id and isinstance(symbol, str):
            coins.append({"id": gecko_id, "symbol": symbol, "name": str(name)})
    return coins
