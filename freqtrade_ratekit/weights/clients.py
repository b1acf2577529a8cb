"""The non-bot clients of a scope: who, besides the bots, spends the shared budget.

Every Freqtrade command that creates an exchange without trading (download-data, list-markets,
test-pairlist, webserver, backtesting's market load, ...) is a *client* of its scope: its calls
run at the lowest priority (see `ledger.BACKGROUND`) and it says so in a small registry, so
that `check-config`, the status CLI and the metrics of every process of the scope can show who
spent the budget (name, run mode, host and pid, weight, calls, time waited, 429/418).

- `LocalClientRegistry` (memory backend): knows only this process's own record.
- `RedisClientRegistry`: one hash and one sorted set per exchange and IP scope
  (`ratekit:{exchange}:{ip scope digest}:clients` and `...:clients:expiry`), written and read
  by one Lua script (`lua/clients.lua`) on Redis' own clock. A running client refreshes its
  record every `HEARTBEAT_S` with a TTL of `LIVE_TTL_S`: a process that dies disappears within
  that. A client that ends cleanly leaves its final record for `FINISHED_TTL_S`, so a user can
  still see what a download spent after it finished. Records hold no secret (no key, no URL).
- `ClientReporter`: the heartbeat (`ratekit-clients` thread) and, when the client ends (its
  runtime stops, or the process exits), the final record and one log line: calls, weight,
  and how long the command waited for budget.

A registry failure never reaches Freqtrade: the heartbeat logs it and backs off, a reader gets
this process's own record only.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from freqtrade_ratekit.documents import RatekitClient, RatekitWorkerStatus
from freqtrade_ratekit.workers import PeriodicWorker

logger = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
"""How often a running client refreshes its record."""
LIVE_TTL_S = 30.0
"""How long a record outlives its last refresh: a killed process disappears within this."""
FINISHED_TTL_S = 3600.0
"""How long the final record of a client that ended cleanly stays listed."""
MAX_NAME_CHARS = 200

_CLIENT_KEYS = ("id", "name", "run_mode", "host")


def _cut(value: str, limit: int) -> str:
    """`value` as one printable line of at most `limit` characters (a record may come from
    another process, or a hand-edited key: it is shown in tables and log lines)."""
    text = "".join(char if char.isprintable() else "?" for char in value[:limit])
    return text


def _clients_script() -> str:
    from freqtrade_ratekit.weights.backends import _lua_script

    return _lua_script("clients")


@dataclass(frozen=True)
class ClientIdentity:
    """Who a non-bot client is: fixed for the life of its process."""

    id: str
    name: str
    run_mode: str
    host: str
    pid: int
    started_at: float

    @classmethod
    def this_process(
        cls, name: str, run_mode: str, *, wall: Callable[[], float] = time.time
    ) -> ClientIdentity:
        return cls(
            id=uuid.uuid4().hex[:12],
            name=_cut(name or "freqtrade", MAX_NAME_CHARS),
            run_mode=_cut(run_mode, MAX_NAME_CHARS),
            host=_cut(socket.gethostname(), MAX_NAME_CHARS),
            pid=os.getpid(),
            started_at=wall(),
        )


class ClientRegistry(Protocol):
    kind: str

    def publish(self, record: RatekitClient, ttl_s: float) -> None:
        """Store `record` (replacing the client's previous one) for `ttl_s` seconds."""

    def clients(self) -> list[RatekitClient]:
        """Every record of the scope still alive, oldest start first."""


class LocalClientRegistry:
    """The memory backend's registry: only this process's own record."""

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._record: RatekitClient | None = None

    def publish(self, record: RatekitClient, ttl_s: float) -> None:
        with self._lock:
            self._record = record

    def clients(self) -> list[RatekitClient]:
        with self._lock:
            return [] if self._record is None else [self._record]


class RedisClientRegistry:
    """The clients of one exchange and IP scope in Redis (see the module docstring).
    `client` is a redis-py client with short socket timeouts; errors propagate."""

    kind = "redis"

    def __init__(self, client: Any, *, exchange: str, ip_scope_id: str) -> None:
        self._client = client
        base = f"ratekit:{exchange}:{ip_scope_id}:clients"
        self._keys = [base, f"{base}:expiry"]
        self._script = client.register_script(_clients_script())

    def _run(self, record_id: str, text: str, ttl_s: float) -> list[RatekitClient]:
        ttl_ms = max(1.0, float(ttl_s) * 1000.0)
        raw = self._script(keys=self._keys, args=[record_id, text, repr(ttl_ms)])
        return sorted(parse_records(raw), key=lambda r: (r["started_at"], r["id"]))

    def publish(self, record: RatekitClient, ttl_s: float) -> None:
        self._run(record["id"], json.dumps(record, separators=(",", ":")), ttl_s)

    def clients(self) -> list[RatekitClient]:
        return self._run("", "", 0.0)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing a dead connection: nothing to free
            logger.debug("ratekit: closing the client registry's Redis connection failed")


def parse_records(raw: Any) -> list[RatekitClient]:
    """The well-formed records among what Redis returned (JSON strings or bytes); a record of
    another shape (another ratekit version, a hand-edited key) is left out, not fatal."""
    records: list[RatekitClient] = []
    for item in raw or ():
        try:
            text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
            parsed = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            continue
        record = clean_record(parsed)
        if record is not None:
            records.append(record)
    return records


def _number(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


def clean_record(value: Any) -> RatekitClient | None:
    """`value` as a client record with every field of the right type, or None."""
    if not isinstance(value, Mapping):
        return None
    if not all(isinstance(value.get(name), str) for name in _CLIENT_KEYS):
        return None
    state: Literal["running", "finished"] = (
        "finished" if value.get("state") == "finished" else "running"
    )
    return {
        "id": _cut(value["id"], 64),
        "name": _cut(value["name"], MAX_NAME_CHARS),
        "run_mode": _cut(value["run_mode"], MAX_NAME_CHARS),
        "host": _cut(value["host"], MAX_NAME_CHARS),
        "pid": int(_number(value.get("pid"))),
        "state": state,
        "started_at": _number(value.get("started_at")),
        "updated_at": _number(value.get("updated_at")),
        "calls": int(_number(value.get("calls"))),
        "weight": _number(value.get("weight")),
        "wait_s": _number(value.get("wait_s")),
        "blocked_s": _number(value.get("blocked_s")),
        "waiting": int(_number(value.get("waiting"))),
        "status_429": int(_number(value.get("status_429"))),
        "status_418": int(_number(value.get("status_418"))),
    }


class ClientReporter:
    """Publishes one client's record while it runs and once more when it ends.

    `record(state)` builds the record (the ledger's `client_record`). With a shared registry a
    `ratekit-clients` worker refreshes it every `interval_s`; `stop()` (the runtime's stop, or
    the interpreter's exit: it is registered with `atexit`) publishes the final record and logs
    what the client spent and waited. Idempotent.
    """

    def __init__(
        self,
        record: Callable[[str], RatekitClient],
        registry: ClientRegistry,
        *,
        interval_s: float = HEARTBEAT_S,
        ttl_s: float = LIVE_TTL_S,
        finished_ttl_s: float = FINISHED_TTL_S,
    ) -> None:
        self._record = record
        self._registry = registry
        self._ttl_s = ttl_s
        self._finished_ttl_s = finished_ttl_s
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._worker = PeriodicWorker(self.publish, interval=interval_s, name="clients")

    def publish(self) -> None:
        self._registry.publish(self._record("running"), self._ttl_s)

    def start(self) -> None:
        with self._lock:
            if self._started or self._stopped:
                return
            self._started = True
        if self._registry.kind == "memory":
            self.publish()  # no thread: the record only lives in this process
        else:
            self._worker.start()
            self._worker.trigger()  # the first record now, not one interval later
        atexit.register(self.stop)

    def stop(self) -> None:
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        atexit.unregister(self.stop)
        self._worker.stop()
        record = self._record("finished")
        try:
            self._registry.publish(record, self._finished_ttl_s)
        except Exception as exc:
            logger.warning("ratekit: could not store the final client record: %s", exc)
        logger.info("ratekit: %s", summary(record))

    def status(self) -> RatekitWorkerStatus:
        """The heartbeat worker's figures."""
        return self._worker.status()


def summary(record: RatekitClient) -> str:
    """One line: what a non-bot client spent and how long it waited for the exchange's budget."""
    return (
        f"{record['name']} ({record['run_mode']}) ran at the lowest priority: "
        f"{record['calls']} exchange calls, weight {record['weight']:g}; waited "
        f"{record['blocked_s']:.1f} s for exchange budget (calls held back "
        f"{record['wait_s']:.1f} s in total); {record['status_429']} x 429, "
        f"{record['status_418']} x 418"
    )
