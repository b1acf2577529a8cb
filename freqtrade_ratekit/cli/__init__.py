"""The `freqtrade-ratekit` console script (`freqtrade_ratekit.cli:main`).

Its own subcommands (demo, check-config, status, emulator, presets) run here; anything else is
handed, unchanged, to Freqtrade's own CLI after `install()`, and Freqtrade's exit code is
returned.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from freqtrade_ratekit import __version__

USAGE = """\
usage: freqtrade-ratekit <command> [options]

ratekit commands:
  demo            run an offline demo: emulated exchange + CoinGecko, a real dry-run bot
  check-config    validate the 'ratekit' section of a config and print the effective settings
  status          show a running bot's ratekit state (cache, fiat, weights) over its REST API
  emulator        start the bundled exchange and CoinGecko emulators in the foreground
  presets         list the exchange weight presets: pools, limits, headers read, sources

Freqtrade commands (run by Freqtrade's own CLI, with ratekit installed):
  {freqtrade_commands}

Examples:
  freqtrade-ratekit trade -c config.json -s MyStrategy
  freqtrade-ratekit check-config -c config.json
  freqtrade-ratekit presets --json
  freqtrade-ratekit status -c config.json --watch
"""


def _print_help() -> None:
    from freqtrade_ratekit.patches import freqtrade_subcommands

    try:
        commands = ", ".join(freqtrade_subcommands())
    except Exception:  # the help must print even if Freqtrade's parser changes
        commands = "trade, webserver, backtesting, ... (see `freqtrade --help`)"
    print(USAGE.format(freqtrade_commands=commands))
    print(f"freqtrade-ratekit {__version__}")


def _lazy(module: str, attr: str = "main") -> Callable[[Sequence[str]], int]:
    def run(argv: Sequence[str]) -> int:
        import importlib

        entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), attr)
        return entry(list(argv))

    return run


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "check-config": _lazy("freqtrade_ratekit.cli.check_config"),
    "demo": _lazy("freqtrade_ratekit.demo"),
    "emulator": _lazy("freqtrade_ratekit.sim.runner"),
    "presets": _lazy("freqtrade_ratekit.cli.presets"),
    "status": _lazy("freqtrade_ratekit.cli.status_client"),
}


def run_freqtrade(argv: Sequence[str]) -> int:
    """Run Freqtrade's own CLI with ratekit installed; returns Freqtrade's exit code."""
    from freqtrade.main import main as freqtrade_main

    from freqtrade_ratekit.patches import install

    install()
    try:
        freqtrade_main(list(argv))
    except SystemExit as exc:
        return _exit_code(exc.code)
    return 0


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        _print_help()
        return 0
    if args[0] in ("-V", "--version"):
        print(f"freqtrade-ratekit {__version__}")
        return run_freqtrade(["--version"])
    command = COMMANDS.get(args[0])
    if command is not None:
        return command(args[1:])
    return run_freqtrade(args)
