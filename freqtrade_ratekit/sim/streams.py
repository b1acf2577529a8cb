"""Binance's websocket market streams, served by the exchange emulator from its own aiohttp app.

Protocol, payloads and limits follow "WebSocket Streams for Binance"
(https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams, and its source
``web-socket-streams.md`` in github.com/binance/binance-spot-api-docs at a5e0bc3, 2026-07-21;
read 2026-12-02):

- raw streams at ``/ws/<streamName>`` (and ``/ws``, subscribing later), combined streams at
  ``/stream?streams=<a>/<b>``, whose events are wrapped as ``{"stream": name, "data": payload}``;
  ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY`` / ``GET_PROPERTY``
  answered ``{"result": ..., "id": N}``, errors from the page's "Error Messages" table;
- "WebSocket connections have a limit of 5 incoming messages per second. A message is
  considered: A PING frame, A PONG frame, A JSON controlled message" and "A connection that goes
  beyond the limit will be disconnected"; "A single connection can listen to a maximum of 1024
  streams"; "There is a limit of 300 connections per attempt every 5 minutes per IP"; "A single
  connection to stream.binance.com is only valid for 24 hours"; "The WebSocket server will send
  a ping frame every 20 seconds. If the WebSocket server does not receive a pong frame back from
  the connection within a minute the connection will be disconnected", the pong carrying "a copy
  of ping's payload" ("Unsolicited pong frames are allowed, but will not prevent
  disconnection"); a ``serverShutdown`` event before the server shuts down;
- ``<symbol>@bookTicker`` "Real-time", ``<symbol>@kline_<interval>`` "1000ms for 1s, 2000ms for
  the other intervals", ``<symbol>@ticker`` "1000ms". ``!bookTicker`` is not served: Binance
  removed it from spot on 2022-12-07 (CHANGELOG.md of the same repository; ccxt.pro refuses
  ``watch_bids_asks`` without symbols on spot for that reason).

What the page leaves open, and what the emulator does (docs/emulators.md):

- A subscribe error is wrapped as ``{"error": {"code": 2, "msg": ...}, "id": N}``, the form
  Binance sends and ccxt.pro's ``handle_ws_error`` reads (the page's table shows the inner
  object). A well-formed name the emulator does not serve (``btcusdt@aggTrade``, an unlisted
  symbol) is accepted and listed but pushes nothing, as Binance accepts a well-formed name
  without checking that the stream exists; a malformed one is ``Invalid request: invalid
  stream``.
- A connection over the incoming-message limit is closed with 1008 "Too many requests" (the
  close clients report from Binance, e.g. binance/binance-connector-go#90 and
  binance/binance-connector-js#530). The page gives no reply for a 1025th stream: SUBSCRIBE
  answers a code 2 error and subscribes none of that request; a URL naming more is refused 400.
- A connect past the attempt limit is refused in the handshake with HTTP 429 and
  ``Retry-After``, Binance's REST answer to a broken rate limit ("HTTP 429 return code is used
  when breaking a request rate limit", rest-api.md, same repository), as JSON ("All error
  responses during the HTTP handshake are encoded as JSON", faqs/sbe_faq.md). Every handshake
  attempt counts, refused ones too ("per attempt"); the window is rolling, as for REST weight.

Every payload is built by the REST handlers' own row builders at the emulator's wall clock, so
a book ticker or kline pushed at some instant equals what REST answers at that instant, pins
included. Book tickers are checked every ``TICK_S`` and pushed when the top of book changed
(a new ``u``), and re-pushed unchanged (same ``u``) after ``BOOK_TICKER_IDLE_S`` without one,
as a liquid market's stream never goes a second without an update; klines every
``KLINE_PUSH_S`` (``1s`` klines every second) and once more, closed (``"x": true``), when their
candle ends; tickers every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import WSCloseCode, WSMsgType, web

from freqtrade_ratekit.sim.limits import RollingWindow
from freqtrade_ratekit.sim.market import TIMEFRAME_SECONDS, Market
from freqtrade_ratekit.sim.server import json_response

if TYPE_CHECKING:
    from freqtrade_ratekit.sim.exchange import ExchangeEmulator

logger = logging.getLogger(__name__)

WS_PATH = "/ws"
COMBINED_PATH = "/stream"
DROP_ROUTE = "/_sim/ws/drop"

CONNECT_WINDOW_S = 300.0  # "every 5 minutes"
TICK_S = 0.1  # how often quotes are compared and pushes are due
BOOK_TICKER_IDLE_S = 1.0  # an unchanged book ticker is re-sent after this long
KLINE_PUSH_S = 2.0  # "2000ms for the other intervals"
KLINE_1S_PUSH_S = 1.0  # "1000ms for 1s"
TICKER_PUSH_S = 1.0  # "1000ms"
CLOSE_TIMEOUT_S = 2.0  # how long a close waits for the client's close frame
MAX_QUEUED = 10_000  # a client that lets more pile up is dropped as a slow consumer
RECENT_PINGS = 8  # ping payloads a pong may still answer

WS_DEFAULTS: dict[str, Any] = {
    "ws_connects_per_5m": 300,  # handshake attempts per IP in a rolling 5 minutes
    "ws_max_streams": 1024,  # streams one connection may listen to
    "ws_max_incoming_per_s": 5,  # frames a client may send per second (rolling)
    "ws_ping_interval_s": 20.0,  # 0: never ping
    "ws_pong_timeout_s": 60.0,  # an unanswered ping older than this disconnects
    "ws_max_lifetime_s": 86400.0,  # "only valid for 24 hours"
    "ws_drop": 0.0,  # chance per second that an open connection is dropped (1: all, at once)
    "ws_pause": False,  # while true, no market data is sent (control replies and pings are)
    "ws_delay_ms": 0.0,  # every message leaves this long after it was produced
    "ws_refuse": False,  # while true, every handshake is refused with 503
}

WS_BOUNDS: dict[str, tuple[float, float]] = {
    "ws_connects_per_5m": (0, 1_000_000_000),
    "ws_max_streams": (0, 1_000_000),
    "ws_max_incoming_per_s": (1, 1_000_000),
    "ws_ping_interval_s": (0.0, 86_400.0),
    "ws_pong_timeout_s": (0.1, 86_400.0),
    "ws_max_lifetime_s": (0.1, 30 * 86_400.0),
    "ws_drop": (0.0, 1.0),
    "ws_delay_ms": (0.0, 600_000.0),
}

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
REQUEST_KEYS = {"method", "params", "id"}
# A stream name as Binance spells them: a lowercase symbol, '@', the stream and its options
# (btcusdt@kline_1m, btcusdt@kline_1m@+08:00, btcusdt@depth5@100ms), or an all-market
# stream (!miniTicker@arr). Anything else is "Invalid request: invalid stream".
STREAM_NAME = re.compile(r"(?:[a-z0-9]+|![A-Za-z0-9_]+)(?:@[A-Za-z0-9_:+.\-]+)+|![A-Za-z0-9_]+")
ID_STRING = re.compile(r"[A-Za-z0-9]{1,36}")
INT64 = 2**63
SERVED_KINDS = ("bookTicker", "kline", "ticker")


def stream_url(http_url: str) -> str:
    """The raw-stream URL (``ws://HOST:PORT/ws``) of the exchange emulator at ``http_url``."""
    parts = urlsplit(http_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + WS_PATH, "", ""))


@dataclass(frozen=True)
class Stream:
    """A stream name the emulator serves: its kind, Binance symbol and (klines) interval."""

    name: str
    kind: str  # one of SERVED_KINDS
    symbol: str
    interval: str = ""
    timeframe_s: int = 0


def parse_stream(name: str) -> Stream | None:
    """The served stream ``name`` names, None for a well-formed name the emulator does not
    serve (check `STREAM_NAME` first)."""
    symbol, _, rest = name.partition("@")
    if symbol.startswith("!") or "@" in rest:
        return None
    if rest in ("bookTicker", "ticker"):
        return Stream(name, rest, symbol.upper())
    if rest.startswith("kline_"):
        interval = rest[len("kline_") :]
        timeframe_s = TIMEFRAME_SECONDS.get(interval)
        if timeframe_s is not None:
            return Stream(name, "kline", symbol.upper(), interval, timeframe_s)
    return None


class RequestError(Exception):
    """A control message Binance answers with ``{"error": {"code", "msg"}, "id"}``."""

    def __init__(self, code: int, msg: str, request_id: Any = None, *, has_id: bool = False):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id
        self.has_id = has_id

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": {"code": self.code, "msg": self.msg}}
        if self.has_id:
            body["id"] = self.request_id
        return body


def _column_after(text: str, key: str) -> int:
    """1-based column just past the value of ``key`` in ``text`` (serde's error position)."""
    match = re.search(rf'"{key}"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}}\s]+)', text)
    return match.end() if match else len(text)


@dataclass
class Subscription:
    name: str
    stream: Stream | None  # None: accepted, listed, never pushed
    last_sent: float = -math.inf  # loop time of the last push
    last_key: Any = None  # book ticker: the update id sent; kline: the candle open sent


@dataclass(eq=False)
class Connection:
    """One client connection: its subscriptions, limits and outgoing queue."""

    id: int
    client: str
    path: str
    combined: bool
    ws: web.WebSocketResponse
    request: web.Request
    opened: float  # loop time
    streams: dict[str, Subscription] = field(default_factory=dict)
    incoming: deque[float] = field(default_factory=deque)
    queue: asyncio.Queue[tuple[float, str, str]] = field(default_factory=asyncio.Queue)
    pings: deque[bytes] = field(default_factory=lambda: deque(maxlen=RECENT_PINGS))
    last_ping: float = 0.0
    unanswered_since: float | None = None
    closing: bool = False
    reason: str | None = None
    sender: asyncio.Task[None] | None = None


class StreamStats:
    """Connections, subscriptions, messages and disconnects; thread-safe."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._open: dict[int, dict[str, Any]] = {}
        self._active: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Zero every counter; open connections and their subscriptions stay as they are."""
        with self._lock:
            self._since = self._now()
            self._connects = 0
            self._refused: dict[str, int] = {}
            self._subscribed = 0
            self._unsubscribed = 0
            self._in: dict[str, int] = {}
            self._out: dict[str, int] = {}
            self._suppressed = 0
            self._disconnects: dict[str, int] = {}

    def opened(self, conn: Connection) -> None:
        with self._lock:
            self._connects += 1
            self._open[conn.id] = {"id": conn.id, "client": conn.client, "path": conn.path}

    def refused(self, reason: str) -> None:
        with self._lock:
            self._refused[reason] = self._refused.get(reason, 0) + 1

    def closed(self, conn: Connection, reason: str) -> None:
        with self._lock:
            self._open.pop(conn.id, None)
            for sub in conn.streams.values():
                self._drop_active(sub)
            self._disconnects[reason] = self._disconnects.get(reason, 0) + 1

    def subscribe(self, conn: Connection, subs: list[Subscription]) -> None:
        with self._lock:
            for sub in subs:
                conn.streams[sub.name] = sub
                kind = _kind(sub)
                self._active[kind] = self._active.get(kind, 0) + 1
            self._subscribed += len(subs)

    def unsubscribe(self, conn: Connection, names: Iterable[str]) -> None:
        with self._lock:
            for name in names:
                sub = conn.streams.pop(name, None)
                if sub is not None:
                    self._drop_active(sub)
                    self._unsubscribed += 1

    def _drop_active(self, sub: Subscription) -> None:
        kind = _kind(sub)
        self._active[kind] -= 1
        if not self._active[kind]:
            del self._active[kind]

    def message_in(self, kind: str) -> None:
        with self._lock:
            self._in[kind] = self._in.get(kind, 0) + 1

    def message_out(self, kind: str) -> None:
        with self._lock:
            self._out[kind] = self._out.get(kind, 0) + 1

    def suppressed(self) -> None:
        with self._lock:
            self._suppressed += 1

    def snapshot(self, connections: Iterable[Connection]) -> dict[str, Any]:
        with self._lock:
            listing = []
            for conn in connections:
                row = self._open.get(conn.id)
                if row is not None:
                    listing.append({**row, "streams": list(conn.streams)})
            return {
                "since": self._since,
                "connections": {
                    "open": len(self._open),
                    "total": self._connects,
                    "refused": sum(self._refused.values()),
                    "refused_by_reason": dict(self._refused),
                    "list": listing,
                },
                "subscriptions": {
                    "active": sum(self._active.values()),
                    "active_by_kind": dict(self._active),
                    "subscribed": self._subscribed,
                    "unsubscribed": self._unsubscribed,
                },
                "messages_in": {"total": sum(self._in.values()), "by_kind": dict(self._in)},
                "messages_out": {
                    "total": sum(self._out.values()),
                    "by_kind": dict(self._out),
                    "suppressed_by_pause": self._suppressed,
                },
                "disconnects": dict(self._disconnects),
            }


def _kind(sub: Subscription) -> str:
    return sub.stream.kind if sub.stream is not None else "unserved"


class StreamHub:
    """The websocket side of an `ExchangeEmulator`: handshakes, control messages, pushes."""

    def __init__(self, emulator: ExchangeEmulator, seed: int = 42) -> None:
        self.emulator = emulator
        self.settings = emulator.settings
        self.stats = StreamStats(emulator.wall_clock)
        self.connections: dict[int, Connection] = {}
        self._next_id = 0
        self._attempts: dict[str, RollingWindow] = {}
        self._attempts_lock = threading.Lock()
        self._books: dict[str, tuple[dict[str, str], int]] = {}  # symbol -> (row, update id)
        self._rng = random.Random(seed)  # drops; apart from the REST fault rolls
        self._pusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # wiring
    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(DROP_ROUTE, self._post_drop)
        for path in (WS_PATH, f"{WS_PATH}/{{name:.*}}", COMBINED_PATH, f"{COMBINED_PATH}/"):
            app.router.add_get(path, self.handle)
        app.on_shutdown.append(self._on_shutdown)

    def reset(self) -> None:
        self.stats.reset()
        with self._attempts_lock:
            self._attempts.clear()

    def snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot(list(self.connections.values()))

    # handshake
    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            autoping=False, heartbeat=None, timeout=CLOSE_TIMEOUT_S, max_msg_size=4 * 1024 * 1024
        )
        if not ws.can_prepare(request).ok:
            body = {"code": -1, "msg": "This endpoint serves websocket connections only."}
            return json_response(body, status=400)
        client = self.emulator.client_id(request)
        refused = self._admit(client)
        if refused is not None:
            return refused
        combined = request.path.rstrip("/") == COMBINED_PATH
        names: list[str] = []
        if combined:
            names = [n for n in request.query.get("streams", "").split("/") if n]
        elif request.path.startswith(f"{WS_PATH}/"):
            names = [request.path[len(WS_PATH) + 1 :]]
        # Names in the URL that are not stream names (ccxt.pro connects to /ws/0, /ws/1, ...,
        # and subscribes afterwards) are not subscribed.
        wanted = list(dict.fromkeys(n for n in names if STREAM_NAME.fullmatch(n)))
        limit = self.settings["ws_max_streams"]
        if len(wanted) > limit:
            self.stats.refused("too_many_streams")
            msg = f"Invalid request: too many streams; a connection can listen to at most {limit}."
            return json_response({"code": 2, "msg": msg}, status=400)

        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        self._next_id += 1
        conn = Connection(
            self._next_id, client, request.path_qs, combined, ws, request, loop.time()
        )
        conn.last_ping = conn.opened
        self.connections[conn.id] = conn
        self.stats.opened(conn)
        self.stats.subscribe(conn, [Subscription(n, parse_stream(n)) for n in wanted])
        conn.sender = asyncio.create_task(self._send_loop(conn))
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.create_task(self._push_loop())
        try:
            await self._read_loop(conn)
        finally:
            self.connections.pop(conn.id, None)
            if conn.sender is not None:
                conn.sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await conn.sender
            self.stats.closed(conn, conn.reason or "client")
        return ws

    def _admit(self, client: str) -> web.Response | None:
        """None to accept the handshake, else the refusal (every attempt is counted)."""
        now = self.emulator.clock()
        limit = self.settings["ws_connects_per_5m"]
        with self._attempts_lock:
            window = self._attempts.setdefault(client, RollingWindow())
            over = window.used(now, CONNECT_WINDOW_S) + 1 > limit
            window.add(now, 1)
            wait = window.seconds_until_room(now, CONNECT_WINDOW_S, 1, limit) if over else 0.0
        if self.settings["ws_refuse"]:
            self.stats.refused("ws_refuse")
            body = {"code": -1001, "msg": "Service unavailable (ws_refuse)."}
            return json_response(body, status=503)
        if over:
            self.stats.refused("connect_limit")
            retry_after = max(1, math.ceil(wait))
            msg = (
                f"Too many connection attempts; current limit is {limit} connections per"
                " 5 minutes per IP."
            )
            return json_response(
                {"code": -1003, "msg": msg}, status=429, headers={"Retry-After": str(retry_after)}
            )
        return None

    # incoming
    async def _read_loop(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        async for msg in conn.ws:
            now = loop.time()
            if not self._count_incoming(conn, now):
                self.stats.message_in("over_limit")
                await self._close(conn, "too_many_messages", WSCloseCode.POLICY_VIOLATION)
                return
            if msg.type == WSMsgType.PING:
                self.stats.message_in("ping")
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                self.stats.message_in("pong")
                if msg.data in conn.pings:
                    conn.unanswered_since = None
            elif msg.type == WSMsgType.TEXT:
                self._control(conn, msg.data, now)
            elif msg.type == WSMsgType.BINARY:
                self.stats.message_in("invalid")
                error = RequestError(3, "Invalid JSON: expected value at line 1 column 1")
                self._enqueue(conn, now, error.payload(), "error")
            else:  # ERROR
                return

    def _count_incoming(self, conn: Connection, now: float) -> bool:
        """Record one incoming frame; False when it is over the per-second limit."""
        while conn.incoming and conn.incoming[0] <= now - 1.0:
            conn.incoming.popleft()
        conn.incoming.append(now)
        return len(conn.incoming) <= self.settings["ws_max_incoming_per_s"]

    def _control(self, conn: Connection, text: str, now: float) -> None:
        try:
            method, result, request_id = self._answer(conn, text)
        except RequestError as error:
            self.stats.message_in("invalid")
            self._enqueue(conn, now, error.payload(), "error")
            return
        self.stats.message_in(method)
        self._enqueue(conn, now, {"result": result, "id": request_id}, "reply")

    def _answer(self, conn: Connection, text: str) -> tuple[str, Any, Any]:
        """(method, result, id) of a control message, or RequestError."""
        try:
            request = json.loads(text)
        except ValueError as err:
            line, column = getattr(err, "lineno", 1), getattr(err, "colno", 1)
            raise RequestError(
                3, f"Invalid JSON: expected value at line {line} column {column}"
            ) from None
        except RecursionError:
            raise RequestError(3, "Invalid JSON: recursion limit exceeded") from None
        if not isinstance(request, dict):
            raise RequestError(2, "Invalid request: expected an object")
        if "method" not in request:
            raise RequestError(
                2, f"Invalid request: missing field `method` at line 1 column {len(text)}"
            )
        method = request["method"]
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            shown = method if isinstance(method, str) else json.dumps(method)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise RequestError(
                2,
                f"Invalid request: unknown variant `{shown}`, expected one of"
                f" {expected} at line 1 column {_column_after(text, 'method')}",
            )
        request_id = request.get("id")
        if "id" not in request or not _valid_id(request_id):
            raise RequestError(2, "Invalid request: request ID must be an unsigned integer")
        if set(request) - REQUEST_KEYS:
            raise RequestError(2, "Invalid request: too many parameters", request_id, has_id=True)
        params = request.get("params")

        def fail(code: int, msg: str) -> RequestError:
            return RequestError(code, msg, request_id, has_id=True)

        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                raise fail(2, "Invalid request: invalid stream")
            if not all(STREAM_NAME.fullmatch(p) for p in params):
                raise fail(2, "Invalid request: invalid stream")
            if method == "SUBSCRIBE":
                new = [n for n in dict.fromkeys(params) if n not in conn.streams]
                limit = self.settings["ws_max_streams"]
                if len(conn.streams) + len(new) > limit:
                    raise fail(
                        2,
                        "Invalid request: too many streams; a connection can listen to at most"
                        f" {limit}.",
                    )
                self.stats.subscribe(conn, [Subscription(n, parse_stream(n)) for n in new])
            else:
                self.stats.unsubscribe(conn, params)
            return method, None, request_id
        if method == "LIST_SUBSCRIPTIONS":
            if params not in (None, []):
                raise fail(2, "Invalid request: too many parameters")
            return method, list(conn.streams), request_id
        # SET_PROPERTY / GET_PROPERTY: the only property is "combined"
        expected_len = 2 if method == "SET_PROPERTY" else 1
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            raise fail(2, "Invalid request: property name must be a string")
        if len(params) != expected_len:
            raise fail(2, "Invalid request: too many parameters")
        if params[0] != "combined":
            raise fail(0, "Unknown property")
        if method == "GET_PROPERTY":
            return method, conn.combined, request_id
        if not isinstance(params[1], bool):
            raise fail(1, "Invalid value type: expected Boolean")
        conn.combined = params[1]
        return method, None, request_id

    # outgoing
    def _enqueue(self, conn: Connection, produced: float, payload: Any, kind: str) -> None:
        if conn.closing:
            return
        if conn.queue.qsize() >= MAX_QUEUED:
            self._spawn(self._drop(conn, "slow_consumer"))
            return
        conn.queue.put_nowait((produced, json.dumps(payload, separators=(",", ":")), kind))

    async def _send_loop(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            produced, text, kind = await conn.queue.get()
            delay_s = self.settings["ws_delay_ms"] / 1000
            wait = produced + delay_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if kind in SERVED_KINDS and self.settings["ws_pause"]:
                self.stats.suppressed()
                continue
            if conn.closing or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return
            self.stats.message_out(kind)

    def _push(self, conn: Connection, sub: Subscription, produced: float, payload: Any) -> None:
        assert sub.stream is not None
        wrapped = {"stream": sub.name, "data": payload} if conn.combined else payload
        self._enqueue(conn, produced, wrapped, sub.stream.kind)

    async def _push_loop(self) -> None:
        """Every TICK_S while any connection is open: housekeeping, then the pushes due."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while self.connections:
            await asyncio.sleep(TICK_S)
            mono = loop.time()
            elapsed, last = mono - last, mono
            now = self.emulator.wall_clock()
            books: dict[str, tuple[dict[str, str], int]] = {}
            for conn in list(self.connections.values()):
                if conn.closing:
                    continue
                try:
                    self._housekeeping(conn, mono, elapsed)
                    if conn.closing or self.settings["ws_pause"]:
                        continue
                    for sub in list(conn.streams.values()):
                        if sub.stream is not None:
                            self._push_due(conn, sub, sub.stream, now, mono, books)
                except Exception:  # one bad push must not stop every other stream
                    logger.exception("websocket push to connection %s failed", conn.id)

    def _housekeeping(self, conn: Connection, mono: float, elapsed: float) -> None:
        drop = self.settings["ws_drop"]
        if drop > 0 and self._rng.random() < 1 - (1 - drop) ** min(elapsed, 1.0):
            self._spawn(self._drop(conn, "drop"))
            return
        if mono - conn.opened >= self.settings["ws_max_lifetime_s"]:
            self._spawn(self._close(conn, "lifetime", WSCloseCode.OK, b"Connection lifetime"))
            return
        timeout = self.settings["ws_pong_timeout_s"]
        if conn.unanswered_since is not None and mono - conn.unanswered_since > timeout:
            self._spawn(
                self._close(conn, "pong_timeout", WSCloseCode.POLICY_VIOLATION, b"Pong timeout")
            )
            return
        interval = self.settings["ws_ping_interval_s"]
        if interval > 0 and mono - conn.last_ping >= interval:
            conn.last_ping = mono
            payload = str(int(self.emulator.wall_clock() * 1000)).encode()
            conn.pings.append(payload)
            if conn.unanswered_since is None:
                conn.unanswered_since = mono
            self._spawn(self._ping(conn, payload))

    def _push_due(
        self,
        conn: Connection,
        sub: Subscription,
        stream: Stream,
        now: float,
        mono: float,
        books: dict[str, tuple[dict[str, str], int]],
    ) -> None:
        market = self.emulator.listed_market(stream.symbol)
        if market is None:
            return
        event_ms = int(now * 1000)
        if stream.kind == "bookTicker":
            if stream.symbol not in books:
                books[stream.symbol] = self._book(market, now)
            row, update_id = books[stream.symbol]
            if sub.last_key != update_id or mono - sub.last_sent >= BOOK_TICKER_IDLE_S:
                sub.last_key, sub.last_sent = update_id, mono
                payload = {
                    "u": update_id,
                    "s": row["symbol"],
                    "b": row["bidPrice"],
                    "B": row["bidQty"],
                    "a": row["askPrice"],
                    "A": row["askQty"],
                }
                self._push(conn, sub, mono, payload)
        elif stream.kind == "kline":
            step = stream.timeframe_s
            now_s = int(now)
            current = now_s - now_s % step
            if sub.last_key is not None and current > sub.last_key:
                # the candle last sent has closed: its final state, then the new one at once
                closed = self._kline(market, stream, sub.last_key, now, event_ms, closed=True)
                self._push(conn, sub, mono, closed)
                sub.last_key = None
            period = KLINE_1S_PUSH_S if step == 1 else KLINE_PUSH_S
            if sub.last_key is None or mono - sub.last_sent >= period:
                sub.last_key, sub.last_sent = current, mono
                kline = self._kline(market, stream, current, now, event_ms, closed=False)
                self._push(conn, sub, mono, kline)
        elif mono - sub.last_sent >= TICKER_PUSH_S:  # ticker
            sub.last_sent = mono
            self._push(conn, sub, mono, self._ticker(market, now, event_ms))

    def _book(self, market: Market, now: float) -> tuple[dict[str, str], int]:
        """The book ticker row at ``now`` and its update id (a new one when the row changed)."""
        row = self.emulator.book_ticker_row(market, now)
        known = self._books.get(market.symbol)
        if known is None or known[0] != row:
            known = (row, self.emulator.next_update_id())
            self._books[market.symbol] = known
        return known

    def _kline(
        self,
        market: Market,
        stream: Stream,
        open_s: int,
        now: float,
        event_ms: int,
        *,
        closed: bool,
    ) -> dict[str, Any]:
        row = self.emulator.kline_row(market, open_s, stream.timeframe_s, now)
        return {
            "e": "kline",
            "E": event_ms,
            "s": market.symbol,
            "k": {
                "t": row[0],
                "T": row[6],
                "s": market.symbol,
                "i": stream.interval,
                "f": open_s,
                "L": open_s + row[8] - 1,
                "o": row[1],
                "c": row[4],
                "h": row[2],
                "l": row[3],
                "v": row[5],
                "n": row[8],
                "x": closed,
                "q": row[7],
                "V": row[9],
                "Q": row[10],
                "B": row[11],
            },
        }

    def _ticker(self, market: Market, now: float, event_ms: int) -> dict[str, Any]:
        row = self.emulator.ticker_24hr_row(market, now)
        return {
            "e": "24hrTicker",
            "E": event_ms,
            "s": row["symbol"],
            "p": row["priceChange"],
            "P": row["priceChangePercent"],
            "w": row["weightedAvgPrice"],
            "x": row["prevClosePrice"],
            "c": row["lastPrice"],
            "Q": row["lastQty"],
            "b": row["bidPrice"],
            "B": row["bidQty"],
            "a": row["askPrice"],
            "A": row["askQty"],
            "o": row["openPrice"],
            "h": row["highPrice"],
            "l": row["lowPrice"],
            "v": row["volume"],
            "q": row["quoteVolume"],
            "O": row["openTime"],
            "C": row["closeTime"],
            "F": row["firstId"],
            "L": row["lastId"],
            "n": row["count"],
        }

    # closing
    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ping(self, conn: Connection, payload: bytes) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            if not conn.closing and not conn.ws.closed:
                await conn.ws.ping(payload)

    async def _close(
        self, conn: Connection, reason: str, code: int, message: bytes = b"Too many requests"
    ) -> None:
        """A close frame with ``code``; the first reason given is the one counted."""
        if conn.closing:
            return
        conn.closing, conn.reason = True, reason
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            await conn.ws.close(code=code, message=message)

    async def _drop(self, conn: Connection, reason: str) -> None:
        """Cut the TCP connection without a close frame, as a network failure does."""
        if conn.closing:
            return
        conn.closing, conn.reason = True, reason
        transport = conn.request.transport
        if transport is not None:
            transport.abort()

    async def drop_all(self, reason: str = "drop") -> int:
        """Drop every open connection now; how many there were."""
        conns = [c for c in self.connections.values() if not c.closing]
        for conn in conns:
            await self._drop(conn, reason)
        return len(conns)

    async def _post_drop(self, request: web.Request) -> web.Response:
        return json_response({"dropped": await self.drop_all()})

    async def _on_shutdown(self, app: web.Application) -> None:
        """Binance's ``serverShutdown`` event on every connection, then a 1001 close."""
        event_ms = int(self.emulator.wall_clock() * 1000)
        event = {"e": "serverShutdown", "E": event_ms}

        async def shut(conn: Connection) -> None:
            if conn.closing:
                return
            payload = {"stream": "!serverShutdown", "data": event} if conn.combined else event
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(json.dumps(payload, separators=(",", ":")))
                self.stats.message_out("serverShutdown")
            await self._close(conn, "shutdown", WSCloseCode.GOING_AWAY, b"Server shutdown")

        await asyncio.gather(*(shut(c) for c in list(self.connections.values())))
        if self._pusher is not None:
            self._pusher.cancel()
        if self._tasks:  # closes and pings still under way
            _, pending = await asyncio.wait(set(self._tasks), timeout=CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()


def _valid_id(value: Any) -> bool:
    """Binance's accepted ids: a 64-bit signed integer, an alphanumeric string of at most 36
    characters, or null."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -INT64 <= value < INT64
    return isinstance(value, str) and ID_STRING.fullmatch(value) is not None
