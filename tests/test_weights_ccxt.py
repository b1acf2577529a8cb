"""ccxt hooks on real ccxt classes against a tiny local HTTP server (127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from freqtrade_ratekit.weights import Ledger, instrument, preset_for


class CannedExchange:
    """Answers Binance-like JSON with usage headers; `next_status` forces one error reply."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.next_status: int | None = None
        self.next_headers: dict[str, str] = {}
        self.used_weight = 0
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v3"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                canned.requests.append(self.path)
                status, extra = canned.next_status, canned.next_headers
                canned.next_status, canned.next_headers = None, {}
                if status is not None:
                    body: Any = {"code": -1003, "msg": "Too many requests."}
                else:
                    status = 200
                    canned.used_weight += 4
                    body = [{"symbol": "BTCUSDT", "bidPrice": "1.0", "askPrice": "1.1"}]
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-MBX-USED-WEIGHT-1M", str(canned.used_weight + 100))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler


@pytest.fixture
def exchange_server() -> Iterator[CannedExchange]:
    canned = CannedExchange()
    canned.thread.start()
    yield canned
    canned.server.shutdown()
    canned.server.server_close()


def point_at(api: Any, server: CannedExchange) -> Any:
    api.urls["api"]["public"] = server.url
    return api


class FakeTime:
    def __init__(self) -> None:
        self.now = 500.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def instance_state(api: Any) -> dict[str, Any]:
    return dict(vars(api))


@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_sync_calls_are_charged_and_corrected_by_headers(exchange_server, mode):
    api = point_at(ccxt.binance(), exchange_server)
    ledger = Ledger(preset_for("binance"), mode=mode)
    handle = instrument(api, ledger)
    assert ("throttle" in vars(api)) == (mode == "enforce")  # ccxt's throttle off only in enforce
    assert api.public_get_ticker_bookticker() == [
        {"symbol": "BTCUSDT", "bidPrice": "1.0", "askPrice": "1.1"}
    ]
    snapshot = ledger.snapshot()
    assert snapshot["endpoints"][0]["endpoint"] == "public GET ticker/bookTicker"
    assert snapshot["endpoints"][0]["weight"] == 4
    pool = next(row for row in snapshot["pools"] if row["name"] == "REQUEST_WEIGHT")
    assert pool["server_used"] == 104 and pool["used"] == 104
    handle.uninstrument()


def test_instrument_and_uninstrument_restore_the_instance_exactly(exchange_server):
    api = point_at(ccxt.binance(), exchange_server)
    api.fetch = api.fetch  # an instance attribute that must come back as it was, not be deleted
    before = instance_state(api)
    ledger = Ledger(preset_for("binance"), mode="enforce")
    handle = instrument(api, ledger)
    assert instrument(api, ledger) is handle  # idempotent
    assert api.fetch2 is not before.get("fetch2")
    handle.uninstrument()
    handle.uninstrument()
    after = instance_state(api)
    assert after.keys() == before.keys()
    assert all(after[key] is before[key] for key in before)
    api.public_get_ticker_bookticker()
    assert ledger.snapshot()["totals"]["calls"] == 0  # no longer charged


@pytest.mark.parametrize("status", [429, 418])
def test_same_exception_types_as_stock_ccxt(exchange_server, status):
    stock = point_at(ccxt.binance(), exchange_server)
    exchange_server.next_status = status
    with pytest.raises(ccxt.BaseError) as stock_error:
        stock.public_get_ticker_bookticker()

    api = point_at(ccxt.binance(), exchange_server)
    ledger = Ledger(preset_for("binance"), mode="observe")
    instrument(api, ledger)
    exchange_server.next_status = status
    exchange_server.next_headers = {"Retry-After": "7"}
    with pytest.raises(ccxt.BaseError) as ratekit_error:
        api.public_get_ticker_bookticker()
    assert type(ratekit_error.value) is type(stock_error.value)
    assert isinstance(ratekit_error.value, ccxt.DDoSProtection)
    assert ledger.snapshot()["totals"][f"status_{status}"] == 1


def test_enforce_waits_out_a_429_before_sending_again(exchange_server):
    fake = FakeTime()
    api = point_at(ccxt.binance(), exchange_server)
    ledger = Ledger(
        preset_for("binance"), mode="enforce", clock=fake.clock, wall=fake.wall, sleep=fake.sleep
    )
    instrument(api, ledger)
    exchange_server.next_status = 429
    exchange_server.next_headers = {"Retry-After": "7"}
    with pytest.raises(ccxt.DDoSProtection):
        api.public_get_ticker_bookticker()
    assert len(exchange_server.requests) == 1
    api.public_get_ticker_bookticker()
    assert len(exchange_server.requests) == 2
    assert sum(fake.slept) == pytest.approx(7.0, abs=2e-3)


def test_async_client_is_charged_and_restored(exchange_server):
    async def scenario() -> dict[str, Any]:
        api = point_at(ccxt_async.binance(), exchange_server)
        before = instance_state(api)
        ledger = Ledger(preset_for("binance"), mode="enforce")
        handle = instrument(api, ledger)
        try:
            await api.public_get_ticker_bookticker()
            exchange_server.next_status = 429
            exchange_server.next_headers = {"Retry-After": "0"}
            with pytest.raises(ccxt.DDoSProtection):
                await api.public_get_ticker_bookticker()
        finally:
            handle.uninstrument()
            after = instance_state(api)
            await api.close()
        # ccxt sets its own runtime attributes (session, last_*) while calling; ratekit's
        # wrappers and marker must all be gone and nothing that was there may be lost.
        assert before.keys() <= after.keys()
        assert all(after[key] is before[key] for key in ("fetch2", "fetch") if key in before)
        assert not {"fetch2", "fetch", "on_rest_response", "throttle"} & after.keys()
        assert "_ratekit_instrumentation" not in after
        return ledger.snapshot()

    snapshot = asyncio.run(scenario())
    row = snapshot["endpoints"][0]
    assert (row["calls"], row["weight"], row["status_429"]) == (2, 8, 1)


def test_ccxt_pro_rest_fallbacks_go_through_the_ledger(exchange_server):
    async def scenario() -> dict[str, Any]:
        api = point_at(ccxt_pro.binance(), exchange_server)
        ledger = Ledger(preset_for("binance"), mode="observe")
        handle = instrument(api, ledger)
        try:
            await api.public_get_ticker_bookticker()
        finally:
            handle.uninstrument()
            await api.close()
        return ledger.snapshot()

    assert asyncio.run(scenario())["totals"]["calls"] == 1


# ---------------------------------------------------------------- ratekit failures stay inside


class AccountingBroke(Exception):
    pass


@pytest.mark.parametrize("broken", ["charge_for", "acquire", "on_response"])
def test_a_failing_ledger_never_fails_a_sync_ccxt_call(exchange_server, mocker, caplog, broken):
    api = point_at(ccxt.binance(), exchange_server)
    ledger = Ledger(preset_for("binance"), mode="enforce")
    instrument(api, ledger)
    mocker.patch.object(ledger, broken, side_effect=AccountingBroke("ledger broke"))
    for _ in range(10):
        assert api.public_get_ticker_bookticker()[0]["symbol"] == "BTCUSDT"
        api.fetch(exchange_server.url + "/ping")  # a `fetch` without `fetch2` too
    assert len(exchange_server.requests) == 20
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) <= 1, "one traceback names the fault; 20 bury the log"
    assert any("ledger broke" in r.getMessage() or r.exc_info for r in caplog.records)


@pytest.mark.parametrize("broken", ["charge_for", "acquire_async", "on_response"])
def test_a_failing_ledger_never_fails_an_async_ccxt_call(exchange_server, mocker, caplog, broken):
    async def scenario() -> None:
        api = point_at(ccxt_async.binance(), exchange_server)
        ledger = Ledger(preset_for("binance"), mode="enforce")
        instrument(api, ledger)
        mocker.patch.object(ledger, broken, side_effect=AccountingBroke("ledger broke"))
        try:
            for _ in range(5):
                assert (await api.public_get_ticker_bookticker())[0]["symbol"] == "BTCUSDT"
        finally:
            await api.close()

    asyncio.run(scenario())
    assert len(exchange_server.requests) == 5
    assert len([r for r in caplog.records if r.exc_info]) <= 1


def test_a_keyboard_interrupt_while_waiting_still_reaches_the_caller(exchange_server, mocker):
    """Ratekit swallows its own failures, never the user's Ctrl-C."""
    api = point_at(ccxt.binance(), exchange_server)
    ledger = Ledger(preset_for("binance"), mode="enforce")
    instrument(api, ledger)
    mocker.patch.object(ledger, "acquire", side_effect=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        api.public_get_ticker_bookticker()
    assert exchange_server.requests == []
