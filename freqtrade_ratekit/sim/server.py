"""What both emulators share: settings, traffic statistics, fault injection, the control routes
(``/_sim/...``) and running an aiohttp app on a background thread.

aiohttp was chosen over FastAPI because handlers build raw responses (any status, any header,
deliberately broken bodies) with little per-request overhead, and one event loop per server
keeps hanging or slow requests from blocking each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from aiohttp import web

from freqtrade_ratekit.redact import cut, shorten

CONTROL_PREFIX = "/_sim/"
DEFAULT_LOG_SIZE = 5000
HANG_POLL_S = 0.02

# Settings every emulator understands; subclasses add their own.
COMMON_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0.0,  # added to every traffic response
    "jitter_ms": 0.0,  # uniform extra delay in [0, jitter_ms]
    "hang": False,  # while true, traffic requests wait (up to hang_timeout_s)
    "hang_timeout_s": 300.0,
    "fail_rate": 0.0,  # fraction of traffic requests answered with fail_status
    "fail_status": 503,
    "malformed_rate": 0.0,  # fraction answered 200 with a body that is not valid JSON
    "unknown_symbols": [],  # symbols (exchange) or coin ids (CoinGecko) treated as unknown
}


# Inclusive (low, high) of every numeric setting: a value outside, or NaN / Infinity (which
# Python's JSON reader accepts), is refused with the key and the value named.
COMMON_BOUNDS: dict[str, tuple[float, float]] = {
    "latency_ms": (0.0, 600_000.0),
    "jitter_ms": (0.0, 600_000.0),
    "hang_timeout_s": (0.0, 86_400.0),
    "fail_rate": (0.0, 1.0),
    "fail_status": (400, 599),  # a real HTTP error status
    "malformed_rate": (0.0, 1.0),
}


class SettingsError(ValueError):
    """A control-surface change named an unknown key or a value of the wrong kind."""


class SimSettings:
    """Typed, lock-protected settings; a change is validated whole before any of it applies.

    Every number must be finite and within ``bounds`` (an int default means whole numbers).
    """

    def __init__(
        self,
        defaults: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        *,
        checks: Mapping[str, Callable[[Any], Any]] | None = None,
        on_change: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    ):
        self._defaults = dict(defaults)
        self._bounds = dict(COMMON_BOUNDS if bounds is None else bounds)
        # Settings of their own shape (a mapping, ...): each check returns the value to store or
        # raises SettingsError; on_change(old, new) runs under the lock after every merge.
        self._checks = dict(checks or {})
        self._on_change = on_change
        unbounded = [
            key
            for key, value in self._defaults.items()
            if isinstance(value, int | float)
            and not isinstance(value, bool)
            and key not in self._bounds
        ]
        if unbounded:
            raise ValueError(f"numeric settings without bounds: {', '.join(sorted(unbounded))}")
        self._values = {k: _copy(v) for k, v in self._defaults.items()}
        self._lock = threading.Lock()
        if overrides:
            self.merge(overrides)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {k: _copy(v) for k, v in self._values.items()}

    def merge(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        checked = {key: self._check(key, value) for key, value in changes.items()}
        with self._lock:
            old = {k: _copy(v) for k, v in self._values.items()}
            self._values.update(checked)
            if self._on_change is not None:
                self._on_change(old, {k: _copy(v) for k, v in self._values.items()})
        return self.snapshot()

    def _check(self, key: Any, value: Any) -> Any:
        if key not in self._defaults:
            allowed = ", ".join(sorted(self._defaults))
            raise SettingsError(f"unknown setting {shorten(key)}; allowed: {allowed}")
        check = self._checks.get(key)
        if check is not None:
            return check(value)
        default = self._defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SettingsError(f"{key} must be true or false, got {shorten(value)}")
            return value
        if isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SettingsError(f"{key} must be a list of strings, got {shorten(value)}")
            return list(value)
        if isinstance(default, int | float):
            return self._check_number(key, value, whole=isinstance(default, int))
        raise SettingsError(f"{key} cannot be changed")

    def _check_number(self, key: str, value: Any, *, whole: bool) -> int | float:
        low, high = self._bounds[key]
        # No float() before the range check: an int too large for a float raises OverflowError.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))
            or not low <= value <= high
            or (whole and isinstance(value, float) and not value.is_integer())
        ):
            kind = "a whole number" if whole else "a finite number"
            allowed = f"{kind} from {low:g} to {high:g}"
            raise SettingsError(f"{key} must be {allowed}, got {shorten(value)}")
        return int(value) if whole else float(value)


def _copy(value: Any) -> Any:
    """A setting's value as handed out: lists and mappings copied, so callers cannot change
    the stored one."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


class TrafficStats:
    """Per-endpoint counters and a bounded call log (arrival times let tests prove that no call
    was made inside a pause or while some request was being served)."""

    def __init__(self, log_size: int = DEFAULT_LOG_SIZE) -> None:
        self._lock = threading.Lock()
        self._log_size = log_size
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._endpoints: dict[str, dict[str, Any]] = {}
            self._log: deque[dict[str, Any]] = deque(maxlen=self._log_size)
            self._since = time.time()

    def record(
        self,
        endpoint: str,
        *,
        arrived: float,
        finished: float,
        status: int,
        weight: float,
        client: str,
    ) -> None:
        with self._lock:
            row = self._endpoints.setdefault(
                endpoint,
                {"calls": 0, "weight": 0, "status_429": 0, "status_418": 0, "errors": 0},
            )
            row["calls"] += 1
            row["weight"] += weight
            if status == 429:
                row["status_429"] += 1
            elif status == 418:
                row["status_418"] += 1
            elif status >= 400:
                row["errors"] += 1
            self._log.append(
                {
                    "t": arrived,
                    "done": finished,
                    "endpoint": endpoint,
                    "status": status,
                    "weight": weight,
                    "client": client,
                }
            )

    def snapshot(self, since: float | None = None) -> dict[str, Any]:
        with self._lock:
            endpoints = {name: dict(row) for name, row in self._endpoints.items()}
            log = [dict(e) for e in self._log if since is None or e["t"] >= since]
            counting_since = self._since
        totals = {
            key: sum(row[key] for row in endpoints.values())
            for key in ("calls", "weight", "status_429", "status_418", "errors")
        }
        return {"since": counting_since, "endpoints": endpoints, "totals": totals, "log": log}


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON; SettingsError (a 400, not a 500) when it is not UTF-8, not JSON,
    or nested deeper than the parser's recursion limit."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SettingsError(f"body must be UTF-8 JSON (byte {err.start} is not UTF-8)") from None
    try:
        return json.loads(text)
    except ValueError as err:  # JSONDecodeError, or an integer of more than 4300 digits
        raise SettingsError(f"body is not valid JSON: {cut(str(err))}") from None
    except RecursionError:
        raise SettingsError("body is not valid JSON: nested too deeply") from None


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None):
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


class BaseEmulator:
    """An aiohttp app with the control surface; subclasses implement ``handle_traffic``."""

    defaults: ClassVar[dict[str, Any]] = COMMON_DEFAULTS
    bounds: ClassVar[dict[str, tuple[float, float]]] = COMMON_BOUNDS

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        seed: int = 42,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = SimSettings(
            self.defaults,
            settings,
            self.bounds,
            checks=self.setting_checks(),
            on_change=self.settings_changed,
        )
        self.stats = TrafficStats()
        self.clock = clock
        self.rng = random.Random(seed)
        self.stopping = False

    def setting_checks(self) -> dict[str, Callable[[Any], Any]]:
        """Validators of the settings that are not a bool, a number or a list of strings (see
        `SimSettings`); subclasses that add such settings extend this. Called before
        `settings` exists, so a check may only use what the subclass set up before
        `BaseEmulator.__init__`."""
        return {}

    def settings_changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Called (under the settings lock) after every accepted change, old and new values."""

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/_sim/settings", self._get_settings)
        app.router.add_put("/_sim/settings", self._put_settings)
        app.router.add_get("/_sim/stats", self._get_stats)
        app.router.add_post("/_sim/reset", self._post_reset)
        self.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._traffic)
        return app

    def add_routes(self, app: web.Application) -> None:
        """Routes of a subclass's own (websockets, more control routes), matched before the
        catch-all traffic route."""

    # control surface: never counted, never delayed
    async def _get_settings(self, request: web.Request) -> web.Response:
        return json_response(self.settings.snapshot())

    async def _put_settings(self, request: web.Request) -> web.Response:
        try:
            body = parse_json_body(await request.read())
            if not isinstance(body, dict):
                raise SettingsError("body must be a JSON object")
            return json_response(self.settings.merge(body))
        except SettingsError as err:
            return json_response({"error": str(err)}, status=400)

    async def _get_stats(self, request: web.Request) -> web.Response:
        raw = request.query.get("since")
        since = None
        if raw:
            try:
                since = float(raw)
            except ValueError:
                since = math.nan
            if not math.isfinite(since):
                error = f"since must be a unix time in seconds, got {shorten(raw)}"
                return json_response({"error": error}, status=400)
        return json_response(self.stats_snapshot(since))

    def stats_snapshot(self, since: float | None = None) -> dict[str, Any]:
        """What ``GET /_sim/stats`` answers; subclasses add their own sections."""
        return self.stats.snapshot(since)

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response({"ok": True})

    def reset(self) -> None:
        """Clear statistics; the exchange also clears its windows and bans."""
        self.stats.reset()

    async def _traffic(self, request: web.Request) -> web.Response:
        arrived = time.time()
        endpoint, weight, response = await self.handle_traffic(request)
        self.stats.record(
            endpoint,
            arrived=arrived,
            finished=time.time(),
            status=response.status,
            weight=weight,
            client=self.client_id(request),
        )
        return response

    async def handle_traffic(self, request: web.Request) -> tuple[str, float, web.Response]:
        """Return (endpoint name for stats, weight charged, response)."""
        raise NotImplementedError

    @staticmethod
    def client_id(request: web.Request) -> str:
        """The caller's IP; ``X-Sim-Client-Ip`` lets one host play several IPs in benchmarks."""
        return request.headers.get("X-Sim-Client-Ip") or request.remote or "unknown"

    # fault injection helpers, in the order handlers use them
    async def wait_for_delays(self) -> None:
        deadline = self.clock() + self.settings["hang_timeout_s"]
        while self.settings["hang"] and not self.stopping and self.clock() < deadline:
            await asyncio.sleep(HANG_POLL_S)
        delay_ms = self.settings["latency_ms"] + self.rng.uniform(0, self.settings["jitter_ms"])
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def roll_failure(self) -> int | None:
        """The status to fail with, or None to serve normally."""
        rate = self.settings["fail_rate"]
        if rate > 0 and self.rng.random() < rate:
            return int(self.settings["fail_status"])
        return None

    def roll_malformed(self) -> bool:
        rate = self.settings["malformed_rate"]
        return rate > 0 and self.rng.random() < rate


def malformed_response(headers: dict[str, str] | None = None) -> web.Response:
    """A 200 whose body starts like JSON and breaks off, as a truncated proxy answer would."""
    return web.Response(
        body=b'{"symbol":"BTCUSDT","price":', headers=headers, content_type="application/json"
    )


EmulatorT = TypeVar("EmulatorT", bound=BaseEmulator)


class RunningEmulator(Generic[EmulatorT]):
    """An emulator serving on its own thread and event loop; use as a context manager."""

    def __init__(self, emulator: EmulatorT, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self.host = host
        self._requested_port = port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._serve, name=f"{type(emulator).__name__}-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> RunningEmulator[EmulatorT]:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{type(self.emulator).__name__} did not start in {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"emulator failed to start: {self._error}") from self._error
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(
                self.emulator.build_app(), access_log=None, shutdown_timeout=1.0
            )
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self._requested_port, backlog=1024)
            self._loop.run_until_complete(site.start())
            server = site._server
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
        except BaseException as err:
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def settings(self) -> dict[str, Any]:
        return self.emulator.settings.snapshot()

    def update(self, **changes: Any) -> dict[str, Any]:
        """Same validation and effect as ``PUT /_sim/settings``."""
        return self.emulator.settings.merge(changes)

    def stats(self, since: float | None = None) -> dict[str, Any]:
        return self.emulator.stats_snapshot(since)

    def reset(self) -> None:
        self.emulator.reset()

    def stop(self, timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        self.emulator.stopping = True
        if self._runner is not None:
            cleanup = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                cleanup.result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> RunningEmulator[EmulatorT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
