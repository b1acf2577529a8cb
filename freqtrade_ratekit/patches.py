"""The only module that reaches into Freqtrade internals.

`install()` arms ratekit: it wraps Freqtrade's configuration loader, which validates the
`ratekit` section of every config (a bad section stops the bot before it trades) and, when
`ratekit.enabled` is true, activates the feature patches below. With the section absent or
disabled, nothing but the (transparent) loader wrapper is patched: Freqtrade runs as stock.
`uninstall()` restores every attribute it replaced, in reverse order. Both are idempotent.

Hook points, verified on every supported Freqtrade version (see SUPPORTED_FREQTRADE):
- `Configuration.load_config`            validation and activation
- `Exchange._init_ccxt`                  weight accounting on every ccxt client (sync, async, ws)
- `Exchange.__init__` / `Exchange.close` rate caches and their refresher, clean stop
- `Exchange.get_rate`                    reader paths served from memory, failing pairs remembered
- `RPC._rpc_trade_status` & co.          mark REST/Telegram/webhook reads as reader paths
- `freqtrade.rpc.rpc.CryptoToFiatConverter`  background fiat conversion
- `FreqtradeBot.startup` / whitelist     pre-warm triggers
- `ApiServer.configure_app`              the ratekit routes, behind Freqtrade's own auth
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from freqtrade_ratekit import runtime
from freqtrade_ratekit.config import RatekitConfigError, RatekitSettings, settings_from_config

logger = logging.getLogger(__name__)

SUPPORTED_FREQTRADE = ((2025, 12), (2026, 9))
"""Oldest and newest Freqtrade release (year, month) this version was tested on."""

_reader = contextvars.ContextVar("ratekit_reader_path", default=False)


@dataclass
class _Patch:
    owner: Any
    name: str
    original: Any
    had_own: bool


class _Patcher:
    """Records every replaced attribute so that uninstall puts back exactly what was there."""

    def __init__(self) -> None:
        self._patches: list[_Patch] = []

    def replace(self, owner: Any, name: str, new: Any) -> None:
        had_own = name in vars(owner)
        self._patches.append(_Patch(owner, name, getattr(owner, name), had_own))
        setattr(owner, name, new)

    def restore_all(self) -> None:
        while self._patches:
            patch = self._patches.pop()
            if patch.had_own:
                setattr(patch.owner, patch.name, patch.original)
            else:
                delattr(patch.owner, patch.name)

    def __bool__(self) -> bool:
        return bool(self._patches)


_lock = threading.RLock()
_armed = _Patcher()
_active = _Patcher()


def freqtrade_version() -> str:
    import freqtrade

    return str(freqtrade.__version__)


def parse_version(version: str) -> tuple[int, int] | None:
    match = re.match(r"^(\d{4})\.(\d{1,2})", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def version_supported(version: str) -> bool:
    parsed = parse_version(version)
    return parsed is not None and SUPPORTED_FREQTRADE[0] <= parsed <= SUPPORTED_FREQTRADE[1]


def supported_range_text() -> str:
    (y0, m0), (y1, m1) = SUPPORTED_FREQTRADE
    return f"{y0}.{m0} to {y1}.{m1}"


def freqtrade_subcommands() -> list[str]:
    """Freqtrade's CLI subcommands, read from its own argument parser (for `--help`)."""
    from argparse import _SubParsersAction

    from freqtrade.commands.arguments import Arguments

    arguments = Arguments([])
    arguments._build_subcommands()
    for action in arguments.parser._actions:
        if isinstance(action, _SubParsersAction):
            return list(action.choices)
    raise LookupError("Freqtrade's parser has no subcommands")


def is_installed() -> bool:
    return bool(_armed)


def is_active() -> bool:
    return bool(_active)


def install() -> bool:
    """Arm ratekit; returns False (and patches nothing) on an unsupported Freqtrade version."""
    with _lock:
        if _armed:
            return True
        version = freqtrade_version()
        if not version_supported(version):
            logger.error(
                "ratekit %s does not support Freqtrade %s (supported: %s); "
                "nothing was patched, Freqtrade runs as stock.",
                _own_version(),
                version,
                supported_range_text(),
            )
            return False
        from freqtrade.configuration import Configuration

        _armed.replace(Configuration, "load_config", _wrap_load_config(Configuration.load_config))
        return True


def uninstall() -> None:
    """Stop ratekit's workers and restore every patched attribute."""
    with _lock:
        runtime.replace(None)
        _active.restore_all()
        _armed.restore_all()


def _own_version() -> str:
    from freqtrade_ratekit import __version__

    return __version__


def _config_error(exc: RatekitConfigError) -> Exception:
    """A Freqtrade OperationalException, so `freqtrade` exits non-zero with the message."""
    from freqtrade.exceptions import OperationalException

    return OperationalException(str(exc))


def _wrap_load_config(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def load_config(self: Any) -> dict[str, Any]:
        config = original(self)
        try:
            settings = settings_from_config(config)
        except RatekitConfigError as exc:
            raise _config_error(exc) from None
        if settings.enabled:
            activate(settings)
        elif not _active:
            logger.info("ratekit is disabled for this config: Freqtrade runs unpatched")
        return config

    return load_config


def settings_of(config: dict[str, Any]) -> RatekitSettings | None:
    """The enabled settings of a Freqtrade config, or None when ratekit is off for it."""
    try:
        settings = settings_from_config(config)
    except RatekitConfigError:
        return None
    return settings if settings.enabled else None


def activate(settings: RatekitSettings) -> None:
    """Install the feature patches (once) and start a fresh runtime for this config."""
    with _lock:
        if not _armed:
            raise RuntimeError("freqtrade_ratekit.install() must run before activate()")
        runtime.replace(runtime.Runtime(settings=settings, freqtrade_version=freqtrade_version()))
        if _active:
            return
        _patch_api_server()
        _patch_reader_paths()
        logger.info("ratekit %s active (Freqtrade %s)", _own_version(), freqtrade_version())


# --- reader paths -------------------------------------------------------------------------


def is_reader_path() -> bool:
    """True inside a REST / Telegram / webhook read, where the network must never be awaited."""
    return _reader.get()


@contextmanager
def reader_path() -> Iterator[None]:
    token = _reader.set(True)
    try:
        yield
    finally:
        _reader.reset(token)


def _as_reader(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reader_path():
            return original(*args, **kwargs)

    return wrapper


def _patch_reader_paths() -> None:
    from freqtrade.freqtradebot import FreqtradeBot
    from freqtrade.rpc.rpc import RPC

    for name in ("_rpc_trade_status", "_rpc_trade_statistics"):
        _active.replace(RPC, name, _as_reader(getattr(RPC, name)))
    _active.replace(FreqtradeBot, "_notify_exit", _as_reader(FreqtradeBot._notify_exit))


# --- REST API -----------------------------------------------------------------------------


def _patch_api_server() -> None:
    from freqtrade.rpc.api_server.webserver import ApiServer

    original = ApiServer.configure_app

    @functools.wraps(original)
    def configure_app(self: Any, app: Any, config: dict[str, Any]) -> None:
        original(self, app, config)
        settings = settings_of(config)
        if settings is not None and settings.api_enabled:
            mount_routes(app)

    _active.replace(ApiServer, "configure_app", configure_app)


def mount_routes(app: Any) -> None:
    """Mount the ratekit router ahead of Freqtrade's UI catch-all, behind Freqtrade's auth."""
    from fastapi import Depends
    from freqtrade.rpc.api_server.api_auth import http_basic_or_jwt_token

    from freqtrade_ratekit.api import router

    before = len(app.router.routes)
    app.include_router(router, prefix="/api/v1", dependencies=[Depends(http_basic_or_jwt_token)])
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added


# --- CoinGecko ----------------------------------------------------------------------------


def redirect_coingecko(url: str) -> None:
    """Point stock Freqtrade's CoinGecko client at `url` (an emulator, proxy or mirror).

    Used for the stock side of benchmarks and tests; changes nothing else.
    """
    from freqtrade.util.coin_gecko import FtCoinGeckoApi

    base = url.rstrip("/") + "/"
    original = FtCoinGeckoApi.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.api_base_url = base

    FtCoinGeckoApi.__init__ = __init__  # type: ignore[method-assign]
