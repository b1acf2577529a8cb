"""The only code that reaches into Freqtrade internals: one module per Freqtrade target.

`install()` arms ratekit: it wraps Freqtrade's configuration loader, which validates the
`ratekit` section of every config once (a bad section stops the bot before it trades) and,
when `ratekit.enabled` is true, activates the feature targets below with the parsed settings,
kept in the process's runtime (`runtime.current().settings`): no hook parses the raw section
again. With the section absent or disabled, nothing but the (transparent) loader wrapper is
patched: Freqtrade runs as stock. `uninstall()` stops ratekit's workers and joins its threads,
then restores every attribute it replaced, in reverse order. Both are idempotent.

Each target module is an `_instrument()` / `_uninstrument()` pair (the shape of
OpenTelemetry's instrumentors); what it replaces is recorded by the one patcher
(`_patcher.PATCHER`). The components themselves are built by `freqtrade_ratekit.wiring`,
which imports no Freqtrade.

Hook points, verified on every supported Freqtrade version (see SUPPORTED_FREQTRADE):

module          Freqtrade target                              what ratekit does there
--------------  --------------------------------------------  ------------------------------------
config_loader   Configuration.load_config                     validation (once) and activation
exchange        Exchange._init_ccxt                           weight accounting on every ccxt
                                                              client (sync, async, ws); in a
                                                              command that does not trade, through
                                                              `commands` (lowest priority)
                Exchange.__init__ / Exchange.close            rate caches, their refresher, stop
                Exchange.get_rate                             reader paths served from memory,
                                                              failing pairs remembered
                FreqtradeBot.startup / whitelist refresh      pre-warm triggers, start-up /profit
readers         RPC._rpc_trade_status / _rpc_trade_statistics  REST/Telegram reads are reader
                                                              paths; /profit from a snapshot
                SQLAlchemy Session after_flush/after_commit   a committed write refreshes it
                (/after_rollback) events
fiat            freqtrade.rpc.rpc.CryptoToFiatConverter       background fiat conversion
api_server      ApiServer.configure_app                       the ratekit routes, behind
                                                              Freqtrade's own auth
commands        history_utils.retrieve_progress_tracker       download-data's progress shows the
                                                              time waited for exchange budget
sim.redirect    FtCoinGeckoApi.__init__ (tests, benchmarks)   stock's CoinGecko at an emulator
                (freqtrade_ratekit.sim.redirect)

Threads: every thread ratekit starts has an owner that stops and joins it on `uninstall()`
(or `Exchange.close()`): the rate book its refresher and pre-warm threads, the runtime the
fiat converter, the /profit snapshot worker and the start-up /profit thread.
"""

from __future__ import annotations

import logging
import re

from freqtrade_ratekit import runtime
from freqtrade_ratekit.config import RatekitSettings
from freqtrade_ratekit.patches._patcher import LOCK, PATCHER
from freqtrade_ratekit.patches._state import active_settings, own_version
from freqtrade_ratekit.patches.api_server import mount_routes
from freqtrade_ratekit.patches.readers import (
    READER_METHODS,
    is_reader_path,
    profit_snapshot_key,
    reader_path,
)

__all__ = [
    "FEATURE_TARGETS",
    "READER_METHODS",
    "SUPPORTED_FREQTRADE",
    "activate",
    "current_settings",
    "freqtrade_subcommands",
    "freqtrade_version",
    "install",
    "is_active",
    "is_installed",
    "is_reader_path",
    "mount_routes",
    "parse_version",
    "profit_snapshot_key",
    "reader_path",
    "supported_range_text",
    "uninstall",
    "version_supported",
]

logger = logging.getLogger(__name__)

SUPPORTED_FREQTRADE = ((2025, 12), (2026, 9))
"""Oldest and newest Freqtrade release (year, month) this version was tested on."""

FEATURE_TARGETS = ("api_server", "readers", "exchange", "fiat", "commands")
"""The target modules `activate` instruments, in this order (the config loader is armed by
`install`)."""


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
    return PATCHER.has("config_loader")


def is_active() -> bool:
    return PATCHER.has(*FEATURE_TARGETS)


def install() -> bool:
    """Arm ratekit; returns False (and patches nothing) on an unsupported Freqtrade version."""
    from freqtrade_ratekit.patches import config_loader

    with LOCK:
        if is_installed():
            return True
        version = freqtrade_version()
        if not version_supported(version):
            logger.error(
                "ratekit %s does not support Freqtrade %s (supported: %s); "
                "nothing was patched, Freqtrade runs as stock.",
                own_version(),
                version,
                supported_range_text(),
            )
            return False
        config_loader._instrument()
        return True


def uninstall() -> None:
    """Stop ratekit's workers (their threads joined) and restore every patched attribute,
    newest first."""
    with LOCK:
        runtime.replace(None)
        PATCHER.restore_all()


def current_settings() -> RatekitSettings | None:
    """The settings the bot config of this process was activated with, None when off."""
    return active_settings()


def activate(settings: RatekitSettings, *, command: str | None = None) -> None:
    """Install the feature targets (once) and start a fresh runtime for these settings;
    `command` is the Freqtrade subcommand of this process (`download-data`, ...), the name a
    non-bot client is listed under."""
    from freqtrade_ratekit.patches import api_server, commands, exchange, fiat, readers

    with LOCK:
        if not is_installed():
            raise RuntimeError("freqtrade_ratekit.install() must run before activate()")
        runtime.replace(
            runtime.Runtime(
                settings=settings, freqtrade_version=freqtrade_version(), command=command
            )
        )
        if is_active():
            return
        for target in (api_server, readers, exchange, fiat, commands):
            target._instrument()
        logger.info("ratekit %s active (Freqtrade %s)", own_version(), freqtrade_version())
