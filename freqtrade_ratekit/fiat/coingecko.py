"""A small, strict CoinGecko client for background use.

Why not pycoingecko: it waits up to 120 s per call, retries on its own, and puts the API key into
the query string (where it ends up in proxy and error logs). Here every call has a total
deadline (not only a timeout per read: a server that sends a byte a second is cut off when the
deadline passes), a bounded body, no hidden retries (the caller owns backoff), the key travels
only in a header (an `x_cg_*_api_key` written into the base URL's query is moved there), and
every failure becomes one `CoinGeckoError` whose message never holds a secret.

Docs read on 2026-11-21:
- https://docs.coingecko.com/v3.0.1/reference/authentication (demo key: header
  `x-cg-demo-api-key`, root https://api.coingecko.com/api/v3/)
- https://docs.coingecko.com/reference/authentication (pro key: header `x-cg-pro-api-key`,
  root https://pro-api.coingecko.com/api/v3/)
- https://docs.coingecko.com/docs/errors-and-rate-limits (429 on rate limit; 10010/10011 when
  a key is sent to the wrong root URL)
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from freqtrade_ratekit.fiat.coin_list import valid_coins
from freqtrade_ratekit.redact import cut, mask_url, scrub, secret_forms, url_secrets
from freqtrade_ratekit.workers import parse_retry_after

PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"

# Freqtrade backs off 60 s after a CoinGecko 429 (freqtrade/rpc/fiat_convert.py); we use the
# same figure when the server does not say how long to wait.
DEFAULT_RETRY_AFTER = 60.0
# A connect that takes longer than this will not succeed; keep it shorter than the read timeout.
MAX_CONNECT_TIMEOUT = 3.05
# The largest body accepted: coins/list is ~17k entries, about 1.5 MB (2026-11); a body 20
# times that is not a coin list.
MAX_BODY_BYTES = 32 * 1024 * 1024
# Of an error answer, only this much is read (for CoinGecko's own error message).
MAX_ERROR_BODY_BYTES = 64 * 1024
READ_CHUNK_BYTES = 64 * 1024
# Query parameters CoinGecko reads an API key from, and the header each one moves to.
QUERY_KEY_HEADERS = {
    "x_cg_demo_api_key": "x-cg-demo-api-key",
    "x_cg_pro_api_key": "x-cg-pro-api-key",
}


def default_base_url(api_key: str, is_demo: bool) -> str:
    """The root URL pycoingecko would pick: pro only for a non-demo key (demo keys are
    rejected by the pro root with error 10011, and vice versa)."""
    return PRO_BASE_URL if api_key and not is_demo else PUBLIC_BASE_URL


class CoinGeckoError(Exception):
    """Any failed CoinGecko call: transport, HTTP status, or a body of the wrong shape."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CoinGeckoRateLimited(CoinGeckoError):
    """HTTP 429. `retry_after` is in seconds, already parsed (default 60 s, at most 3 days)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


# ---------------------------------------------------------------------- total deadline
#
# requests/urllib3 timeouts bound each socket operation, not a call. A call's total deadline is
# kept by a timer that, when it fires, shuts down the sockets of the connections the call used:
# a read blocked on a trickling server then returns at once, whether it is reading the status
# line, the headers or the body. The connections register themselves (the classes below) with
# the deadline active on their thread; `shutdown()` rather than `close()`, so no file
# descriptor is freed under the reading thread.

_active = threading.local()


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.name = "ratekit-coingecko-deadline"

    def __enter__(self) -> _Deadline:
        _active.deadline = self
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _active.deadline = None
        self._timer.cancel()
        with self._lock:
            self._done = True
            self._connections.clear()

    @property
    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.expires_at

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            if self._done:
                return
            self._connections.append(connection)
            if self.expired:
                _cut(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for connection in self._connections:
                _cut(connection)


def _cut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with suppress(OSError):
            # The plain socket's shutdown, also for an SSLSocket: its own shutdown() would
            # unwrap TLS under the thread that is reading.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watch_current(connection: HTTPConnection) -> None:
    deadline = getattr(_active, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_current(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_current(self)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _watch_pools(manager: PoolManager) -> None:
    """Make `manager` build watched connections. A manager with pools of its own kind (SOCKS)
    is left alone: its calls still end at the deadline between reads."""
    classes = manager.pool_classes_by_scheme
    if classes.get("http") is HTTPConnectionPool and classes.get("https") is HTTPSConnectionPool:
        manager.pool_classes_by_scheme = {
            **classes,
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter (no retries), with connections that obey a call's total deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watch_pools(manager)
        return manager


# ---------------------------------------------------------------------- the client


class CoinGeckoClient:
    """Blocking calls to `coins/list` and `simple/price`, meant for one background thread.

    `timeout` bounds each call as a whole (connect, headers and body), not only each read.
    A base URL may carry user info (sent as basic auth, for a proxy), query parameters (sent on
    every call) and an `x_cg_demo_api_key` / `x_cg_pro_api_key` parameter, which is sent as
    the matching header instead (an `api_key` given here wins over it).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str = "",
        is_demo: bool = True,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        configured = base_url or default_base_url(api_key, is_demo)
        try:
            parts = urlsplit(configured)
            query = parse_qsl(parts.query, keep_blank_values=True)
            username, password = parts.username, parts.password
            _ = parts.port  # ValueError for a port that is not a number
        except ValueError:
            raise ValueError(f"not a valid CoinGecko base URL: {mask_url(configured)}") from None
        path = parts.path.rstrip("/")
        self._url_root = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        self._masked_base_url = mask_url(
            urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
        )
        self._headers = {"accept": "application/json"}
        secrets = url_secrets(configured)
        if api_key:
            header = "x-cg-demo-api-key" if is_demo else "x-cg-pro-api-key"
            self._headers[header] = api_key
            secrets.add(api_key)
        self._base_query: list[tuple[str, str]] = []
        for name, value in query:
            key_header = QUERY_KEY_HEADERS.get(name.lower())
            if key_header is None:
                self._base_query.append((name, value))
            elif value and not api_key:
                self._headers.setdefault(key_header, value)
        if password:  # requests sends URL credentials as basic auth: that token is one too
            user = unquote(username or "")
            basic = base64.b64encode(f"{user}:{unquote(password)}".encode("latin-1", "replace"))
            secrets.add(basic.decode("ascii"))
        self._secret_forms = secret_forms(secrets)
        self._timeout = (min(MAX_CONNECT_TIMEOUT, timeout), timeout)
        self._deadline_s = float(timeout)
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self._session = session or requests.Session()
        adapter = _DeadlineAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    @property
    def masked_base_url(self) -> str:
        return self._masked_base_url

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
        """Prices as `{gecko_id: {vs: price}}`, only the finite, non-negative numbers. Ids or
        currencies the server left out are simply absent; the caller decides what a gap
        means."""
        params = {"ids": ",".join(ids), "vs_currencies": ",".join(vs_currencies)}
        body = self._get("simple/price", params)
        if not isinstance(body, dict):
            raise CoinGeckoError(f"simple/price: expected an object, got {type(body).__name__}")
        prices: dict[str, dict[str, float]] = {}
        for gecko_id, quotes in body.items():
            if not isinstance(quotes, dict):
                continue
            numeric = {vs: float(value) for vs, value in quotes.items() if is_price(value)}
            if numeric:
                prices[gecko_id] = numeric
        return prices

    def _get(self, endpoint: str, params: Mapping[str, str]) -> Any:
        url = f"{self._url_root}/{endpoint}"
        query = [*self._base_query, *params.items()]
        with _Deadline(self._deadline_s) as deadline:
            try:
                response = self._session.get(
                    url, params=query, headers=self._headers, timeout=self._timeout, stream=True
                )
            except (requests.RequestException, http.client.HTTPException, OSError) as exc:
                raise self._transport_error(endpoint, exc, deadline) from None
            with response:
                status = response.status_code
                if status == 429:
                    parsed = parse_retry_after(response.headers.get("Retry-After"), self._clock())
                    retry_after = DEFAULT_RETRY_AFTER if parsed is None else parsed
                    raise CoinGeckoRateLimited(
                        f"{endpoint}: HTTP 429, retry after {retry_after:g}s",
                        retry_after=retry_after,
                    )
                if status != 200:
                    raw = self._read(endpoint, response, deadline, MAX_ERROR_BODY_BYTES, cut=True)
                    raise CoinGeckoError(
                        f"{endpoint}: HTTP {status}{self._error_detail(raw)}", status=status
                    )
                raw = self._read(endpoint, response, deadline, self._max_body_bytes)
        try:
            return json.loads(raw)
        except RecursionError:
            raise CoinGeckoError(f"{endpoint}: malformed JSON (nested too deeply)") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise CoinGeckoError(f"{endpoint}: malformed JSON ({cut(str(exc))})") from None

    def _read(
        self,
        endpoint: str,
        response: requests.Response,
        deadline: _Deadline,
        limit: int,
        *,
        cut: bool = False,
    ) -> bytes:
        """The body, read in chunks until it ends, `limit` bytes (CoinGeckoError, or with
        `cut` the first `limit` bytes) or the deadline (CoinGeckoError)."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=READ_CHUNK_BYTES):
                if deadline.passed:
                    raise self._deadline_error(endpoint)
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    if cut:
                        break
                    raise CoinGeckoError(f"{endpoint}: body larger than {limit} bytes")
        except (requests.RequestException, http.client.HTTPException, OSError) as exc:
            raise self._transport_error(endpoint, exc, deadline) from None
        if deadline.expired:  # the cut socket may have looked like the end of the body
            raise self._deadline_error(endpoint)
        body = b"".join(chunks)
        return body[:limit] if cut else body

    def _deadline_error(self, endpoint: str) -> CoinGeckoError:
        return CoinGeckoError(
            f"{endpoint}: Timeout, no complete answer within the {self._deadline_s:g}s deadline"
        )

    def _transport_error(
        self, endpoint: str, exc: BaseException, deadline: _Deadline
    ) -> CoinGeckoError:
        # str(exc) names the URL; keep only the class so nothing secret can leak.
        if deadline.expired:
            return self._deadline_error(endpoint)
        if isinstance(exc, requests.Timeout):
            return CoinGeckoError(f"{endpoint}: {type(exc).__name__} after {self._timeout[1]:g}s")
        return CoinGeckoError(f"{endpoint}: {type(exc).__name__}")

    def _error_detail(self, raw: bytes) -> str:
        """CoinGecko's own error message (`{"status": {"error_message": ...}}`), redacted."""
        try:
            message = json.loads(raw)["status"]["error_message"]
        except (ValueError, RecursionError, KeyError, TypeError, IndexError):
            return ""
        if not isinstance(message, str):
            return ""
        return f" ({cut(self.redact(message))})"

    def redact(self, text: str) -> str:
        """`text` with every secret this client knows (API keys, URL credentials, secret query
        values, also percent-encoded) replaced by `***`."""
        return scrub(text, self._secret_forms)


def is_price(value: Any) -> bool:
    """A JSON number that can be a price: finite and not negative (bools are not numbers)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
