"""A real `redis-server` on a free loopback port, optionally password-protected, that tests can
kill and restart on the same port (to take a shared weight budget away from running bots and
give it back). Used by the backend's tests, the end-to-end tests and bench/multi_bot.py.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
import redis

from freqtrade_ratekit.sim.harness import find_free_port, wait_for

REDIS_BINARY = "redis-server"
START_TIMEOUT_S = 10.0

requires_redis = pytest.mark.skipif(
    shutil.which(REDIS_BINARY) is None, reason="needs a redis-server binary"
)


class RedisServer:
    """One redis-server process without persistence: a restart starts from an empty store,
    as after a crash of a cache-only Redis."""

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        self.port = port or find_free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> RedisServer:
        """Start (or restart) on the same port and wait until it answers PING."""
        if self.running:
            return self
        self.process = subprocess.Popen(
            [
                REDIS_BINARY,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        process = self.process
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        try:
            wait_for(answers, bool, START_TIMEOUT_S, f"PING on port {self.port}", interval=0.02)
        except AssertionError:
            self.stop()
            raise
        finally:
            client.close()
        return self

    def stop(self) -> None:
        """Kill it at once (SIGKILL): clients see a dead server, not a polite shutdown."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server
