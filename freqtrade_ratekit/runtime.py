"""What ratekit is running in this process, for the REST routes, metrics and the CLI.

One `Runtime` per activated bot config. Components register themselves here as Freqtrade
constructs the objects they belong to (exchange, RPC, API server); the routes only read.
Plain code: no Freqtrade import, so the routes and metrics are testable without a bot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from freqtrade_ratekit import __version__
from freqtrade_ratekit.config import RatekitSettings


class Snapshotting(Protocol):
    def snapshot(self) -> dict[str, Any]: ...


@dataclass
class Runtime:
    """The live ratekit objects of one bot; every field may still be empty during start-up."""

    settings: RatekitSettings
    freqtrade_version: str
    exchange_id: str | None = None
    rate_cache: Snapshotting | None = None
    fiat: Snapshotting | None = None
    weights: Snapshotting | None = None
    readers: Snapshotting | None = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_stop(self, stopper: Callable[[], None]) -> None:
        with self._lock:
            self._stoppers.append(stopper)

    def stop(self) -> None:
        """Stop every background worker registered with `on_stop`, newest first."""
        with self._lock:
            stoppers, self._stoppers = self._stoppers[::-1], []
        for stopper in stoppers:
            stopper()

    def rate_cache_status(self) -> dict[str, Any]:
        return _section(self.rate_cache)

    def fiat_status(self) -> dict[str, Any]:
        return _section(self.fiat)

    def weights_status(self) -> dict[str, Any]:
        return _section(self.weights)

    def readers_status(self) -> dict[str, Any]:
        return _section(self.readers)

    def status(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "freqtrade_version": self.freqtrade_version,
            "enabled": self.settings.enabled,
            "exchange": self.exchange_id,
            "settings": self.settings.effective(),
            "rate_cache": self.rate_cache_status(),
            "fiat": self.fiat_status(),
            "weights": self.weights_status(),
            "readers": self.readers_status(),
        }


def _section(component: Snapshotting | None) -> dict[str, Any]:
    return component.snapshot() if component is not None else {"active": False}


_current: Runtime | None = None
_current_lock = threading.Lock()


def current() -> Runtime | None:
    return _current


def replace(runtime: Runtime | None) -> Runtime | None:
    """Make `runtime` the current one; stop and return the one it replaces."""
    global _current
    with _current_lock:
        previous, _current = _current, runtime
    if previous is not None and previous is not runtime:
        previous.stop()
    return previous
