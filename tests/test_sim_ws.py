# ruff: noqa: F811  (pytest fixtures imported from tests.sim_fixtures are parameters here)
"""The emulator's Binance websocket market streams: the real ccxt.pro binance class and
aiohttp's own websocket client against it over real sockets, and one real Freqtrade bot that
takes its candles from the stream (``enable_ws``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import ccxt
import ccxt.pro
import pytest
import requests

from freqtrade_ratekit.sim import ExchangeEmulator, RunningEmulator, start_coingecko_emulator
from freqtrade_ratekit.sim.exchange import exchange_ccxt_config, start_exchange_emulator
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config, wait_for
from freqtrade_ratekit.sim.streams import STREAM_NAME, parse_stream, stream_url
from tests.sim_fixtures import (  # noqa: F401  (fixtures)
    SimClock,
    assert_setting_refused,
    clocked_exchange_emulator,
    exchange_emulator,
    make_binance_client,
    sim_clock,
)

T = TypeVar("T")
Emulator = RunningEmulator[ExchangeEmulator]
SCENARIO_TIMEOUT_S = 60.0


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), SCENARIO_TIMEOUT_S)

    return asyncio.run(bounded())


def pro_client(url: str) -> ccxt.pro.binance:
    """The unmodified ccxt.pro binance, configured as Freqtrade would with ``enable_ws``."""
    return ccxt.pro.binance(exchange_ccxt_config(url, websocket=True)["ccxt_config"])


def ws_stats(emulator: Emulator) -> dict[str, Any]:
    return emulator.stats()["websocket"]


def settled_stats(emulator: Emulator) -> dict[str, Any]:
    """The websocket stats once every connection is gone (the server finishes a handler just
    after the client's close returns)."""
    return wait_for(
        lambda: ws_stats(emulator),
        lambda stats: stats["connections"]["open"] == 0,
        10,
        "every connection closed",
    )


async def next_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10.0) -> Any:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def next_matching(
    ws: aiohttp.ClientWebSocketResponse, match: Callable[[Any], bool], timeout: float = 10.0
) -> Any:
    """The first message ``match`` accepts, skipping the others."""
    deadline = time.monotonic() + timeout
    while True:
        message = await next_json(ws, max(0.01, deadline - time.monotonic()))
        if match(message):
            return message


async def request(ws: aiohttp.ClientWebSocketResponse, body: dict[str, Any]) -> Any:
    """Send a control message; its reply (market data in between is skipped)."""
    await ws.send_str(json.dumps(body))
    return await next_matching(ws, lambda m: "result" in m or "error" in m)


async def quiet_for(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    """True if nothing arrives for ``seconds``."""
    try:
        msg = await ws.receive(timeout=seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"expected silence, got {msg}")


def tops(tickers: dict[str, Any], pairs: list[str]) -> dict[str, tuple[Any, ...]]:
    return {
        pair: (
            tickers[pair]["bid"],
            tickers[pair]["bidVolume"],
            tickers[pair]["ask"],
            tickers[pair]["askVolume"],
        )
        for pair in pairs
    }


async def watch_until(
    watch: Callable[[], Awaitable[Any]], done: Callable[[], bool], what: str
) -> None:
    for _ in range(200):
        await watch()
        if done():
            return
    raise AssertionError(f"{what}: not seen in 200 updates")


# --- the ccxt config --------------------------------------------------------------------------


def test_websocket_config_points_ccxt_pro_at_the_emulator_and_enables_ws():
    block = exchange_ccxt_config("http://127.0.0.1:9", ["BTC/USDT"], websocket=True)
    assert block["enable_ws"] is True
    urls = block["ccxt_config"]["urls"]["api"]
    assert urls["public"] == "http://127.0.0.1:9/api/v3"  # REST as before
    ws = urls["ws"]
    assert ws["spot"] == ws["margin"] == "ws://127.0.0.1:9/ws" == stream_url("http://127.0.0.1:9")
    assert ws["linear"] == "ws://127.0.0.1:9/_fstream/ws"  # not served, never the internet
    assert ws["ws-api"]["spot"] == "ws://127.0.0.1:9/_ws-api/ws-api/v3"
    flat = [v for v in ws.values() if isinstance(v, str)] + list(ws["ws-api"].values())
    assert all(url.startswith("ws://127.0.0.1:9/") for url in flat)
    assert "ws" not in exchange_ccxt_config("http://127.0.0.1:9")["ccxt_config"]["urls"]["api"]
    client = ccxt.pro.binance(block["ccxt_config"])
    assert client.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:9/ws"
    assert stream_url("https://example.test:8443/") == "wss://example.test:8443/ws"


def test_stream_names():
    assert parse_stream("btcusdt@bookTicker") is not None
    kline = parse_stream("ethusdt@kline_1m")
    assert kline is not None
    assert (kline.kind, kline.symbol, kline.interval, kline.timeframe_s) == (
        "kline",
        "ETHUSDT",
        "1m",
        60,
    )
    assert parse_stream("ethusdt@kline_7m") is None  # well-formed, not served
    assert parse_stream("btcusdt@kline_1m@+08:00") is None
    assert parse_stream("!miniTicker@arr") is None
    for good in ("btcusdt@aggTrade", "btcusdt@depth5@100ms", "!miniTicker@arr", "x@kline_1m"):
        assert STREAM_NAME.fullmatch(good), good
    for bad in ("BTCUSDT@bookTicker", "btcusdt", "btcusdt@", "@@@x###", "0", "btc usdt@trade"):
        assert not STREAM_NAME.fullmatch(bad), bad


# --- ccxt.pro: the same values as REST ----------------------------------------------------


def test_watch_bids_asks_equals_rest_book_tickers(
    clocked_exchange_emulator: Emulator, sim_clock: SimClock
):
    """Book tickers over the stream equal REST's `fetch_bids_asks` at the same (simulated)
    instant: for pinned symbols, after a re-pin, and for a symbol on the seed's path."""
    emulator = clocked_exchange_emulator
    emulator.update(pinned_prices={"ETH/USDT": 3000, "BTC/USDT": 61000.5})
    rest = make_binance_client(emulator.url)
    rest.load_markets()
    pairs = ["ETH/USDT", "BTC/USDT", "SOL/USDT"]

    async def scenario() -> None:
        ex = pro_client(emulator.url)
        try:
            await watch_until(
                lambda: ex.watch_bids_asks(pairs),
                lambda: set(pairs) <= set(ex.bidsasks),
                "all three book tickers",
            )
            assert tops(ex.bidsasks, pairs) == tops(rest.fetch_bids_asks(pairs), pairs)
            assert ex.bidsasks["ETH/USDT"]["bid"] == 2999.25  # the pin, tick-rounded

            emulator.update(pinned_prices={"ETH/USDT": 3100, "BTC/USDT": 61000.5})
            await watch_until(
                lambda: ex.watch_bids_asks(pairs),
                lambda: ex.bidsasks["ETH/USDT"]["bid"] > 3050,
                "the re-pinned quote",
            )
            assert tops(ex.bidsasks, pairs) == tops(rest.fetch_bids_asks(pairs), pairs)

            before = tops(ex.bidsasks, ["SOL/USDT"])
            sim_clock.advance(1.5)  # the seed's path moves; the pins do not
            await watch_until(
                lambda: ex.watch_bids_asks(pairs),
                lambda: tops(ex.bidsasks, ["SOL/USDT"]) != before,
                "SOL's next quote",
            )
            assert tops(ex.bidsasks, pairs) == tops(rest.fetch_bids_asks(pairs), pairs)
        finally:
            await ex.close()

    run(scenario)
    stats = settled_stats(emulator)
    assert stats["messages_out"]["by_kind"]["bookTicker"] >= 3
    assert stats["connections"]["total"] == 1


def test_watch_ohlcv_equals_rest_klines_for_the_same_candle(
    clocked_exchange_emulator: Emulator, sim_clock: SimClock
):
    emulator = clocked_exchange_emulator
    sim_clock.now = 1_790_000_010.5  # 10.5 s into a minute
    emulator.update(pinned_prices={"ETH/USDT": 3000})  # inside this candle: not flat
    rest = make_binance_client(emulator.url)
    rest.load_markets()
    minute_ms = 60_000
    open_ms = (int(sim_clock.now) // 60) * minute_ms

    async def scenario() -> None:
        ex = pro_client(emulator.url)
        try:
            candles = await ex.watch_ohlcv("ETH/USDT", "1m")
            assert candles[-1][0] == open_ms
            assert candles[-1] == rest.fetch_ohlcv("ETH/USDT", "1m", limit=1)[0]

            sim_clock.advance(60)  # the candle closes: its final state, then the new one
            stored = ex.ohlcvs["ETH/USDT"]["1m"]
            await watch_until(
                lambda: ex.watch_ohlcv("ETH/USDT", "1m"),
                lambda: stored[-1][0] == open_ms + minute_ms,
                "the next candle",
            )
            assert list(stored[-2:]) == rest.fetch_ohlcv("ETH/USDT", "1m", limit=2)
            assert stored[-1][1:5] == [3000.0] * 4  # wholly inside the pin: flat

            symbols = [["ETH/USDT", "1m"], ["BTC/USDT", "5m"]]
            await watch_until(
                lambda: ex.watch_ohlcv_for_symbols(symbols),
                lambda: "5m" in ex.ohlcvs.get("BTC/USDT", {}),
                "BTC's 5m candle",
            )
            btc = ex.ohlcvs["BTC/USDT"]["5m"]
            assert btc[-1] == rest.fetch_ohlcv("BTC/USDT", "5m", limit=1)[0]
            assert list(stored[-2:]) == rest.fetch_ohlcv("ETH/USDT", "1m", limit=2)
        finally:
            await ex.close()

    run(scenario)
    subscriptions = settled_stats(emulator)["subscriptions"]
    assert subscriptions["subscribed"] == 2  # ETH 1m once, BTC 5m


KLINE_KEYS = ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]


def test_kline_and_ticker_payloads_are_binances_and_equal_the_rest_rows(
    clocked_exchange_emulator: Emulator, sim_clock: SimClock
):
    emulator = clocked_exchange_emulator
    sim_clock.now = 1_790_000_030.0
    url = stream_url(emulator.url)

    def rest_kline(open_ms: int) -> list[Any]:
        params = {"symbol": "SOLUSDT", "interval": "1m", "startTime": open_ms, "limit": 1}
        return requests.get(f"{emulator.url}/api/v3/klines", params=params).json()[0]

    def as_row(k: dict[str, Any]) -> list[Any]:
        keys = ("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q", "B")
        return [k[key] for key in keys]

    async def scenario() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{url}/solusdt@kline_1m") as ws,
        ):
            first = await next_json(ws)
            assert list(first) == ["e", "E", "s", "k"]
            assert (first["e"], first["s"], first["E"]) == ("kline", "SOLUSDT", 1_790_000_030_000)
            assert list(first["k"]) == KLINE_KEYS
            assert first["k"]["x"] is False and first["k"]["i"] == "1m"
            open_ms = first["k"]["t"]
            assert as_row(first["k"]) == rest_kline(open_ms)

            sim_clock.advance(45)  # past the close
            closed = await next_matching(ws, lambda m: m["k"]["x"])
            assert closed["k"]["t"] == open_ms
            assert as_row(closed["k"]) == rest_kline(open_ms)  # the final candle
            following = await next_json(ws)
            assert following["k"]["t"] == open_ms + 60_000 and following["k"]["x"] is False

        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{url}/solusdt@ticker") as ws,
        ):
            ticker = await next_json(ws)
            rest = requests.get(
                f"{emulator.url}/api/v3/ticker/24hr", params={"symbol": "SOLUSDT"}
            ).json()
            assert ticker["e"] == "24hrTicker"
            assert (ticker["b"], ticker["a"], ticker["c"], ticker["o"]) == (
                rest["bidPrice"],
                rest["askPrice"],
                rest["lastPrice"],
                rest["openPrice"],
            )
            assert (ticker["v"], ticker["O"], ticker["C"]) == (
                rest["volume"],
                rest["openTime"],
                rest["closeTime"],
            )

    run(scenario)


# --- the protocol with aiohttp's own client -------------------------------------------------


def test_subscribe_list_unsubscribe(exchange_emulator: Emulator):
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            params = ["ethusdt@bookTicker", "btcusdt@aggTrade"]  # aggTrade: listed, not served
            reply = await request(ws, {"method": "SUBSCRIBE", "params": params, "id": 1})
            assert reply == {"result": None, "id": 1}
            book = await next_matching(ws, lambda m: "u" in m)
            assert list(book) == ["u", "s", "b", "B", "a", "A"]
            assert book["s"] == "ETHUSDT" and float(book["b"]) < float(book["a"])
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "list2"})
            assert listed == {"result": params, "id": "list2"}
            reply = await request(
                ws, {"method": "UNSUBSCRIBE", "params": ["ethusdt@bookTicker"], "id": 3}
            )
            assert reply == {"result": None, "id": 3}
            # a book ticker is sent at least every second while subscribed
            assert await quiet_for(ws, 1.6)
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": None})
            assert listed == {"result": ["btcusdt@aggTrade"], "id": None}
            stats = ws_stats(exchange_emulator)
            assert stats["subscriptions"]["active_by_kind"] == {"unserved": 1}
            assert stats["connections"]["list"][0]["streams"] == ["btcusdt@aggTrade"]

        # a raw stream in the path; ccxt.pro's /ws/<n> subscribes nothing
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{url}/btcusdt@bookTicker") as ws:
                assert (await next_json(ws))["s"] == "BTCUSDT"
                listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
                assert listed["result"] == ["btcusdt@bookTicker"]
            async with session.ws_connect(f"{url}/0") as ws:
                listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
                assert listed["result"] == []

    run(scenario)
    stats = settled_stats(exchange_emulator)
    assert stats["connections"]["open"] == 0 and stats["connections"]["total"] == 3
    subscriptions = stats["subscriptions"]
    assert (subscriptions["active"], subscriptions["active_by_kind"]) == (0, {})
    assert (subscriptions["subscribed"], subscriptions["unsubscribed"]) == (3, 1)
    assert stats["messages_in"]["by_kind"]["SUBSCRIBE"] == 1
    assert stats["messages_in"]["by_kind"]["LIST_SUBSCRIPTIONS"] == 4
    assert stats["messages_out"]["by_kind"]["bookTicker"] >= 2
    assert stats["disconnects"] == {"client": 3}


def test_combined_streams_wrap_payloads_and_the_combined_property(exchange_emulator: Emulator):
    base = exchange_emulator.url.replace("http://", "ws://")
    names = ["ethusdt@bookTicker", "btcusdt@kline_1m"]

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{base}/stream?streams={'/'.join(names)}") as ws:
                seen: dict[str, Any] = {}
                while set(seen) != set(names):
                    message = await next_json(ws)
                    assert list(message) == ["stream", "data"]
                    seen[message["stream"]] = message["data"]
                assert seen["ethusdt@bookTicker"]["s"] == "ETHUSDT"
                assert seen["btcusdt@kline_1m"]["k"]["i"] == "1m"
                got = await request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 1})
                assert got == {"result": True, "id": 1}
                reply = await request(
                    ws, {"method": "SET_PROPERTY", "params": ["combined", False], "id": 2}
                )
                assert reply == {"result": None, "id": 2}
                raw = await next_matching(ws, lambda m: "result" not in m)
                assert "stream" not in raw and ("u" in raw or raw.get("e") == "kline")
            async with session.ws_connect(f"{base}/ws") as ws:
                got = await request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 1})
                assert got == {"result": False, "id": 1}

    run(scenario)


BAD_REQUESTS: list[tuple[str, int, str, Any]] = [
    ("not json", 3, "Invalid JSON: expected value at line 1 column 1", "absent"),
    ("[1, 2]", 2, "Invalid request", "absent"),
    ('{"params": [], "id": 1}', 2, "Invalid request: missing field `method`", "absent"),
    (
        '{"method": "SUBSCRIBEX", "params": [], "id": 1}',
        2,
        "Invalid request: unknown variant `SUBSCRIBEX`, expected one of `SUBSCRIBE`",
        "absent",
    ),
    (
        '{"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"]}',
        2,
        "Invalid request: request ID must be an unsigned integer",
        "absent",
    ),
    ('{"method": "LIST_SUBSCRIPTIONS", "id": 1.5}', 2, "request ID must be", "absent"),
    ('{"method": "LIST_SUBSCRIPTIONS", "id": true}', 2, "request ID must be", "absent"),
    ('{"method": "LIST_SUBSCRIPTIONS", "id": "a-b"}', 2, "request ID must be", "absent"),
    (json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "x" * 37}), 2, "request ID", "absent"),
    (json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2**63}), 2, "request ID", "absent"),
    ('{"method": "LIST_SUBSCRIPTIONS", "id": 4, "x": 1}', 2, "too many parameters", 4),
    ('{"method": "SUBSCRIBE", "params": "btcusdt@bookTicker", "id": 5}', 2, "invalid stream", 5),
    ('{"method": "SUBSCRIBE", "params": ["BTCUSDT@bookTicker"], "id": 6}', 2, "invalid stream", 6),
    (
        '{"method": "SUBSCRIBE", "params": ["ethusdt@bookTicker", 5], "id": 7}',
        2,
        "Invalid request: invalid stream",
        7,
    ),
    (
        '{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 8}',
        1,
        "Invalid value type: expected Boolean",
        8,
    ),
    ('{"method": "SET_PROPERTY", "params": ["other", true], "id": 9}', 0, "Unknown property", 9),
    (
        '{"method": "GET_PROPERTY", "params": [5], "id": 10}',
        2,
        "Invalid request: property name must be a string",
        10,
    ),
]


@pytest.mark.parametrize(("text", "code", "msg", "request_id"), BAD_REQUESTS)
def test_bad_requests_get_binances_error_replies_and_change_nothing(
    exchange_emulator: Emulator, text: str, code: int, msg: str, request_id: Any
):
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(text)
            reply = await next_json(ws)
            assert reply["error"]["code"] == code
            assert msg in reply["error"]["msg"]
            if request_id == "absent":
                assert "id" not in reply
            else:
                assert reply["id"] == request_id
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 99})
            assert listed == {"result": [], "id": 99}  # still open, nothing subscribed

    run(scenario)
    stats = settled_stats(exchange_emulator)
    assert stats["messages_in"]["by_kind"] == {"invalid": 1, "LIST_SUBSCRIPTIONS": 1}
    assert stats["messages_out"]["by_kind"] == {"error": 1, "reply": 1}


def test_signed_and_string_ids_and_binary_frames(exchange_emulator: Emulator):
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            assert (await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": -5}))["id"] == -5
            reply = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "A" * 36})
            assert reply["id"] == "A" * 36
            await ws.send_bytes(b"\x00\x01")
            assert (await next_json(ws))["error"]["code"] == 3

    run(scenario)


# --- limits -------------------------------------------------------------------------------


def test_the_sixth_message_in_a_second_disconnects(exchange_emulator: Emulator):
    url = stream_url(exchange_emulator.url)
    listing = json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1})

    async def burst(ws: aiohttp.ClientWebSocketResponse, count: int) -> None:
        for _ in range(count):
            await ws.send_str(listing)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await burst(ws, 5)
            for _ in range(5):
                assert await next_json(ws) == {"result": [], "id": 1}
            await asyncio.sleep(1.1)  # the window of the first five has passed
            await burst(ws, 5)
            for _ in range(5):
                assert await next_json(ws) == {"result": [], "id": 1}
            await burst(ws, 1)  # the 6th within a second
            closing = await ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert closing.data == aiohttp.WSCloseCode.POLICY_VIOLATION  # 1008
            assert closing.extra == "Too many requests"

    run(scenario)
    stats = settled_stats(exchange_emulator)
    assert stats["disconnects"] == {"too_many_messages": 1}
    assert stats["messages_in"]["by_kind"] == {"LIST_SUBSCRIPTIONS": 10, "over_limit": 1}


def test_a_connection_listens_to_at_most_1024_streams(exchange_emulator: Emulator):
    symbols = [m.symbol.lower() for m in exchange_emulator.emulator.universe.markets.values()]
    names = [f"{s}@{kind}" for kind in ("trade", "aggTrade", "depth") for s in symbols]
    assert len(names) > 1024
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            reply = await request(ws, {"method": "SUBSCRIBE", "params": names[:1024], "id": 1})
            assert reply == {"result": None, "id": 1}
            refused = await request(
                ws, {"method": "SUBSCRIBE", "params": names[1023:1025], "id": 2}
            )
            assert refused["id"] == 2 and refused["error"]["code"] == 2
            assert "at most 1024" in refused["error"]["msg"]
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert listed["result"] == names[:1024]  # the refused request added nothing

        # the same limit on the streams named in the URL (a small one: URLs are short)
        exchange_emulator.update(ws_max_streams=3)
        base = exchange_emulator.url.replace("http://", "ws://")
        three = "/".join(names[:3])
        async with session_ws(f"{base}/stream?streams={three}") as ws:
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4})
            assert listed["result"] == names[:3]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused_url:
            async with session_ws(f"{base}/stream?streams={three}/{names[3]}"):
                pass
        assert refused_url.value.status == 400

    run(scenario)
    stats = settled_stats(exchange_emulator)
    assert stats["connections"]["refused_by_reason"] == {"too_many_streams": 1}
    assert stats["subscriptions"]["subscribed"] == 1024 + 3


class session_ws:
    """``aiohttp.ClientSession().ws_connect(url)`` with its own session."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url, self.kwargs = url, kwargs

    async def __aenter__(self) -> aiohttp.ClientWebSocketResponse:
        self.session = aiohttp.ClientSession()
        try:
            self.ws = await self.session.ws_connect(self.url, **self.kwargs)
        except BaseException:
            await self.session.close()
            raise
        return self.ws

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self.session.close()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_connect_attempts_past_the_limit_get_429_with_retry_after():
    clock = FakeClock()
    emulator = ExchangeEmulator({"ws_connects_per_5m": 3}, clock=clock)
    with RunningEmulator(emulator).start() as running:
        url = stream_url(running.url)

        async def attempt(ip: str = "10.0.0.1") -> int:
            try:
                async with session_ws(url, headers={"X-Sim-Client-Ip": ip}):
                    return 101
            except aiohttp.WSServerHandshakeError as err:
                assert err.headers is not None
                if err.status == 429:
                    return -int(err.headers["Retry-After"])
                return err.status

        async def at(now: float, ip: str = "10.0.0.1") -> int:
            clock.now = now
            return await attempt(ip)

        async def scenario() -> None:
            assert [await at(t) for t in (1000, 1100, 1200)] == [101] * 3
            # Every attempt counts, this refused one too: the next fits once two have left
            # the 5 minutes (1000's at 1300, 1100's at 1400)
            assert await at(1250) == -150
            assert await at(1250, "10.0.0.2") == 101  # per IP
            # 1100, 1200, 1250 and this one are in the window: 1200's leaves at 1500
            assert await at(1310) == -190
            assert await at(1500) == 101

            # ccxt.pro sees the refusal and backs off for Retry-After
            running.update(ws_connects_per_5m=0)
            ex = pro_client(running.url)
            try:
                with pytest.raises(ccxt.NetworkError, match="429"):
                    await ex.watch_bids_asks(["ETH/USDT"])
                (state,) = ex.ws_dial_backoff.values()
                assert state["until"] - ex.milliseconds() > 200_000
            finally:
                await ex.close()

        run(scenario)
        stats = running.stats()["websocket"]["connections"]
        assert stats["refused_by_reason"] == {"connect_limit": 3}
        assert stats["total"] == 5

        body = requests.get(f"{running.url}/ws", timeout=5)  # not an upgrade
        assert body.status_code == 400


# --- faults ---------------------------------------------------------------------------------


def test_drop_disconnects_ccxt_which_reconnects_once_it_stops(exchange_emulator: Emulator):
    async def scenario() -> None:
        ex = pro_client(exchange_emulator.url)
        try:
            await ex.watch_bids_asks(["ETH/USDT"])
            exchange_emulator.update(ws_drop=1.0)
            with pytest.raises(ccxt.NetworkError):
                for _ in range(100):
                    await ex.watch_bids_asks(["ETH/USDT"])
            exchange_emulator.update(ws_drop=0.0)
            ticker = (await ex.watch_bids_asks(["ETH/USDT"]))["ETH/USDT"]
            assert ticker["bid"] < ticker["ask"]
        finally:
            await ex.close()

    run(scenario)
    stats = settled_stats(exchange_emulator)
    assert stats["disconnects"]["drop"] >= 1
    assert stats["connections"]["total"] >= 2


def test_the_drop_route_cuts_every_connection_now(exchange_emulator: Emulator):
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with session_ws(f"{url}/ethusdt@bookTicker") as a, session_ws(url) as b:
            await next_json(a)
            await request(b, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            dropped = await asyncio.to_thread(
                requests.post, f"{exchange_emulator.url}/_sim/ws/drop", timeout=5
            )
            assert dropped.json() == {"dropped": 2}
            for ws in (a, b):
                while (msg := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
                    pass
                assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

    run(scenario)
    assert settled_stats(exchange_emulator)["disconnects"] == {"drop": 2}


def test_pause_stops_market_data_but_not_control_replies(exchange_emulator: Emulator):
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with session_ws(f"{url}/ethusdt@bookTicker") as ws:
            await next_json(ws)
            exchange_emulator.update(ws_pause=True)
            await asyncio.sleep(0.3)
            while not await quiet_or_drained(ws):
                pass
            listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            assert listed == {"result": ["ethusdt@bookTicker"], "id": 1}
            assert await quiet_for(ws, 1.6)
            exchange_emulator.update(ws_pause=False)
            assert (await next_json(ws))["s"] == "ETHUSDT"

        ex = pro_client(exchange_emulator.url)
        try:
            await ex.watch_bids_asks(["BTC/USDT"])
            exchange_emulator.update(ws_pause=True)
            await asyncio.sleep(0.3)
            with pytest.raises(TimeoutError):
                for _ in range(20):
                    await asyncio.wait_for(ex.watch_bids_asks(["BTC/USDT"]), 1.6)
            exchange_emulator.update(ws_pause=False)
            assert "BTC/USDT" in await ex.watch_bids_asks(["BTC/USDT"])
        finally:
            await ex.close()

    run(scenario)
    assert settled_stats(exchange_emulator)["disconnects"] == {"client": 2}


async def quiet_or_drained(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Read what is in flight; True once nothing came for 0.3 s."""
    try:
        await ws.receive(timeout=0.3)
    except TimeoutError:
        return True
    return False


def test_delay_holds_every_message_back(exchange_emulator: Emulator):
    exchange_emulator.update(ws_delay_ms=800)
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with session_ws(url) as ws:
            sent = time.monotonic()
            reply = await request(
                ws, {"method": "SUBSCRIBE", "params": ["ethusdt@bookTicker"], "id": 1}
            )
            assert reply == {"result": None, "id": 1}
            assert time.monotonic() - sent >= 0.8
            assert (await next_json(ws))["s"] == "ETHUSDT"

    run(scenario)


def test_refuse_turns_new_handshakes_away_with_503(exchange_emulator: Emulator):
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with session_ws(f"{url}/ethusdt@bookTicker") as open_before:
            exchange_emulator.update(ws_refuse=True)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with session_ws(url):
                    pass
            assert refused.value.status == 503
            ex = pro_client(exchange_emulator.url)
            try:
                with pytest.raises(ccxt.NetworkError, match="503"):
                    await ex.watch_bids_asks(["ETH/USDT"])
            finally:
                await ex.close()
            assert (await next_json(open_before))["s"] == "ETHUSDT"  # not dropped
            exchange_emulator.update(ws_refuse=False)
            async with session_ws(url) as ws:
                assert (await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1}))["id"] == 1

    run(scenario)
    stats = settled_stats(exchange_emulator)["connections"]
    assert stats["refused_by_reason"] == {"ws_refuse": 2}


def test_pings_need_their_payload_back_and_connections_expire(exchange_emulator: Emulator):
    exchange_emulator.update(ws_ping_interval_s=0.3, ws_pong_timeout_s=1.0)
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        ex = pro_client(exchange_emulator.url)  # ccxt.pro answers each ping with its payload
        try:
            await ex.watch_bids_asks(["ETH/USDT"])
            async with session_ws(url, autoping=False) as silent:
                pings = 0
                while pings < 20:
                    msg = await silent.receive(timeout=10)
                    if msg.type != aiohttp.WSMsgType.PING:
                        break
                    pings += 1
                    await silent.pong(b"")  # unsolicited pongs do not count
                assert msg.type == aiohttp.WSMsgType.CLOSE
                assert msg.data == aiohttp.WSCloseCode.POLICY_VIOLATION
                assert pings >= 3
            assert "ETH/USDT" in await ex.watch_bids_asks(["ETH/USDT"])  # still connected
        finally:
            await ex.close()

        exchange_emulator.update(ws_ping_interval_s=0, ws_max_lifetime_s=0.5)
        async with session_ws(url) as expiring:
            msg = await expiring.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.OK

    run(scenario)
    stats = settled_stats(exchange_emulator)
    assert stats["disconnects"] == {"pong_timeout": 1, "lifetime": 1, "client": 1}
    assert stats["messages_in"]["by_kind"]["pong"] >= 4  # the silent one's and ccxt's


def test_stopping_the_emulator_sends_server_shutdown():
    running = start_exchange_emulator()
    url = running.url.replace("http://", "ws://")

    async def scenario() -> tuple[Any, aiohttp.WSMessage]:
        async with session_ws(f"{url}/stream?streams=ethusdt@bookTicker") as ws:
            await next_json(ws)
            stopping = asyncio.ensure_future(asyncio.to_thread(running.stop))
            event = await next_matching(ws, lambda m: m["stream"] == "!serverShutdown")
            closing = await ws.receive(timeout=10)
            await stopping
            return event, closing

    try:
        event, closing = run(scenario)
    finally:
        running.stop()
    assert event["data"]["e"] == "serverShutdown" and isinstance(event["data"]["E"], int)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.GOING_AWAY


# --- the control surface ----------------------------------------------------------------------


BAD_WS_SETTINGS = [
    ("ws_connects_per_5m", -1, "-1"),
    ("ws_connects_per_5m", 2.5, "2.5"),
    ("ws_max_streams", float("inf"), "inf"),
    ("ws_max_incoming_per_s", 0, "0"),
    ("ws_ping_interval_s", -1, "-1"),
    ("ws_pong_timeout_s", 0, "0"),
    ("ws_max_lifetime_s", float("nan"), "nan"),
    ("ws_drop", 1.5, "1.5"),
    ("ws_drop", "all", "'all'"),
    ("ws_pause", 1, "1"),
    ("ws_delay_ms", -5, "-5"),
    ("ws_refuse", "yes", "'yes'"),
]


@pytest.mark.parametrize(("key", "value", "shown"), BAD_WS_SETTINGS)
def test_ws_settings_are_validated(exchange_emulator: Emulator, key: str, value: Any, shown: str):
    assert_setting_refused(exchange_emulator, key, value, shown)


def test_settings_list_the_ws_defaults(exchange_emulator: Emulator):
    settings = requests.get(f"{exchange_emulator.url}/_sim/settings", timeout=5).json()
    assert {k: v for k, v in settings.items() if k.startswith("ws_")} == {
        "ws_connects_per_5m": 300,
        "ws_max_streams": 1024,
        "ws_max_incoming_per_s": 5,
        "ws_ping_interval_s": 20.0,
        "ws_pong_timeout_s": 60.0,
        "ws_max_lifetime_s": 86400.0,
        "ws_drop": 0.0,
        "ws_pause": False,
        "ws_delay_ms": 0.0,
        "ws_refuse": False,
    }


def test_reset_clears_ws_counters_and_connect_windows(exchange_emulator: Emulator):
    exchange_emulator.update(ws_connects_per_5m=1)
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with session_ws(f"{url}/ethusdt@bookTicker") as ws:
            await next_json(ws)
            with pytest.raises(aiohttp.WSServerHandshakeError):
                async with session_ws(url):
                    pass
            reset = await asyncio.to_thread(
                requests.post, f"{exchange_emulator.url}/_sim/reset", timeout=5
            )
            assert reset.json() == {"ok": True}
            stats = ws_stats(exchange_emulator)
            assert stats["connections"]["open"] == 1  # still open, still listening
            assert stats["connections"]["total"] == stats["connections"]["refused"] == 0
            assert stats["subscriptions"]["active_by_kind"] == {"bookTicker": 1}
            assert stats["subscriptions"]["subscribed"] == 0
            assert stats["disconnects"] == {}
            async with session_ws(url) as again:  # the window was cleared
                assert (await request(again, {"method": "LIST_SUBSCRIPTIONS", "id": 1}))["id"] == 1

    run(scenario)
    assert settled_stats(exchange_emulator)["messages_in"]["by_kind"] == {"LIST_SUBSCRIPTIONS": 1}


def test_unknown_symbols_push_nothing(exchange_emulator: Emulator):
    exchange_emulator.update(unknown_symbols=["ETH/USDT"])
    url = stream_url(exchange_emulator.url)

    async def scenario() -> None:
        async with session_ws(f"{url}/ethusdt@bookTicker") as ws:
            assert await quiet_for(ws, 1.6)
            exchange_emulator.update(unknown_symbols=[])
            assert (await next_json(ws))["s"] == "ETHUSDT"

    run(scenario)


# --- a real Freqtrade bot ---------------------------------------------------------------------

E2E_PAIRS = ["ETH/USDT", "BTC/USDT"]
# Pinned from before the bot starts, so every candle it reads has settled: a candle it takes
# from a push just before the closing one equals the final candle REST serves.
E2E_PINS = {"ETH/USDT": 3000.0, "BTC/USDT": 61000.0}


@pytest.fixture
def ws_bot(tmp_path: Path) -> Iterator[tuple[BotProcess, Emulator]]:
    with (
        start_exchange_emulator(pinned_prices=E2E_PINS) as exchange,
        start_coingecko_emulator() as coingecko,
    ):
        config = make_bot_config(
            exchange.url,
            coingecko.url,
            find_free_port(),
            pairs=E2E_PAIRS,
            max_open_trades=1,
            extra={"timeframe": "1m"},
        )
        config["exchange"] = exchange_ccxt_config(exchange.url, E2E_PAIRS, websocket=True)
        bot = BotProcess(config, tmp_path, with_ratekit=False)
        with bot:
            yield bot, exchange


def rest_kline_calls(exchange: Emulator) -> int:
    return int(exchange.stats()["endpoints"].get("/api/v3/klines", {}).get("calls", 0))


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_freqtrade_takes_its_candles_from_the_stream(ws_bot: tuple[BotProcess, Emulator]):
    """Stock Freqtrade with ``enable_ws`` subscribes each pair's klines; once a candle closes,
    the new candle reaches its dataframe with no REST klines call."""
    bot, exchange = ws_bot
    streams = wait_for(
        lambda: ws_stats(exchange),
        lambda s: (
            s["subscriptions"]["active_by_kind"].get("kline", 0) >= len(E2E_PAIRS)
            and s["messages_out"]["by_kind"].get("kline", 0) >= len(E2E_PAIRS)
        ),
        60,
        "the bot's kline subscriptions and first pushes",
    )
    (listing,) = streams["connections"]["list"]
    assert sorted(listing["streams"]) == ["btcusdt@kline_1m", "ethusdt@kline_1m"]
    assert rest_kline_calls(exchange) >= len(E2E_PAIRS)  # the start-up history is REST's

    # The next minute boundary at least 3 s (one push) away; until then no candle is due.
    boundary = (int(time.time() + 3) // 60 + 1) * 60
    time.sleep(max(0.0, boundary - 1.5 - time.time()))
    calls_before = rest_kline_calls(exchange)
    closed_ms = (boundary - 60) * 1000

    def last_candles() -> dict[str, int]:
        stops = {}
        for pair in E2E_PAIRS:
            status, body, _ = bot.get(f"/api/v1/pair_candles?pair={pair}&timeframe=1m&limit=3")
            stops[pair] = body["data_stop_ts"] if status == 200 and body else 0
        return stops

    wait_for(
        last_candles,
        lambda stops: all(ts >= closed_ms for ts in stops.values()),
        45,
        f"the candle opened at {closed_ms} in the bot's dataframes",
        interval=0.5,
    )
    assert rest_kline_calls(exchange) == calls_before, "the new candle came over REST"
    assert (
        ws_stats(exchange)["messages_out"]["by_kind"]["kline"]
        > streams["messages_out"]["by_kind"]["kline"]
    )

    # ... and it is the candle REST serves for that minute
    status, body, _ = bot.get("/api/v1/pair_candles?pair=ETH/USDT&timeframe=1m&limit=3")
    assert status == 200
    row = dict(zip(body["columns"], body["data"][-1], strict=True))
    assert row["__date_ts"] == closed_ms
    rest = make_binance_client(exchange.url).fetch_ohlcv("ETH/USDT", "1m", since=closed_ms, limit=1)
    assert [row[k] for k in ("open", "high", "low", "close", "volume")] == rest[0][1:]
