"""Charge every ccxt REST call of one exchange instance to a ledger.

Instance-level wrapping (the class and other instances are untouched):
- `fetch2(path, api, method, params, config)` knows the endpoint; the wrapper asks ccxt's own
  `calculate_rate_limiter_cost` for the call's cost, turns it into a `Charge` and keeps it in a
  context variable (per thread and per asyncio task) for the duration of the call.
- `fetch(url, method, headers, body)` is called once per HTTP attempt (also for ccxt's
  `maxRetriesOnFailure` retries); the wrapper acquires the charge just before the request is
  sent (sync: `Ledger.acquire`; async: `await Ledger.acquire_async`). A `fetch` called without
  `fetch2` is charged as endpoint ("", METHOD, url path) with cost 1.
- `on_rest_response(code, reason, url, method, headers, body, ...)` is ccxt's hook that sees
  the status and headers of every HTTP response, error statuses included, before
  `handle_errors` / `handle_http_status_code` raise. The wrapper feeds them to
  `Ledger.on_response` and returns ccxt's own result, so the caller sees exactly the exceptions
  it would see without ratekit (DDosProtection / RateLimitExceeded for 418/429 on Binance):
  Freqtrade's retrier keeps working.
- Ratekit's own failures never reach ccxt's caller: if pricing a call, admitting it or
  accounting its response raises, the call is sent (or answered) as stock would, and the
  failure is logged: once with its traceback, then one line a minute at most per kind of
  failure with how many were left out (a broken backend must not bury the log under one
  traceback per call). KeyboardInterrupt, SystemExit and asyncio cancellation are not failures
  of ratekit and go through unchanged.
- ccxt's own throttle: in enforce mode `throttle` becomes a no-op on the instance, because the
  ledger already spaces the calls by the exchange's real budget and ccxt's leaky bucket would
  charge a second time. In observe/off mode ccxt's throttle stays as it is.

ccxt.pro: the pro classes subclass `ccxt.async_support` classes; their WebSocket traffic
(`watch_*`) goes through `client.send`, not `fetch`, and is not REST weight, so it is not
charged. REST fallbacks of pro methods (`load_markets`, `fetch_*`, Binance's listenKey
`userDataStream` calls) go through `fetch2` and are charged like any async call.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from freqtrade_ratekit.weights.ledger import Charge, Ledger, Mode

logger = logging.getLogger(__name__)

_WRAPPED = ("fetch2", "fetch", "on_rest_response", "throttle")
_MISSING = object()
_current_charge: contextvars.ContextVar[Charge | None] = contextvars.ContextVar(
    "ratekit_current_charge", default=None
)
FAILURE_LOG_INTERVAL_S = 60.0


class _FailureLog:
    """Logs ratekit failures inside ccxt calls without flooding: the first of each kind (what
    failed, exception type) with its traceback, then at most one line per interval."""

    def __init__(self, interval_s: float = FAILURE_LOG_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # kind -> (logged at, left out)

    def failed(self, what: str, endpoint: str, exc: Exception) -> None:
        kind = (what, type(exc).__name__)
        now = time.monotonic()
        with self._lock:
            previous = self._seen.get(kind)
            if previous is not None and now - previous[0] < self._interval_s:
                self._seen[kind] = (previous[0], previous[1] + 1)
                return
            self._seen[kind] = (now, 0)
        if previous is None:
            logger.error(
                "ratekit: %s failed for %s; the call goes ahead as without ratekit",
                what,
                endpoint,
                exc_info=exc,
            )
        else:
            logger.error(
                "ratekit: %s failed for %s (%s: %s); %d more such failures in the last %.0fs",
                what,
                endpoint,
                type(exc).__name__,
                exc,
                previous[1],
                now - previous[0],
            )


def api_family(api: Any) -> str:
    """ccxt passes `api` as a list (["public"], ["public", "spot"]) or a plain string."""
    if isinstance(api, (list, tuple)):
        return "/".join(map(str, api))
    return str(api)


@dataclass
class Instrumentation:
    """Handle returned by `instrument`; `uninstrument()` puts the instance back as it was."""

    api: Any
    ledger: Ledger
    saved: dict[str, Any] = field(default_factory=dict)
    active: bool = True

    def uninstrument(self) -> None:
        if not self.active:
            return
        for name, value in self.saved.items():
            if value is _MISSING:
                self.api.__dict__.pop(name, None)
            else:
                self.api.__dict__[name] = value
        self.api.__dict__.pop("_ratekit_instrumentation", None)
        self.active = False


def instrument(api: Any, ledger: Ledger) -> Instrumentation:
    """Wrap `api` (sync, async_support or pro ccxt instance) so its REST calls go through
    `ledger`. Instrumenting an instrumented instance returns the existing handle."""
    existing = api.__dict__.get("_ratekit_instrumentation")
    if isinstance(existing, Instrumentation) and existing.active:
        return existing
    handle = Instrumentation(api, ledger)
    failures = _FailureLog()
    for name in _WRAPPED:
        handle.saved[name] = api.__dict__.get(name, _MISSING)
    is_async = inspect.iscoroutinefunction(api.fetch)
    original_fetch2 = api.fetch2
    original_fetch = api.fetch
    original_on_rest_response = api.on_rest_response

    def charge_of(path: str, api_spec: Any, method: str, params: Any, config: Any) -> Charge | None:
        try:
            cost = float(api.calculate_rate_limiter_cost(api_spec, method, path, params, config))
        except Exception:  # odd params (a string limit): fall back to the table's base cost
            try:
                cost = float(config.get("cost", 1)) if isinstance(config, dict) else 1.0
            except Exception:
                cost = 1.0
        try:
            return ledger.charge_for(api_family(api_spec), method, path, params, cost)
        except Exception as exc:
            failures.failed("pricing a call", f"{method} {path}", exc)
            return None

    def direct_charge(url: str, method: str) -> Charge | None:
        try:
            return ledger.charge_for("", method, urlsplit(str(url)).path.lstrip("/"), {}, 1.0)
        except Exception as exc:
            failures.failed("pricing a call", f"{method} {url}", exc)
            return None

    def on_rest_response(
        code: Any,
        reason: Any,
        url: Any,
        method: Any,
        response_headers: Any,
        response_body: Any,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        charge = _current_charge.get()
        if charge is not None:
            try:
                ledger.on_response(charge, _status(code), response_headers, response_body)
            except Exception as exc:
                failures.failed("accounting a response", charge.endpoint, exc)
        return original_on_rest_response(
            code,
            reason,
            url,
            method,
            response_headers,
            response_body,
            request_headers,
            request_body,
        )

    if is_async:

        async def fetch2_async(
            path: str,
            api_spec: Any = "public",
            method: str = "GET",
            params: Any = None,
            config: Any = None,
        ) -> Any:
            params = {} if params is None else params
            config = {} if config is None else config
            token = _current_charge.set(charge_of(path, api_spec, method, params, config))
            try:
                return await original_fetch2(path, api_spec, method, params, config)
            finally:
                _current_charge.reset(token)

        async def fetch_async(
            url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            charge = _current_charge.get() or direct_charge(url, method)
            token = _current_charge.set(charge)
            try:
                if charge is not None:
                    await _acquire_async(ledger, charge, failures)
                return await original_fetch(url, method, headers, body)
            finally:
                _current_charge.reset(token)

        async def throttle_noop(cost: Any = None) -> None:
            return None

        wrappers: dict[str, Callable[..., Any]] = {
            "fetch2": fetch2_async,
            "fetch": fetch_async,
            "throttle": throttle_noop,
        }
    else:

        def fetch2_sync(
            path: str,
            api_spec: Any = "public",
            method: str = "GET",
            params: Any = None,
            config: Any = None,
        ) -> Any:
            params = {} if params is None else params
            config = {} if config is None else config
            token = _current_charge.set(charge_of(path, api_spec, method, params, config))
            try:
                return original_fetch2(path, api_spec, method, params, config)
            finally:
                _current_charge.reset(token)

        def fetch_sync(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            charge = _current_charge.get() or direct_charge(url, method)
            token = _current_charge.set(charge)
            try:
                if charge is not None:
                    _acquire(ledger, charge, failures)
                return original_fetch(url, method, headers, body)
            finally:
                _current_charge.reset(token)

        def throttle_noop_sync(cost: Any = None) -> None:
            return None

        wrappers = {"fetch2": fetch2_sync, "fetch": fetch_sync, "throttle": throttle_noop_sync}

    wrappers["on_rest_response"] = on_rest_response
    if ledger.mode is not Mode.ENFORCE:
        wrappers.pop("throttle")
        handle.saved.pop("throttle")
    for name, wrapper in wrappers.items():
        api.__dict__[name] = wrapper
    api.__dict__["_ratekit_instrumentation"] = handle
    return handle


def _status(code: Any) -> int | None:
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def _acquire(ledger: Ledger, charge: Charge, failures: _FailureLog) -> None:
    try:
        ledger.acquire(charge)
    except Exception as exc:
        failures.failed("weight accounting", charge.endpoint, exc)


async def _acquire_async(ledger: Ledger, charge: Charge, failures: _FailureLog) -> None:
    try:
        await ledger.acquire_async(charge)
    except Exception as exc:
        failures.failed("weight accounting", charge.endpoint, exc)
