"""What ratekit is running in this process, for the REST routes, metrics and the CLI.

One `Runtime` per activated bot config. Components register themselves here as Freqtrade
constructs the objects they belong to (exchange, RPC, API server); the routes only read.
Plain code: no Freqtrade import, so the routes and metrics are testable without a bot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from freqtrade_ratekit import __version__
from freqtrade_ratekit.config import RatekitSettings
from freqtrade_ratekit.documents import (
    RatekitFiat,
    RatekitInactive,
    RatekitRateBook,
    RatekitReaders,
    RatekitStatus,
    RatekitWeights,
)

DocumentT_co = TypeVar("DocumentT_co", covariant=True)


class Snapshotting(Protocol[DocumentT_co]):
    """A component that publishes one document (see `documents.py`)."""

    def snapshot(self) -> DocumentT_co: ...


@dataclass
class Runtime:
    """The live ratekit objects of one bot; every field may still be empty during start-up."""

    settings: RatekitSettings
    freqtrade_version: str
    exchange_id: str | None = None
    command: str | None = None  # the Freqtrade subcommand this process runs (trade, ...)
    rate_cache: Snapshotting[RatekitRateBook] | None = None
    fiat: Snapshotting[RatekitFiat] | None = None
    weights: Snapshotting[RatekitWeights] | None = None
    readers: Snapshotting[RatekitReaders] | None = None
    _stoppers: list[Callable[[], object]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_stop(self, stopper: Callable[[], object]) -> None:
        """Run `stopper` at `stop()` (what it returns, e.g. a join's bool, is ignored)."""
        with self._lock:
            self._stoppers.append(stopper)

    def stop(self) -> None:
        """Stop every background worker registered with `on_stop`, newest first."""
        with self._lock:
            stoppers, self._stoppers = self._stoppers[::-1], []
        for stopper in stoppers:
            stopper()

    def rate_cache_status(self) -> RatekitRateBook | RatekitInactive:
        return _section(self.rate_cache)

    def fiat_status(self) -> RatekitFiat | RatekitInactive:
        return _section(self.fiat)

    def weights_status(self) -> RatekitWeights | RatekitInactive:
        return _section(self.weights)

    def readers_status(self) -> RatekitReaders | RatekitInactive:
        return _section(self.readers)

    def status(self) -> RatekitStatus:
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


DocumentT = TypeVar("DocumentT")


def _section(component: Snapshotting[DocumentT] | None) -> DocumentT | RatekitInactive:
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
