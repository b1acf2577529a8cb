"""BackgroundFiatConverter against a tiny real CoinGecko-like HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from freqtrade_ratekit.fiat.coin_list import CoinList, read_coin_list_file, write_coin_list_file
from freqtrade_ratekit.fiat.coingecko import (
    PRO_BASE_URL,
    PUBLIC_BASE_URL,
    CoinGeckoClient,
    CoinGeckoError,
    default_base_url,
)
from freqtrade_ratekit.fiat.converter import BackgroundFiatConverter
from freqtrade_ratekit.fiat.store import (
    InMemoryFiatStore,
    RedisFiatStore,
    SharedFiatStore,
    SharedPrice,
)
from freqtrade_ratekit.redact import mask_url
from freqtrade_ratekit.workers import MAX_PAUSE_S, parse_retry_after
from tests.helpers import FakeClock, find_free_port, ratekit_threads, wait_for
from tests.redis_fixtures import REDIS_BINARY, RedisServer

# Freqtrade's SUPPORTED_FIAT and coingecko_mapping (freqtrade 2026.9), copied so that these unit
# tests do not need Freqtrade; the parity test below checks them against the real ones.
SUPPORTED_FIAT = ["AUD", "CHF", "EUR", "GBP", "JPY", "USD", "BTC", "ETH", "BNB", ""]
OVERRIDES = {"eth": "ethereum", "btc": "bitcoin", "usdt": "tether", "bnb": "binancecoin"}

COINS = [
    {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin"},
    {"id": "ethereum", "symbol": "eth", "name": "Ethereum"},
    {"id": "ethereum-wormhole", "symbol": "eth", "name": "Ethereum (Wormhole)"},
    {"id": "tether", "symbol": "usdt", "name": "Tether"},
    {"id": "solana", "symbol": "sol", "name": "Solana"},
    {"id": "stasis-eurs", "symbol": "eur", "name": "STASIS EURO"},
    {"id": "dup-one", "symbol": "dup", "name": "Dup One"},
    {"id": "dup-two", "symbol": "DUP", "name": "Dup Two"},
]
PRICES = {
    "bitcoin": {"usd": 50000.0, "eur": 46000.0},
    "ethereum": {"usd": 3000.0, "eur": 2760.0},
    "tether": {"usd": 1.0, "eur": 0.92},
    "solana": {"usd": 150.0, "eur": 138.0},
    "stasis-eurs": {"usd": 1.08, "eur": 1.0},
}
SECRET_KEY = "CG-sekrit-abc123"


@dataclass
class FakeCoinGecko:
    """Programmable behaviour: `mode` is ok | 429 | hang | malformed | 500 | empty | deep |
    deep-prices | echo."""

    mode: str = "ok"
    coins_mode: str | None = None  # overrides `mode` for coins/list only
    retry_after: str | None = "120"
    coins: list[dict[str, str]] = field(default_factory=lambda: list(COINS))
    prices: dict[str, dict[str, float]] = field(
        default_factory=lambda: json.loads(json.dumps(PRICES))
    )
    requests: list[dict[str, Any]] = field(default_factory=list)
    hanging: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def calls(self, endpoint: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith(endpoint)]


def _make_handler(fake: FakeCoinGecko) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            fake.requests.append(
                {"path": parts.path, "query": query, "headers": dict(self.headers.items())}
            )
            is_coins = parts.path.endswith("/coins/list")
            mode = fake.coins_mode if is_coins and fake.coins_mode else fake.mode
            if mode == "hang":
                fake.hanging.set()
                fake.release.wait(10)
                return self._send(200, b"{}")
            if mode == "429":
                headers = {"Retry-After": fake.retry_after} if fake.retry_after else {}
                return self._send(429, b'{"status": {"error_code": 429}}', headers)
            if mode == "500":
                return self._send(500, b"oops")
            if mode == "malformed":
                return self._send(200, b'{"bitcoin": {"usd": 5')
            if mode == "deep":  # nesting deeper than any recursion limit
                return self._send(200, b"[" * 100_000 + b"]" * 100_000)
            if mode == "deep-prices":
                deep = b"[" * 100_000 + b"]" * 100_000
                return self._send(200, b'{"bitcoin": {"usd": ' + deep + b"}}")
            if mode == "echo":  # an error message that repeats what the caller sent
                sent = f"{self.headers.get('Authorization')} {query} {self.headers.items()}"
                body = {"status": {"error_code": 401, "error_message": f"rejected: {sent}"}}
                return self._send(401, json.dumps(body).encode())
            if is_coins:
                return self._send(200, json.dumps(fake.coins).encode())
            if parts.path.endswith("/simple/price"):
                if mode == "empty":
                    return self._send(200, b"{}")
                ids, vs = query["ids"].split(","), query["vs_currencies"].split(",")
                body = {
                    i: {v: fake.prices[i][v] for v in vs if v in fake.prices[i]}
                    for i in ids
                    if i in fake.prices
                }
                return self._send(200, json.dumps(body).encode())
            return self._send(404, b'{"error": "not found"}')

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def gecko() -> Iterator[FakeCoinGecko]:
    fake = FakeCoinGecko()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/api/v3"
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)  # stands in for time.time(): a plausible unix time


def make_converter(
    gecko: FakeCoinGecko,
    tmp_path: Path,
    clock: Any = time.time,
    **overrides: Any,
) -> BackgroundFiatConverter:
    settings: dict[str, Any] = {
        "base_url": gecko.url,
        "refresh_interval": 300.0,
        "stale_after": 900.0,
        "coin_list_path": tmp_path / "coins.json",
        "coin_list_max_age": 86400.0,
        "supported_fiat": SUPPORTED_FIAT,
        "symbol_overrides": OVERRIDES,
        "timeout": 1.0,
        "clock": clock,
        "rng": random.Random(7),
    }
    settings.update(overrides)
    return BackgroundFiatConverter(**settings)


def saved_coin_list(path: Path) -> CoinList:
    coin_list = read_coin_list_file(path)
    assert coin_list is not None
    return coin_list


def pair_info(converter: BackgroundFiatConverter, name: str) -> dict[str, Any]:
    return next(p for p in converter.snapshot()["pairs"] if p["pair"] == name)


# ---------------------------------------------------------------- readers never wait


def test_first_read_is_zero_and_the_worker_fetches_it_soon(gecko, tmp_path):
    converter = make_converter(gecko, tmp_path, refresh_interval=3600.0)
    before = ratekit_threads("fiat")
    converter.start()
    try:
        assert converter.get_price("BTC", "USD") == 0.0  # Freqtrade's "unknown"
        wait_for(
            lambda: converter.get_price("BTC", "USD"),
            lambda price: price == 50000.0,
            10,
            "the worker's first BTC/USD price",
            interval=0.01,
        )
    finally:
        converter.stop()
    assert len(gecko.calls("simple/price")) == 1
    assert not converter.is_running
    assert not ratekit_threads("fiat") - before, "the refresh thread outlived stop()"


def test_get_price_returns_last_value_while_coingecko_hangs(gecko, tmp_path):
    converter = make_converter(gecko, tmp_path, refresh_interval=3600.0, timeout=5.0)
    converter.refresh_now()
    converter.get_price("btc", "usd")
    converter.refresh_now()
    assert converter.get_price("btc", "usd") == 50000.0

    gecko.mode = "hang"
    gecko.prices["bitcoin"]["usd"] = 1.0
    converter.start()
    try:
        converter.get_price("eth", "usd")  # new pair: nudges a round, which hangs
        assert gecko.hanging.wait(10)
        started = time.monotonic()
        assert converter.get_price("btc", "usd") == 50000.0
        assert converter.get_price("eth", "usd") == 0.0
        assert converter.convert_amount(2, "BTC", "USD") == 100000.0
        snapshot = converter.snapshot()
        assert time.monotonic() - started < 1.0  # generous: the server hangs for 5 s
        assert pair_info(converter, "btc/usd")["state"] == "fresh"
        assert snapshot["calls"]["simple_price"] == 2
    finally:
        gecko.release.set()
        converter.stop()


def test_stop_returns_while_a_call_is_in_flight(gecko, tmp_path):
    gecko.mode = "hang"
    converter = make_converter(gecko, tmp_path, timeout=30.0)
    before = ratekit_threads("fiat")
    converter.start()
    converter.get_price("btc", "usd")
    assert gecko.hanging.wait(10)
    started = time.monotonic()
    converter.stop(timeout=0.2)
    assert time.monotonic() - started < 5  # returned, not held for the 30 s call
    assert converter.snapshot()["running"] is False
    (thread,) = ratekit_threads("fiat") - before
    assert thread.is_alive()  # still in its CoinGecko call...
    gecko.release.set()
    thread.join(10)
    assert not thread.is_alive()  # ...and gone as soon as the call returns, without another


def test_timeout_is_an_error_not_a_wait(gecko, tmp_path, clock):
    converter = make_converter(gecko, tmp_path, clock, timeout=0.3)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    gecko.mode = "hang"
    clock.advance(400)
    started = time.monotonic()
    converter.refresh_now()  # returns after the timeout, not the server's 10 s hang
    assert time.monotonic() - started < 0.3 + 1.0
    gecko.release.set()
    info = pair_info(converter, "btc/usd")
    assert info["price"] == 50000.0
    assert "Timeout" in info["last_error"]  # the read timeout or the (equal) total deadline


# ---------------------------------------------------------------- batching


def test_all_pairs_in_one_simple_price_call(gecko, tmp_path, clock):
    converter = make_converter(gecko, tmp_path, clock)
    for crypto, fiat in [("BTC", "USD"), ("ETH", "EUR"), ("sol", "usd"), ("usdt", "eur")]:
        assert converter.get_price(crypto, fiat) == 0.0
    converter.refresh_now()

    [call] = gecko.calls("simple/price")
    assert call["query"] == {"ids": "bitcoin,ethereum,solana,tether", "vs_currencies": "eur,usd"}
    assert converter.get_price("BTC", "USD") == 50000.0
    assert converter.get_price("ETH", "EUR") == 2760.0
    assert converter.get_price("SOL", "USD") == 150.0
    assert converter.get_price("USDT", "EUR") == 0.92
    assert converter.snapshot()["calls"]["simple_price"] == 1


def test_worker_waits_for_the_period_between_rounds(gecko, tmp_path, clock):
    converter = make_converter(gecko, tmp_path, clock, refresh_interval=300.0)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    assert pair_info(converter, "btc/usd")["next_refresh_in_s"] == 300.0
    converter.get_price("eth", "usd")  # a new pair pulls the next round in
    assert pair_info(converter, "eth/usd")["next_refresh_in_s"] == 2.0  # MIN_CALL_INTERVAL


# ---------------------------------------------------------------- 429 and errors


@pytest.mark.parametrize(
    ("header", "expected_pause"),
    [("120", 120.0), (None, 60.0), ("http-date", 90.0), ("garbage", 60.0)],
)
def test_429_pauses_until_retry_after(gecko, tmp_path, clock, header, expected_pause):
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    gecko.mode = "429"
    clock.advance(300)
    gecko.retry_after = formatdate(clock.now + 90, usegmt=True) if header == "http-date" else header
    converter.refresh_now()

    snapshot = converter.snapshot()
    assert snapshot["paused_until"] == pytest.approx(clock.now + expected_pause)
    assert snapshot["calls"]["status_429"] == 1
    assert pair_info(converter, "btc/usd")["price"] == 50000.0
    assert pair_info(converter, "btc/usd")["next_refresh_in_s"] == pytest.approx(expected_pause)
    assert "429" in pair_info(converter, "btc/usd")["last_error"]

    gecko.mode = "ok"
    gecko.prices["bitcoin"]["usd"] = 51000.0
    clock.advance(expected_pause - 1)
    converter.get_price("eth", "usd")  # a nudge does not break the pause either
    converter.refresh_now()
    assert len(gecko.calls("simple/price")) == 2

    clock.advance(1)
    converter.refresh_now()
    assert len(gecko.calls("simple/price")) == 3
    assert converter.get_price("btc", "usd") == 51000.0
    assert converter.snapshot()["paused_until"] is None


def test_429_on_coin_list_pauses_everything(gecko, tmp_path, clock):
    gecko.coins_mode = "429"
    gecko.retry_after = "30"
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("sol", "usd")
    converter.refresh_now()
    assert len(gecko.calls("coins/list")) == 1
    assert gecko.calls("simple/price") == []
    assert converter.snapshot()["paused_until"] == clock.now + 30

    gecko.coins_mode = None
    clock.advance(30)
    converter.refresh_now()
    assert converter.get_price("sol", "usd") == 150.0


@pytest.mark.parametrize("failure", ["malformed", "500", "empty"])
def test_bad_response_keeps_last_value_records_error_and_recovers(
    gecko, tmp_path, clock, failure, caplog
):
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    assert converter.get_price("btc", "usd") == 50000.0

    gecko.mode = failure
    clock.advance(1000)
    converter.refresh_now()
    info = pair_info(converter, "btc/usd")
    assert converter.get_price("btc", "usd") == 50000.0
    assert info["state"] == "stale"
    assert info["age_s"] == 1000.0
    assert info["last_error"]
    assert converter.snapshot()["consecutive_failures"] == 1
    assert converter.snapshot()["calls"]["errors"] == 1
    assert "CoinGecko price refresh failed" in caplog.text

    gecko.mode = "ok"
    gecko.prices["bitcoin"]["usd"] = 52000.0
    converter.refresh_now()
    info = pair_info(converter, "btc/usd")
    assert converter.get_price("btc", "usd") == 52000.0
    assert (info["state"], info["last_error"], info["age_s"]) == ("fresh", None, 0.0)
    assert converter.snapshot()["consecutive_failures"] == 0


def test_missing_key_for_one_pair_does_not_spoil_the_others(gecko, tmp_path, clock):
    del gecko.prices["solana"]
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("btc", "usd")
    converter.get_price("sol", "usd")
    converter.refresh_now()
    assert converter.get_price("btc", "usd") == 50000.0
    assert converter.get_price("sol", "usd") == 0.0
    assert "no usd price for solana" in pair_info(converter, "sol/usd")["last_error"]
    assert converter.snapshot()["consecutive_failures"] == 0


def test_connection_refused_is_recorded(tmp_path, clock):
    port = find_free_port()  # bound and released: nothing listens there
    dead = FakeCoinGecko(url=f"http://127.0.0.1:{port}/api/v3")
    converter = make_converter(dead, tmp_path, clock)
    converter.get_price("btc", "usd")
    converter.refresh_now()  # overrides resolve btc without the (unreachable) coin list
    assert pair_info(converter, "btc/usd")["last_error"] == "simple/price: ConnectionError"
    assert converter.snapshot()["coin_list"]["last_error"] == "coins/list: ConnectionError"


def test_backoff_grows_with_full_jitter_up_to_the_cap(gecko, tmp_path, clock):
    converter = make_converter(gecko, tmp_path, clock, backoff_base=2.0, backoff_cap=60.0)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    gecko.mode = "500"
    waits = []
    for _ in range(12):
        converter.refresh_now()
        waits.append(pair_info(converter, "btc/usd")["next_refresh_in_s"])
    ceilings = [min(60.0, 2.0 * 2**n) for n in range(12)]
    assert all(
        2.0 <= wait <= max(2.0, ceiling) for wait, ceiling in zip(waits, ceilings, strict=True)
    )
    assert max(waits[6:]) > 30.0  # reaches into the capped range
    assert len(set(waits[6:])) > 1  # jittered, not a fixed ladder
    assert converter.snapshot()["consecutive_failures"] == 12


# ---------------------------------------------------------------- coin list on disk


def test_coin_list_is_persisted_and_reused_after_restart(gecko, tmp_path, clock):
    first = make_converter(gecko, tmp_path, clock)
    first.get_price("sol", "usd")
    first.refresh_now()
    assert first.snapshot()["coin_list"]["source"] == "network"
    assert saved_coin_list(tmp_path / "coins.json").coins == COINS
    assert [p.name for p in tmp_path.iterdir()] == ["coins.json"]  # no temp file left

    clock.advance(3600)
    second = make_converter(gecko, tmp_path, clock)
    second.get_price("sol", "usd")
    second.refresh_now()
    assert second.get_price("sol", "usd") == 150.0
    assert len(gecko.calls("coins/list")) == 1
    coin_list = second.snapshot()["coin_list"]
    assert (coin_list["source"], coin_list["entries"], coin_list["age_s"]) == ("disk", 8, 3600.0)


def test_old_coin_list_is_refetched_but_used_while_coingecko_fails(gecko, tmp_path, clock):
    write_coin_list_file(tmp_path / "coins.json", CoinList(COINS, clock.now - 2 * 86400))
    gecko.coins_mode = "500"
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("sol", "usd")
    converter.refresh_now()
    assert len(gecko.calls("coins/list")) == 1
    assert converter.get_price("sol", "usd") == 150.0
    assert converter.snapshot()["coin_list"]["source"] == "disk"

    gecko.coins_mode = None
    clock.advance(400)
    converter.refresh_now()
    assert converter.snapshot()["coin_list"]["source"] == "network"
    assert saved_coin_list(tmp_path / "coins.json").fetched_at == clock.now


def test_bare_coins_list_file_is_accepted_with_mtime_as_age(gecko, tmp_path):
    path = tmp_path / "coins.json"
    path.write_text(json.dumps(COINS))
    converter = make_converter(gecko, tmp_path)
    converter.get_price("sol", "usd")
    converter.refresh_now()
    assert gecko.calls("coins/list") == []
    assert converter.get_price("sol", "usd") == 150.0


@pytest.mark.parametrize(
    "content",
    [
        b'[{"id": "bitcoin", "symbol": "btc", "na',  # truncated write
        b"\xff\xfe not utf8",
        b'{"hello": "world"}',
        b'{"fetched_at": 1, "coins": [{"no": "id"}]}',
        b"",
        b"[" * 100_000 + b"]" * 100_000,  # was an uncaught RecursionError
        b'{"fetched_at": 1, "coins": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"fetched_at": Infinity, "coins": [{"id": "solana", "symbol": "sol"}]}',  # never stale
        b'{"fetched_at": NaN, "coins": [{"id": "solana", "symbol": "sol"}]}',
        b'{"fetched_at": true, "coins": [{"id": "solana", "symbol": "sol"}]}',
        b'[{"id": ["bitcoin"], "symbol": "btc"}, {"id": "x", "symbol": {"s": 1}}, 7, null]',
    ],
)
def test_corrupt_coin_list_file_is_detected_and_refetched(gecko, tmp_path, clock, caplog, content):
    path = tmp_path / "coins.json"
    path.write_bytes(content)
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("sol", "usd")
    converter.refresh_now()
    assert "is corrupt" in caplog.text
    assert len(gecko.calls("coins/list")) == 1
    assert converter.get_price("sol", "usd") == 150.0
    assert saved_coin_list(path).coins == COINS


def test_start_does_not_wait_for_the_coin_list(gecko, tmp_path):
    gecko.mode = "hang"
    converter = make_converter(gecko, tmp_path, timeout=5.0)
    started = time.monotonic()
    converter.start()
    try:
        assert gecko.hanging.wait(10)  # the worker is stuck in coins/list...
        assert converter.get_price("sol", "usd") == 0.0  # ...and readers are not
        assert time.monotonic() - started < 1.0
    finally:
        gecko.release.set()
        converter.stop()


def test_coin_list_from_the_future_is_stale(gecko, tmp_path, clock):
    """A `fetched_at` ahead of the clock (a skewed host, a hand-edited file) must not make the
    list fresh for ever."""
    without_sol = [coin for coin in COINS if coin["id"] != "solana"]
    write_coin_list_file(tmp_path / "coins.json", CoinList(without_sol, clock.now + 10 * 86400))
    gecko.coins_mode = "500"
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    assert len(gecko.calls("coins/list")) == 1  # was: never asked
    assert converter.snapshot()["coin_list"]["source"] == "disk"  # still used meanwhile
    assert converter.snapshot()["coin_list"]["age_s"] == 0.0

    gecko.coins_mode = None
    clock.advance(400)
    converter.get_price("sol", "usd")
    converter.refresh_now()
    assert converter.snapshot()["coin_list"]["source"] == "network"
    assert saved_coin_list(tmp_path / "coins.json").fetched_at == clock.now
    converter.refresh_now()
    assert converter.get_price("sol", "usd") == 150.0


def test_shared_data_from_the_future_does_not_stop_refreshes(gecko, tmp_path, clock):
    store = InMemoryFiatStore(clock)
    store.put_coin_list(CoinList(COINS[:1], clock.now + 10 * 86400))
    store.put_prices({"bitcoin/usd": SharedPrice(1.0, clock.now + 10 * 86400)})
    converter = make_converter(gecko, tmp_path, clock, shared_store=store)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    assert len(gecko.calls("coins/list")) == 1
    assert len(gecko.calls("simple/price")) == 1  # was: "covered" by the future price for ever
    assert converter.get_price("btc", "usd") == 50000.0
    assert store.get_prices(["bitcoin/usd"])["bitcoin/usd"].fetched_at == clock.now


@pytest.mark.parametrize("mode", ["deep", "deep-prices"])
def test_hostile_nested_response_is_a_failed_call(gecko, tmp_path, clock, caplog, mode):
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    gecko.mode = mode
    clock.advance(400)
    converter.refresh_now()  # was an uncaught RecursionError
    info = pair_info(converter, "btc/usd")
    assert info["price"] == 50000.0
    assert "simple/price" in info["last_error"]
    assert converter.snapshot()["consecutive_failures"] == 1


def test_hostile_nested_coin_list_response_is_a_failed_call(gecko, tmp_path, clock):
    gecko.coins_mode = "deep"
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("btc", "usd")
    converter.refresh_now()  # was an uncaught RecursionError
    assert "coins/list" in converter.snapshot()["coin_list"]["last_error"]
    assert converter.get_price("btc", "usd") == 50000.0  # overrides work without the list
    assert not (tmp_path / "coins.json").exists()


def test_oversized_body_is_refused(gecko):
    client = CoinGeckoClient(base_url=gecko.url, timeout=1.0, max_body_bytes=100)
    with pytest.raises(CoinGeckoError, match="larger than 100 bytes"):
        client.coins_list()
    assert client.simple_price(["bitcoin"], ["usd"]) == {"bitcoin": {"usd": 50000.0}}
    client.close()


class TricklingServer:
    """A real HTTP server on 127.0.0.1 that sends its answer one byte per `interval` seconds:
    each read gets a byte well within the read timeout, so only a total deadline stops it."""

    def __init__(self, phase: str, interval: float = 1.0) -> None:
        self.phase = phase  # "body": headers at once, then the body; "headers": all of it
        self.interval = interval
        self.disconnected = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/api/v3"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        body = json.dumps(COINS).encode()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            try:
                if self.phase == "body":
                    conn.sendall(head)
                    trickled = body
                else:
                    trickled = head + body
                for i in range(len(trickled)):
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(trickled[i : i + 1])
            except OSError:  # the client hung up
                self.disconnected.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        assert not self._thread.is_alive(), "the trickling server's accept loop did not end"


@pytest.fixture(params=["body", "headers"])
def trickling(request) -> Iterator[TricklingServer]:
    server = TricklingServer(request.param)
    yield server
    server.close()


def test_a_trickling_server_cannot_hold_a_call_past_its_deadline(trickling):
    client = CoinGeckoClient(base_url=trickling.url, timeout=2.0)
    started = time.monotonic()
    with pytest.raises(CoinGeckoError, match="deadline") as raised:
        client.coins_list()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1.0  # was ~1 s per byte: minutes for a coin list
    assert "coins/list" in str(raised.value)
    assert trickling.disconnected.wait(5)  # the connection was cut, not left to trickle on
    client.close()


def test_converter_rounds_end_at_the_deadline_of_a_trickling_server(tmp_path, clock):
    server = TricklingServer("body")
    try:
        converter = make_converter(FakeCoinGecko(url=server.url), tmp_path, clock, timeout=2.0)
        converter.get_price("btc", "usd")
        started = time.monotonic()
        converter.refresh_now()  # coins/list, then simple/price: each cut at 2 s
        assert time.monotonic() - started < 2 * 2.0 + 2.0
        assert "deadline" in pair_info(converter, "btc/usd")["last_error"]
        assert "deadline" in converter.snapshot()["coin_list"]["last_error"]
    finally:
        server.close()


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("is_demo", "header"), [(True, "x-cg-demo-api-key"), (False, "x-cg-pro-api-key")]
)
def test_api_key_goes_in_a_header_and_nowhere_else(gecko, tmp_path, clock, caplog, is_demo, header):
    caplog.set_level(logging.DEBUG)
    converter = make_converter(gecko, tmp_path, clock, api_key=SECRET_KEY, is_demo=is_demo)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    gecko.mode = "500"
    clock.advance(400)
    converter.refresh_now()
    gecko.mode = "429"
    clock.advance(400)
    converter.refresh_now()

    for request in gecko.requests:
        assert {k.lower(): v for k, v in request["headers"].items()}[header] == SECRET_KEY
        assert SECRET_KEY not in json.dumps(request["query"])
    assert SECRET_KEY not in json.dumps(converter.snapshot())
    assert SECRET_KEY not in caplog.text
    assert "CoinGecko" in caplog.text  # the failures were logged, without the key


def test_base_url_credentials_are_masked(gecko, tmp_path):
    """redact.mask_url keeps the query (a proxy may need it) but masks every secret in it."""
    secret_url = gecko.url.replace("http://", "http://user:pw@") + "?x_cg_demo_api_key=k&v=1"
    masked = gecko.url.replace("http://", "http://user:***@") + "?x_cg_demo_api_key=***&v=1"
    assert mask_url(secret_url) == masked
    assert mask_url(gecko.url + "#frag") == gecko.url
    converter = make_converter(gecko, tmp_path, base_url=f"{gecko.url}/?token=abc")
    assert converter.snapshot()["base_url"] == f"{gecko.url}?token=***"
    converter.get_price("btc", "usd")
    converter.refresh_now()  # the proxy's query parameter is still sent, on the right path
    assert converter.get_price("btc", "usd") == 50000.0
    [call] = gecko.calls("simple/price")
    assert call["path"] == "/api/v3/simple/price"
    assert call["query"]["token"] == "abc"


@pytest.mark.parametrize(
    ("param", "header"),
    [("x_cg_demo_api_key", "x-cg-demo-api-key"), ("x_cg_pro_api_key", "x-cg-pro-api-key")],
)
def test_key_and_credentials_in_the_base_url_never_show(
    gecko, tmp_path, clock, caplog, param, header
):
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    password = "pw-sekrit-789"
    base_url = gecko.url.replace("http://", f"http://user:{password}@") + f"?{param}={SECRET_KEY}"
    converter = make_converter(gecko, tmp_path, clock, base_url=base_url)
    converter.get_price("btc", "usd")
    converter.refresh_now()
    assert converter.get_price("btc", "usd") == 50000.0  # was a broken URL: ".../v3?key=.../..."
    for request in gecko.requests:
        assert request["path"].startswith("/api/v3/")
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers[header] == SECRET_KEY  # the query key travels in the header instead
        assert param not in request["query"]
        assert headers["authorization"] == "Basic " + base64.b64encode(
            f"user:{password}".encode()
        ).decode("ascii")  # URL credentials still reach the proxy
    for mode in ("echo", "500", "429", "malformed", "deep"):
        gecko.mode = mode
        clock.advance(MAX_PAUSE_S + 1)
        converter.refresh_now()
    errors = [pair_info(converter, "btc/usd")["last_error"], converter.snapshot()["coin_list"]]
    shown = json.dumps(converter.snapshot()) + json.dumps(errors) + caplog.text
    basic_token = base64.b64encode(f"user:{password}".encode()).decode("ascii")
    assert SECRET_KEY not in shown
    assert password not in shown
    assert basic_token not in shown  # the echoed Authorization header is a secret too
    assert "rejected" in caplog.text  # the server's message is kept, minus the secrets
    client = CoinGeckoClient(base_url=base_url, timeout=1.0)
    gecko.mode = "echo"
    with pytest.raises(CoinGeckoError) as raised:
        client.simple_price(["bitcoin"], ["usd"])
    for secret in (SECRET_KEY, password, basic_token):
        assert secret not in str(raised.value)
    assert SECRET_KEY not in client.masked_base_url and password not in client.masked_base_url
    client.close()


def test_default_base_url_follows_pycoingecko():
    assert default_base_url("", True) == PUBLIC_BASE_URL
    assert default_base_url("key", True) == PUBLIC_BASE_URL
    assert default_base_url("key", False) == PRO_BASE_URL
    assert default_base_url("", False) == PUBLIC_BASE_URL


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(formatdate(now + 42, usegmt=True), now) == pytest.approx(42.0)
    assert parse_retry_after(formatdate(now - 42, usegmt=True), now) == 0.0
    assert parse_retry_after("-3", now) == 0.0
    # Unreadable is None (the one contract); the client then waits DEFAULT_RETRY_AFTER, 60 s
    # (test_429_pauses_until_retry_after).
    assert parse_retry_after("", now) is None
    assert parse_retry_after("nan", now) is None


def test_parse_retry_after_is_capped_at_the_shared_max_pause():
    now = 1_700_000_000.0
    assert MAX_PAUSE_S == 3 * 86400  # the ledger's cap: one cap for every pause
    assert parse_retry_after("1e9", now) == MAX_PAUSE_S  # was 1e9 s: 31 years
    assert parse_retry_after("99999999999999999999", now) == MAX_PAUSE_S
    assert parse_retry_after(formatdate(now + 10 * 365 * 86400, usegmt=True), now) == MAX_PAUSE_S
    assert parse_retry_after(str(MAX_PAUSE_S - 1), now) == MAX_PAUSE_S - 1
    assert parse_retry_after("inf", now) is None


@pytest.mark.parametrize("endpoint", ["simple/price", "coins/list"])
def test_absurd_retry_after_pauses_fiat_for_at_most_the_cap(gecko, tmp_path, clock, endpoint):
    converter = make_converter(gecko, tmp_path, clock)
    converter.get_price("btc", "usd")
    if endpoint == "simple/price":
        converter.refresh_now()
        clock.advance(300)
        gecko.mode = "429"
    else:
        gecko.coins_mode = "429"
    gecko.retry_after = "1000000000"
    converter.refresh_now()
    assert converter.snapshot()["paused_until"] == pytest.approx(clock.now + MAX_PAUSE_S)
    assert pair_info(converter, "btc/usd")["next_refresh_in_s"] <= MAX_PAUSE_S

    gecko.mode, gecko.coins_mode = "ok", None
    gecko.prices["bitcoin"]["usd"] = 51000.0
    clock.advance(MAX_PAUSE_S)
    converter.refresh_now()
    assert converter.get_price("btc", "usd") == 51000.0
    assert converter.snapshot()["paused_until"] is None


def test_error_backoff_is_bounded_by_the_shared_max_pause(gecko, tmp_path, clock):
    converter = make_converter(gecko, tmp_path, clock, backoff_base=1e9, backoff_cap=1e12)
    converter.get_price("btc", "usd")
    gecko.mode = "500"
    for _ in range(5):
        converter.refresh_now()
        assert 0 < pair_info(converter, "btc/usd")["next_refresh_in_s"] <= MAX_PAUSE_S
        clock.advance(MAX_PAUSE_S)
    assert converter.snapshot()["consecutive_failures"] == 5
    assert converter.snapshot()["coin_list"]["last_error"] == "coins/list: HTTP 500"


@pytest.mark.parametrize(
    "name",
    [
        "refresh_interval",
        "stale_after",
        "coin_list_max_age",
        "timeout",
        "min_call_interval",
        "backoff_base",
        "backoff_cap",
    ],
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_timing_arguments_must_be_finite_and_not_negative(gecko, tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        make_converter(gecko, tmp_path, **{name: value})


# ---------------------------------------------------------------- Freqtrade semantics


def test_stock_semantics(gecko, tmp_path, clock, caplog):
    converter = make_converter(gecko, tmp_path, clock)
    assert converter.get_price("BTC", "btc") == 1.0
    assert converter.get_price("usd", "USD") == 1.0
    assert converter.convert_amount(3, "XYZ", "XYZ") == 3.0
    with pytest.raises(ValueError, match="The fiat xyz is not supported"):
        converter.get_price("btc", "xyz")
    assert converter.snapshot()["pairs"] == []  # nothing above needs CoinGecko

    for crypto, fiat in [("USD", "EUR"), ("eth", "usd"), ("dup", "usd"), ("nope", "usd")]:
        converter.get_price(crypto, fiat)
    converter.refresh_now()
    converter.refresh_now()

    assert converter.get_price("USD", "EUR") == pytest.approx(1 / 1.08)  # inverted eur→usd
    assert pair_info(converter, "eur/usd")["price"] == 1.08
    assert converter.get_price("ETH", "USD") == 3000.0  # override beats the duplicate symbol
    assert converter.get_price("DUP", "USD") == 0.0  # two ids, no override
    assert converter.get_price("NOPE", "USD") == 0.0
    assert converter.convert_amount(2, "NOPE", "USD") == 0.0
    assert pair_info(converter, "nope/usd")["next_refresh_in_s"] is None
    assert "unsupported crypto-symbol NOPE" in pair_info(converter, "nope/usd")["last_error"]
    [call] = gecko.calls("simple/price")[-1:]
    assert call["query"]["ids"] == "ethereum,stasis-eurs"
    assert caplog.text.count("Found multiple mappings in CoinGecko for dup.") == 1
    assert caplog.text.count("unsupported crypto-symbol NOPE") == 1


def test_matches_stock_freqtrade_converter(gecko, tmp_path, clock, monkeypatch):
    """Same answers as Freqtrade's own CryptoToFiatConverter pointed at the same server."""
    from freqtrade.constants import SUPPORTED_FIAT as FT_SUPPORTED_FIAT
    from freqtrade.rpc import fiat_convert
    from pycoingecko import CoinGeckoAPI

    gecko.coins.append({"id": "binancecoin", "symbol": "bnb", "name": "BNB"})
    gecko.coins.append({"id": "bnb-wrapped", "symbol": "bnb", "name": "Wrapped BNB"})
    gecko.prices["binancecoin"] = {"usd": 600.0, "eur": 552.0}
    monkeypatch.setattr(CoinGeckoAPI, "_CoinGeckoAPI__API_URL_BASE", gecko.url + "/")
    try:  # Freqtrade >= 2026.x: a metaclass singleton
        from freqtrade.util.singleton import SingletonMeta

        monkeypatch.setattr(SingletonMeta, "_instances", {})
    except ImportError:  # Freqtrade 2025.12: a __new__ singleton
        converter = fiat_convert.CryptoToFiatConverter
        monkeypatch.setattr(converter, "_CryptoToFiatConverter__instance", None)
    stock = fiat_convert.CryptoToFiatConverter({})
    ours = make_converter(
        gecko,
        tmp_path,
        clock,
        supported_fiat=FT_SUPPORTED_FIAT,
        symbol_overrides=fiat_convert.coingecko_mapping,
    )
    cases = [
        ("BTC", "USD"), ("btc", "eur"), ("ETH", "EUR"), ("USD", "EUR"), ("usdt", "usd"),
        ("SOL", "EUR"), ("bnb", "usd"), ("DUP", "USD"), ("nope", "eur"), ("eth", "ETH"),
        ("usd", "usd"),
    ]  # fmt: skip
    for crypto, fiat in cases:
        ours.get_price(crypto, fiat)
    ours.refresh_now()
    for crypto, fiat in cases:
        assert ours.get_price(crypto, fiat) == stock.get_price(crypto, fiat), (crypto, fiat)
        assert ours.convert_amount(2.5, crypto, fiat) == stock.convert_amount(2.5, crypto, fiat)
    for bad_fiat in ["xyz", "usdt"]:
        with pytest.raises(ValueError, match="not supported"):
            stock.get_price("btc", bad_fiat)
        with pytest.raises(ValueError, match="not supported"):
            ours.get_price("btc", bad_fiat)


# ---------------------------------------------------------------- shared store


@pytest.fixture(scope="module")
def redis_server() -> Iterator[int]:
    if shutil.which(REDIS_BINARY) is None:
        pytest.skip("redis-server not installed")
    with RedisServer() as server:
        yield server.port


class StoreFactory:
    """Store handles (one per bot) that all see the same shared state."""

    def __init__(self, make: Any, expire_leases: Any) -> None:
        self.new = make
        self.expire_leases = expire_leases  # Redis leases run on Redis's clock, not ours


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_store(request, clock) -> Iterator[StoreFactory]:
    if request.param == "memory":
        store = InMemoryFiatStore(clock)
        yield StoreFactory(lambda: store, lambda: None)  # leases follow the fake clock
        return
    import redis

    port = request.getfixturevalue("redis_server")
    prefix = f"test:{uuid.uuid4().hex}:"
    admin = redis.Redis(host="127.0.0.1", port=port)
    clients = [admin]

    def new() -> SharedFiatStore:
        client = redis.Redis(host="127.0.0.1", port=port)
        clients.append(client)
        return RedisFiatStore(client, prefix)

    def expire_leases() -> None:
        for key in admin.scan_iter(f"{prefix}lock:*"):
            admin.delete(key)

    yield StoreFactory(new, expire_leases)
    for client in clients:
        client.close()


def test_bots_sharing_a_store_make_one_call_per_period(gecko, tmp_path, clock, make_store):
    bots = [
        make_converter(gecko, tmp_path / f"bot{n}", clock, shared_store=make_store.new())
        for n in range(3)
    ]
    for bot in bots:
        bot.get_price("btc", "usd")
        bot.get_price("eth", "eur")
    for bot in bots:
        bot.refresh_now()
    assert len(gecko.calls("coins/list")) == 1
    assert len(gecko.calls("simple/price")) == 1
    for bot in bots:
        assert bot.get_price("ETH", "EUR") == 2760.0
    assert [b.snapshot()["coin_list"]["source"] for b in bots] == ["network", "shared", "shared"]
    assert (tmp_path / "bot2" / "coins.json").exists()  # shared list kept on disk too

    clock.advance(301)  # next period: again one call between them
    make_store.expire_leases()
    gecko.prices["bitcoin"]["usd"] = 49000.0
    for bot in bots:
        bot.refresh_now()
    assert len(gecko.calls("simple/price")) == 2
    assert all(bot.get_price("btc", "usd") == 49000.0 for bot in bots)


def test_bot_with_an_extra_pair_still_gets_it(gecko, tmp_path, clock, make_store):
    first = make_converter(gecko, tmp_path / "a", clock, shared_store=make_store.new())
    second = make_converter(gecko, tmp_path / "b", clock, shared_store=make_store.new())
    first.get_price("btc", "usd")
    second.get_price("btc", "usd")
    second.get_price("sol", "usd")
    first.refresh_now()
    second.refresh_now()
    assert second.get_price("sol", "usd") == 150.0
    assert len(gecko.calls("simple/price")) == 2


class CountingClient:
    """Records which client methods the store uses (the client itself is real)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


def test_dead_redis_falls_back_to_own_calls(gecko, tmp_path, clock, caplog):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    port = find_free_port()  # bound and released: nothing listens there
    client = CountingClient(redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0)))
    converter = make_converter(gecko, tmp_path, clock, shared_store=RedisFiatStore(client))
    converter.get_price("sol", "usd")
    converter.refresh_now()
    assert converter.get_price("sol", "usd") == 150.0
    assert converter.snapshot()["shared_store"] == {"kind": "RedisFiatStore", "healthy": False}
    assert caplog.text.count("fiat shared store unavailable") == 1
    assert len(client.calls) == 1  # then left alone for a while: a dead Redis is slow to fail

    clock.advance(31)
    converter.refresh_now()
    assert len(client.calls) == 2


@pytest.mark.redis
def test_redis_store_ignores_hostile_values(redis_server):
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_server)
    prefix = f"test:{uuid.uuid4().hex}:"
    store = RedisFiatStore(client, prefix)
    try:
        deep = "[" * 100_000 + "]" * 100_000
        client.set(f"{prefix}coins_list", deep)
        assert store.get_coin_list() is None  # was an uncaught RecursionError
        client.set(
            f"{prefix}coins_list", '{"fetched_at": Infinity, "coins": [{"id": "a", "symbol": "a"}]}'
        )
        assert store.get_coin_list() is None
        client.hset(
            f"{prefix}prices",
            mapping={
                "deep/usd": deep,
                "nan/usd": "[NaN, 1700000000]",
                "inf/usd": "[1.0, Infinity]",
                "neg/usd": "[-1.0, 1700000000]",
                "ok/usd": "[2.5, 1700000000]",
            },
        )
        keys = ["deep/usd", "nan/usd", "inf/usd", "neg/usd", "ok/usd", "missing/usd"]
        assert store.get_prices(keys) == {"ok/usd": SharedPrice(2.5, 1_700_000_000.0)}
    finally:
        client.delete(f"{prefix}coins_list", f"{prefix}prices")
        client.close()
