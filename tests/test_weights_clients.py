"""The non-bot clients of a scope: the registry (memory, and a real Redis with its TTLs), the
heartbeat that keeps a client listed, and its final record and log line."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from freqtrade_ratekit.config import parse_settings
from freqtrade_ratekit.weights import Charge, Ledger, Priority, preset_for, scope_digest
from freqtrade_ratekit.weights.clients import (
    ClientIdentity,
    ClientReporter,
    LocalClientRegistry,
    RedisClientRegistry,
    clean_record,
    parse_records,
    summary,
)
from tests.helpers import ratekit_threads, wait_for
from tests.redis_fixtures import RedisServer

PASSWORD = "s3cret-registry-pass"
SCOPE = "host-1"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    with RedisServer(password=PASSWORD) as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=1)
    client.flushdb()
    yield client
    client.close()


def registry(server: RedisServer, scope: str = SCOPE) -> RedisClientRegistry:
    client = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    return RedisClientRegistry(client, exchange="binance", ip_scope_id=scope_digest("ip", scope))


def command_ledger(name: str = "download-data") -> Ledger:
    return Ledger(
        preset_for("binance"),
        mode="enforce",
        background=True,
        reserve=0.5,
        client=ClientIdentity.this_process(name, "util_exchange"),
    )


def record_of(ledger: Ledger, state: str = "running") -> Any:
    record = ledger.client_record(state)
    assert record is not None
    return record


KLINES = Charge("public GET klines", 2.0, (("REQUEST_WEIGHT", 2.0),), Priority.MARKET_DATA)


def test_the_local_registry_knows_only_this_process():
    local = LocalClientRegistry()
    assert local.clients() == []
    ledger = command_ledger()
    local.publish(record_of(ledger), 30)
    (only,) = local.clients()
    assert only["name"] == "download-data" and only["pid"] > 0


def test_clients_of_one_scope_see_each_other_and_no_other_scope(redis_server, redis_client):
    download, markets = command_ledger("download-data"), command_ledger("list-markets")
    download.acquire(KLINES)
    registry(redis_server).publish(record_of(download), 30)
    registry(redis_server).publish(record_of(markets), 30)
    registry(redis_server, scope="other-host").publish(record_of(command_ledger("webserver")), 30)

    listed = registry(redis_server).clients()
    assert [(c["name"], c["weight"], c["calls"]) for c in listed] == [
        ("download-data", 2.0, 1),
        ("list-markets", 0.0, 0),
    ]
    # a newer record of a client replaces its older one
    download.acquire(KLINES)
    registry(redis_server).publish(record_of(download), 30)
    weights = {c["name"]: c["weight"] for c in registry(redis_server).clients()}
    assert weights == {"download-data": 4.0, "list-markets": 0.0}


def test_a_record_expires_with_its_ttl_and_a_finished_one_outlives_it(redis_server, redis_client):
    dead, finished = command_ledger("download-data"), command_ledger("list-markets")
    registry(redis_server).publish(record_of(dead), 0.3)  # a process killed mid-download
    registry(redis_server).publish(record_of(finished, "finished"), 60)
    assert len(registry(redis_server).clients()) == 2
    time.sleep(0.5)
    (left,) = registry(redis_server).clients()
    assert (left["name"], left["state"]) == ("list-markets", "finished")
    # the keys live as long as their longest record, no longer
    base = f"ratekit:binance:{scope_digest('ip', SCOPE)}:clients"
    assert 55_000 < redis_client.pttl(base) <= 61_000
    assert 55_000 < redis_client.pttl(f"{base}:expiry") <= 61_000


def test_the_registry_keys_hold_no_secret(redis_server, redis_client):
    registry(redis_server).publish(record_of(command_ledger()), 30)
    keys = sorted(key.decode() for key in redis_client.keys("*"))
    base = f"ratekit:binance:{scope_digest('ip', SCOPE)}:clients"
    assert keys == [base, f"{base}:expiry"]  # the scope only as its digest
    (value,) = redis_client.hvals(base)
    assert set(json.loads(value)) == {
        "id", "name", "run_mode", "host", "pid", "state", "started_at", "updated_at",
        "calls", "weight", "wait_s", "blocked_s", "waiting", "status_429", "status_418",
    }  # fmt: skip
    assert PASSWORD not in value.decode()


def test_malformed_records_are_left_out(redis_server, redis_client):
    good = record_of(command_ledger())
    registry(redis_server).publish(good, 30)
    base = f"ratekit:binance:{scope_digest('ip', SCOPE)}:clients"
    redis_client.hset(base, mapping={"x": "not json", "y": json.dumps({"id": 3}), "z": "[1]"})
    redis_client.zadd(f"{base}:expiry", {"x": time.time() * 2000, "y": time.time() * 2000})
    assert [c["id"] for c in registry(redis_server).clients()] == [good["id"]]


def test_clean_record_types_every_field():
    record = clean_record(
        {
            "id": "a",
            "name": "download-data\n\x1b[31m",
            "run_mode": "util_exchange",
            "host": "h",
            "pid": "12",
            "state": "weird",
            "weight": float("nan"),
            "calls": 3.0,
            "status_429": True,
        }
    )
    assert record is not None
    assert record["name"] == "download-data??[31m"  # one printable line
    assert (record["pid"], record["state"], record["weight"], record["calls"]) == (
        0,
        "running",
        0.0,
        3,
    )
    assert record["status_429"] == 0
    assert clean_record({"id": "a"}) is None and clean_record([1]) is None
    assert parse_records([b"\xff", "null", None]) == []


def test_the_reporter_keeps_a_client_listed_then_leaves_its_final_record(
    redis_server, redis_client, caplog
):
    before = ratekit_threads()
    ledger = command_ledger()
    shared = registry(redis_server)
    reporter = ClientReporter(
        lambda state: record_of(ledger, state), shared, interval_s=0.1, ttl_s=0.5
    )
    reporter.start()
    assert {t.name for t in ratekit_threads() - before} == {"ratekit-clients"}
    wait_for(shared.clients, lambda listed: len(listed) == 1, 5, "the first record")
    ledger.acquire(KLINES)
    wait_for(
        shared.clients,
        lambda listed: listed and listed[0]["weight"] == 2.0,
        5,
        "the heartbeat's newer record",
    )
    time.sleep(0.7)  # longer than the TTL: only the heartbeat keeps it
    assert len(shared.clients()) == 1

    with caplog.at_level(logging.INFO, logger="freqtrade_ratekit.weights.clients"):
        reporter.stop()
        reporter.stop()  # idempotent
    assert ratekit_threads() - before == set()
    (final,) = shared.clients()
    assert final["state"] == "finished" and final["weight"] == 2.0
    lines = [r.getMessage() for r in caplog.records if "lowest priority" in r.getMessage()]
    assert lines == [f"ratekit: {summary(final)}"]
    assert "1 exchange calls, weight 2; waited 0.0 s for exchange budget" in lines[0]


def test_the_reporter_is_registered_for_the_interpreter_s_exit(mocker):
    register = mocker.patch("atexit.register")
    unregister = mocker.patch("atexit.unregister")
    ledger = command_ledger()
    local = LocalClientRegistry()
    reporter = ClientReporter(lambda state: record_of(ledger, state), local)
    reporter.start()
    register.assert_called_once_with(reporter.stop)
    assert [c["state"] for c in local.clients()] == ["running"]  # memory: at once, no thread
    reporter.stop()
    unregister.assert_called_once_with(reporter.stop)
    assert [c["state"] for c in local.clients()] == ["finished"]


def test_a_failing_registry_never_reaches_the_caller(caplog):
    class Broken:
        kind = "redis"

        def publish(self, record: Any, ttl_s: float) -> None:
            raise redis.exceptions.ConnectionError("Error 111 connecting")

        def clients(self) -> list[Any]:
            raise redis.exceptions.ConnectionError("Error 111 connecting")

    ledger = Ledger(
        preset_for("binance"),
        background=True,
        client=ClientIdentity.this_process("download-data", "util_exchange"),
        registry=Broken(),
    )
    (own,) = ledger.snapshot()["clients"]  # the process's own record only
    assert own["name"] == "download-data"
    reporter = ClientReporter(lambda state: record_of(ledger, state), Broken(), interval_s=0.05)
    with caplog.at_level(logging.WARNING):
        reporter.start()
        wait_for(reporter.status, lambda s: s["consecutive_failures"] >= 1, 5, "a failed heartbeat")
        reporter.stop()
    assert "could not store the final client record" in caplog.text


def test_a_bot_ledger_lists_the_scope_s_commands_but_is_none_itself(redis_server, redis_client):
    from freqtrade_ratekit import wiring

    settings = parse_settings(
        {"enabled": True, "weights": {"backend": redis_server.url, "scope_id": SCOPE}}
    )
    stoppers: list[Any] = []
    bot = wiring.build_ledger(
        settings,
        exchange_id="binance",
        trading_mode="spot",
        rate_limit_ms=50,
        on_stop=stoppers.append,
    )
    command = wiring.build_ledger(
        settings,
        exchange_id="binance",
        trading_mode="spot",
        rate_limit_ms=50,
        on_stop=stoppers.append,
        client=ClientIdentity.this_process("download-data", "util_exchange"),
    )
    try:
        assert (bot.background, command.background) == (False, True)
        assert command.reserve == bot.reserve == 0.5
        snapshot = wait_for(
            bot.snapshot, lambda s: len(s["clients"]) == 1, 5, "the command in the bot's list"
        )
        assert snapshot["client"] is None
        assert snapshot["clients"][0]["name"] == "download-data"
    finally:
        for stop in reversed(stoppers):
            stop()
    (final,) = registry(redis_server).clients()
    assert final["state"] == "finished"


def check_config(tmp_path, capsys, monkeypatch, weights: dict[str, Any]) -> tuple[int, str]:
    from freqtrade_ratekit.cli import main as cli_main

    monkeypatch.setenv("COLUMNS", "200")
    config = {"exchange": {"name": "binance"}, "ratekit": {"enabled": True, "weights": weights}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code = cli_main(["check-config", "-c", str(path)])
    return code, capsys.readouterr().out


def test_check_config_lists_the_scope_s_non_bot_clients(
    redis_server, redis_client, tmp_path, capsys, monkeypatch
):
    ledger = command_ledger()
    ledger.acquire(KLINES)
    registry(redis_server).publish(record_of(ledger, "finished"), 60)
    code, out = check_config(
        tmp_path, capsys, monkeypatch, {"backend": redis_server.url, "scope_id": SCOPE}
    )
    assert code == 0
    assert f"Non-bot clients of scope '{SCOPE}'" in out
    assert "non-bot commands use at most 50% of each pool" in out
    for shown in ("download-data", "util_exchange", "finished", f"/ {ledger.client.pid}"):
        assert shown in out, shown
    assert PASSWORD not in out


def test_check_config_says_when_the_clients_cannot_be_read(tmp_path, capsys, monkeypatch):
    from tests.helpers import find_free_port

    url = f"redis://:{PASSWORD}@127.0.0.1:{find_free_port()}/0"
    code, out = check_config(tmp_path, capsys, monkeypatch, {"backend": url})
    assert code == 0  # the config is valid; a dead Redis is runtime state
    assert "Non-bot clients of scope 'default'" in out and "could not be read" in out
    assert PASSWORD not in out


def test_check_config_with_the_memory_backend_shares_no_clients(tmp_path, capsys, monkeypatch):
    code, out = check_config(tmp_path, capsys, monkeypatch, {"reserve": 0.25})
    assert code == 0
    assert "memory backend, nothing is shared" in out
    assert "non-bot commands use at most 75% of each pool" in out
