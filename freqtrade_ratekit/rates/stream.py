"""Streamed prices: the exchange's websocket book tickers (ccxt.pro, unmodified), kept with the
time each one arrived, for the trading batch (rule 1) to serve while younger than the trading
maximum age.

Why its own ccxt.pro client and event loop, not Freqtrade's `ExchangeWS`: Freqtrade's loop
resets its client (`reset_connections`) when candles misbehave, which would drop these
subscriptions too, and a price stream that stalls must not delay Freqtrade's candles. One more
connection per bot is what that costs, and connects are charged to the exchange's connection
pool (rule 10: Binance allows 300 connection attempts per 5 minutes per IP), shared through the
weights backend like REST weight.

The stream follows the pairs the bot prices (`follow`, each iteration): new pairs are
subscribed on the same connection, at most `max_streams` per connection and at most one
subscription message per `SUBSCRIBE_SPACING_S` (Binance: 5 incoming messages per second per
connection). A failing connection is retried after a full-jitter backoff, so that several bots
that lose the stream together do not reconnect together. A pair whose last message is older
than the maximum age is stale: the trading batch then falls back to REST. No Freqtrade import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from freqtrade_ratekit.documents import RatekitStream
from freqtrade_ratekit.workers import Backoff, backoff_ceiling, describe_error, full_jitter

logger = logging.getLogger(__name__)

SUBSCRIBE_SPACING_S = 0.25
"""At most 4 subscription messages per second per connection: under Binance's 5 incoming
messages per second ("WebSocket Streams for Binance", Websocket Limits, read 2026-12-02:
https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams)."""

MAX_STREAMS = 1024
"""Streams per connection (Binance, same page): pairs beyond it are not streamed (REST serves)."""

STREAMS_PER_CONNECTION = {"binance": MAX_STREAMS, "bitfinex": 25}
"""Bitfinex: 25 channels per public connection (https://docs.bitfinex.com/docs/ws-public,
read 2026-12-02); exchanges not listed get Binance's 1024."""

JOIN_TIMEOUT_S = 5.0

CONNECT_BACKOFF = Backoff(base=1.0, cap=60.0)


class PriceStream:
    """One exchange's streamed book tickers, in a thread and event loop of its own.

    make_client: `() -> ccxt.pro exchange`, a new client per connection (markets already set).
    method: `watch_bids_asks` (book tickers: bid/ask) or `watch_tickers` (with `last`).
    admit_connect: `async () -> seconds waited`, charges one connection attempt to the
        exchange's connection pool (waits under `enforce`).
    """

    def __init__(
        self,
        *,
        make_client: Callable[[], Any],
        method: str = "watch_bids_asks",
        admit_connect: Callable[[], Awaitable[float]] | None = None,
        max_streams: int = MAX_STREAMS,
        backoff: Backoff = CONNECT_BACKOFF,
        rng: random.Random | None = None,
        timer: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        name: str = "ratekit-stream",
    ) -> None:
        self._make_client = make_client
        self.method = method
        self._admit_connect = admit_connect
        self._max_streams = max_streams
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._timer = timer
        self._wall_clock = wall_clock
        self._name = name
        self._lock = threading.Lock()
        self._wanted: tuple[str, ...] = ()
        self._latest: dict[str, tuple[Mapping[str, Any], float]] = {}
        self._seen: dict[str, Any] = {}  # the last ccxt cache entry taken, per symbol
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None  # new pairs to subscribe (or a stop)
        self._stopped: asyncio.Event | None = None
        self._stopping = False
        # figures
        self._connected = False
        self._connects = 0
        self._failures = 0
        self._consecutive_failures = 0
        self._messages = 0
        self._subscriptions = 0
        self._subscribed: set[str] = set()
        self._connect_wait_s = 0.0
        self._last_message_at: float | None = None
        self._last_error: str | None = None
        self._retry_at: float | None = None

    # -- control (any thread) ----------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """End the stream and join its thread (up to `timeout`). True when it ended."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake("_changed", "_stopped")
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def follow(self, pairs: Iterable[str]) -> None:
        """The pairs to stream from now on (the bot's open trades and entry candidates)."""
        wanted = tuple(dict.fromkeys(pairs))[: self._max_streams]
        with self._lock:
            if set(wanted) <= set(self._wanted):
                return  # subscribed pairs are kept: re-subscribing costs messages
            self._wanted = tuple(dict.fromkeys((*self._wanted, *wanted)))[: self._max_streams]
        self._wake("_changed")

    def _wake(self, *events: str) -> None:
        """Set the stream loop's events from another thread."""
        with self._lock:
            loop = self._loop
            targets = [getattr(self, name) for name in events]
        if loop is None or loop.is_closed():
            return
        for event in targets:
            if event is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed in between
                    loop.call_soon_threadsafe(event.set)

    # -- reads (any thread) ------------------------------------------------------------------

    def ticker(self, pair: str, max_age: float) -> tuple[Mapping[str, Any], float] | None:
        """The streamed ticker of `pair` and its age, when it arrived less than `max_age` ago."""
        with self._lock:
            found = self._latest.get(pair)
        if found is None:
            return None
        ticker, arrived = found
        age = max(0.0, self._timer() - arrived)
        return (ticker, age) if age < max_age else None

    def covers(self, pairs: Iterable[str], max_age: float) -> bool:
        """Whether every one of `pairs` has a streamed ticker younger than `max_age`."""
        now = self._timer()
        with self._lock:
            return all(
                (found := self._latest.get(pair)) is not None and now - found[1] < max_age
                for pair in pairs
            )

    # -- the loop (its own thread) -----------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        changed, stopped = asyncio.Event(), asyncio.Event()
        with self._lock:
            self._loop, self._changed, self._stopped = loop, changed, stopped
            if self._stopping:
                stopped.set()
        try:
            loop.run_until_complete(self._main(changed, stopped))
        except Exception:  # never leak out of the thread; the figures say what happened
            logger.exception("ratekit price stream stopped")
        finally:
            with self._lock:
                self._connected = False
                self._loop = None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self, changed: asyncio.Event, stopped: asyncio.Event) -> None:
        while not self._stopping:
            with self._lock:
                wanted = self._wanted
            if not wanted:
                await _wait(changed, 1.0)
                changed.clear()
                continue
            try:
                await self._connection(changed)
            except Exception as exc:
                self._fail(exc)
            with self._lock:
                delay = 0.0 if self._retry_at is None else max(0.0, self._retry_at - self._timer())
            if delay and not self._stopping:
                await _wait(stopped, delay)  # new pairs do not cut a backoff short

    async def _connection(self, changed: asyncio.Event) -> None:
        """One connection: connect (charged), subscribe, and read until stopped or failed."""
        if self._admit_connect is not None:
            waited = await self._admit_connect()
            with self._lock:
                self._connect_wait_s += waited
        client = self._make_client()
        with self._lock:
            self._connects += 1
            self._subscribed = set()
        try:
            while not self._stopping:
                with self._lock:
                    wanted = self._wanted
                if set(wanted) - self._subscribed:
                    with self._lock:
                        self._subscriptions += 1
                        self._subscribed = set(wanted)
                    spacing = self._timer() + SUBSCRIBE_SPACING_S
                else:
                    spacing = None
                changed.clear()
                watch = asyncio.ensure_future(getattr(client, self.method)(list(wanted)))
                wake = asyncio.ensure_future(changed.wait())
                done, _ = await asyncio.wait({watch, wake}, return_when=asyncio.FIRST_COMPLETED)
                if watch in done:
                    wake.cancel()
                    self._received(watch.result(), self._cache_of(client), wanted)
                else:
                    watch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await watch
                if spacing is not None and (pause := spacing - self._timer()) > 0:
                    await asyncio.sleep(pause)  # keep under the per-connection message limit
        finally:
            with self._lock:
                self._connected = False
            with contextlib.suppress(Exception):
                await client.close()

    def _cache_of(self, client: Any) -> Mapping[str, Any]:
        """ccxt.pro's own cache of the latest update per symbol (`bidsasks` or `tickers`)."""
        cache = getattr(client, "bidsasks" if self.method == "watch_bids_asks" else "tickers", None)
        return cache if isinstance(cache, Mapping) else {}

    def _received(self, update: Any, cache: Mapping[str, Any], wanted: Iterable[str]) -> None:
        """Record what arrived: the watch's answer holds only the update that woke it, so the
        updates of other symbols that came meanwhile are found in ccxt.pro's cache (ccxt stores
        a new dict per message: an entry not seen before is a new message)."""
        arrived: dict[str, Any] = dict(update) if isinstance(update, Mapping) else {}
        for symbol in wanted:
            entry = cache.get(symbol)
            if entry is not None and entry is not self._seen.get(symbol):
                arrived.setdefault(symbol, entry)
        now = self._timer()
        with self._lock:
            for symbol, ticker in arrived.items():
                self._seen[str(symbol)] = cache.get(symbol, ticker)
                if isinstance(ticker, Mapping) and priced(ticker):
                    self._latest[str(symbol)] = (dict(ticker), now)
                    self._messages += 1
            self._connected = True
            self._consecutive_failures = 0
            self._retry_at = None
            self._last_message_at = self._wall_clock()

    def _fail(self, exc: Exception) -> None:
        with self._lock:
            self._connected = False
            self._failures += 1
            self._consecutive_failures += 1
            self._last_error = describe_error(exc)
            ceiling = backoff_ceiling(
                self._backoff.base, self._backoff.cap, self._consecutive_failures
            )
            self._retry_at = self._timer() + full_jitter(ceiling, self._rng)
        logger.info("ratekit price stream: %s; reconnecting with backoff", self._last_error)

    # -- figures -----------------------------------------------------------------------------

    def snapshot(self) -> RatekitStream:
        with self._lock:
            return {
                "method": self.method,
                "running": self._thread is not None and self._thread.is_alive(),
                "connected": self._connected,
                "pairs": len(self._wanted),
                "connects": self._connects,
                "connect_wait_s": self._connect_wait_s,
                "failures": self._failures,
                "consecutive_failures": self._consecutive_failures,
                "subscriptions": self._subscriptions,
                "messages": self._messages,
                "last_message_at": self._last_message_at,
                "last_error": self._last_error,
            }


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, woken early by `event`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)


def priced(ticker: Mapping[str, Any]) -> bool:
    """A ticker with a positive bid or ask: anything else cannot price a trade."""
    return any(
        isinstance(ticker.get(key), int | float) and ticker.get(key) for key in ("bid", "ask")
    )
