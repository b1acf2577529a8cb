"""The one record of what ratekit replaced in Freqtrade (and ccxt, SQLAlchemy, CoinGecko).

Every target module patches through `PATCHER.target(NAME)`; `restore(NAME)` puts back one
target's attributes, `restore_all()` everything, newest first, so that patches stacked on the
same attribute unwind in the right order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Patch:
    target: str
    owner: Any
    name: str
    original: Any
    had_own: bool

    def undo(self) -> None:
        if self.had_own:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)


@dataclass
class _Listener:
    target: str
    remove: Callable[[], None]

    def undo(self) -> None:
        self.remove()


class _Patcher:
    """Records every replaced attribute (and event listener) so that restoring puts back
    exactly what was there."""

    def __init__(self) -> None:
        self._patches: list[_Patch | _Listener] = []
        self._lock = threading.RLock()

    def target(self, name: str) -> _Target:
        return _Target(self, name)

    def replace(self, target: str, owner: Any, name: str, new: Any) -> None:
        with self._lock:
            had_own = name in vars(owner)
            self._patches.append(_Patch(target, owner, name, getattr(owner, name), had_own))
            setattr(owner, name, new)

    def listen(self, target: str, on: Any, identifier: str, listener: Callable[..., Any]) -> None:
        """An SQLAlchemy event listener, removed again by `restore`."""
        from sqlalchemy import event

        with self._lock:
            event.listen(on, identifier, listener)
            self._patches.append(_Listener(target, lambda: event.remove(on, identifier, listener)))

    def has(self, *targets: str) -> bool:
        """Whether anything of one of `targets` (of any target, when none is named) is in."""
        with self._lock:
            return any(not targets or patch.target in targets for patch in self._patches)

    def restore(self, target: str) -> None:
        """Undo one target's patches, newest first."""
        with self._lock:
            mine = [patch for patch in self._patches if patch.target == target]
            self._patches = [patch for patch in self._patches if patch.target != target]
        for patch in reversed(mine):
            patch.undo()

    def restore_all(self) -> None:
        with self._lock:
            patches, self._patches = self._patches, []
        for patch in reversed(patches):
            patch.undo()


@dataclass(frozen=True)
class _Target:
    """One target module's view of the patcher: what it replaces is recorded under its name."""

    patcher: _Patcher
    name: str

    def replace(self, owner: Any, attribute: str, new: Any) -> None:
        self.patcher.replace(self.name, owner, attribute, new)

    def listen(self, on: Any, identifier: str, listener: Callable[..., Any]) -> None:
        self.patcher.listen(self.name, on, identifier, listener)

    def restore(self) -> None:
        self.patcher.restore(self.name)


PATCHER = _Patcher()
"""The process's one patcher: `uninstall()` restores everything it recorded."""

LOCK = threading.RLock()
"""Serialises install, activation and the building of per-bot components."""
