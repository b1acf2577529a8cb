"""Planted secrets never reach any output: REST routes, metrics, the status CLI, check-config,
and the bot's log.

A real bot runs with a Redis password given both as URL user info and as the `?password=`
query parameter (redis-py honours either), CoinGecko credentials in `fiat.coingecko_url`, and
exchange keys in the config. Every surface a user or a log collector sees is then grepped for
each planted value.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freqtrade_ratekit.sim import start_coingecko_emulator, start_exchange_emulator
from freqtrade_ratekit.sim.harness import BotProcess, find_free_port, make_bot_config
from tests.helpers import wait_for
from tests.redis_fixtures import RedisServer, requires_redis

pytestmark = [pytest.mark.e2e, requires_redis, pytest.mark.timeout(180)]

REDIS_PASSWORD = "planted-redis-pw-7f3a"
GECKO_PASSWORD = "planted-gecko-pw-91c2"
EXCHANGE_KEY = "planted-exchange-key-55d0"
EXCHANGE_SECRET = "planted-exchange-secret-a8e4"
PLANTED = (REDIS_PASSWORD, GECKO_PASSWORD, EXCHANGE_KEY, EXCHANGE_SECRET)
ROUTES = ("status", "cache", "fiat", "weights", "metrics")


def leaks(text: str) -> list[str]:
    return [secret for secret in PLANTED if secret in text]


@pytest.fixture
def secret_bot(tmp_path: Path) -> Iterator[tuple[BotProcess, Path, RedisServer]]:
    with (
        RedisServer(password=REDIS_PASSWORD) as redis_server,
        start_exchange_emulator() as exchange,
        start_coingecko_emulator() as coingecko,
    ):
        redis_url = f"redis://127.0.0.1:{redis_server.port}/0?password={REDIS_PASSWORD}"
        gecko_url = coingecko.url.replace("http://", f"http://ratekit:{GECKO_PASSWORD}@")
        ratekit: dict[str, Any] = {
            "enabled": True,
            "fiat": {"coingecko_url": gecko_url},
            "weights": {"mode": "observe", "backend": redis_url, "scope_id": "secrets"},
        }
        config = make_bot_config(
            exchange.url,
            coingecko.url,
            find_free_port(),
            pairs=exchange.emulator.universe.usdt_pairs()[:4],
            max_open_trades=2,
            ratekit=ratekit,
            db_dir=tmp_path,
            extra={"exchange": {"key": EXCHANGE_KEY, "secret": EXCHANGE_SECRET}},
        )
        bot = BotProcess(config, tmp_path / "bot", with_ratekit=True)
        with bot:
            bot.open_trades(1)
            yield bot, bot.config_path, redis_server


def run_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "freqtrade_ratekit.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def test_no_planted_secret_reaches_any_output(secret_bot):
    bot, config_path, redis_server = secret_bot
    outputs: dict[str, str] = {}
    for route in ROUTES:
        code, text = bot.get_text(f"/api/v1/ratekit/{route}")
        assert code == 200, route
        outputs[f"GET /api/v1/ratekit/{route}"] = text
    status_doc = json.loads(outputs["GET /api/v1/ratekit/status"])
    assert status_doc["weights"]["backend"]["healthy"] is True  # it did connect with them
    assert "***" in json.dumps(status_doc["settings"]["weights"]["backend"])
    credentials = ["--username", bot.username, "--password", bot.password]
    outputs["status --json"] = run_cli("status", "--url", bot.api_url, *credentials, "--json")
    outputs["status"] = run_cli("status", "--url", bot.api_url, *credentials)
    outputs["check-config"] = run_cli("check-config", "-c", str(config_path))
    outputs["check-config --json"] = run_cli("check-config", "-c", str(config_path), "--json")
    # the bot's log, including the "unreachable" line and the degraded status of a dead Redis
    redis_server.stop()
    wait_for(
        lambda: bot.get("/api/v1/ratekit/weights")[1]["backend"],
        lambda backend: backend["degraded"],
        60,
        "the bot noticed Redis is gone",
    )
    outputs["GET /api/v1/ratekit/weights (degraded)"] = bot.get_text("/api/v1/ratekit/weights")[1]
    outputs["bot log"] = bot.log_text()
    assert "unreachable" in outputs["bot log"]

    found = {surface: leaks(text) for surface, text in outputs.items() if leaks(text)}
    assert found == {}
    assert all(outputs.values())  # every surface said something
