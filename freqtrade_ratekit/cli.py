"""The `freqtrade-ratekit` console script.

Its own subcommands (demo, check-config, status, emulator) run here; anything else is handed,
unchanged, to Freqtrade's own CLI after `install()`, and Freqtrade's exit code is returned.
"""

from __future__ import annotations

import argparse
import json
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

Freqtrade commands (run by Freqtrade's own CLI, with ratekit installed):
  {freqtrade_commands}

Examples:
  freqtrade-ratekit trade -c config.json -s MyStrategy
  freqtrade-ratekit check-config -c config.json
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


DEFAULT_CONFIG = "config.json"  # Freqtrade's own default when no -c is given


def load_like_freqtrade(files: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the files hold, what the bot runs): the config files merged by Freqtrade's own
    loader (later files win, `add_config_files` followed), then its FREQTRADE__SECTION__KEY
    environment variables merged over them, exactly as `Configuration.load_config` does."""
    import copy

    from freqtrade.configuration.environment_vars import environment_vars_to_dict
    from freqtrade.configuration.load_config import load_from_files
    from freqtrade.misc import deep_merge_dicts

    file_config = load_from_files(list(files))
    config = deep_merge_dicts(environment_vars_to_dict(), copy.deepcopy(file_config))
    return file_config, config


def environment_overrides() -> list[str]:
    """Names (never values) of the FREQTRADE__* variables Freqtrade merges into a config."""
    import os

    from freqtrade.constants import ENV_VAR_PREFIX

    return sorted(name for name in os.environ if name.startswith(ENV_VAR_PREFIX))


def check_config(argv: Sequence[str]) -> int:
    """Validate a config the way the bot will: same loading, same environment, same function
    (`validate_bot_config`). Security findings are printed as warnings: exit code unchanged."""
    from freqtrade_ratekit.config import RatekitConfigError, validate_bot_config
    from freqtrade_ratekit.security import security_warnings

    parser = argparse.ArgumentParser(
        prog="freqtrade-ratekit check-config",
        description="Validate the 'ratekit' section and print the effective settings, "
        "loading the config like Freqtrade does (FREQTRADE__* environment variables "
        "included), then warn about insecure settings.",
    )
    parser.add_argument(
        "-c",
        "--config",
        action="append",
        metavar="PATH",
        help="config file(s), merged like Freqtrade does (later files win); "
        f"default: {DEFAULT_CONFIG}",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print only the settings as JSON (security warnings go to stderr)",
    )
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # --help or bad arguments: argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    files = args.config or [DEFAULT_CONFIG]
    try:
        file_config, config = load_like_freqtrade(files)
    except Exception as exc:  # Freqtrade raises OperationalException for unreadable files
        print(f"Could not load {', '.join(files)}: {exc}", file=sys.stderr)
        return 1
    warnings = security_warnings(config, file_config=file_config)
    try:
        settings = validate_bot_config(config)
    except RatekitConfigError as exc:
        print(exc, file=sys.stderr)
        _print_security(warnings, sys.stderr)
        return 1
    effective = settings.effective()
    if args.json:
        print(json.dumps(effective, indent=2, sort_keys=True))
        _print_security(warnings, sys.stderr, quiet_when_none=True)
        return 0
    _print_report(settings, config, effective)
    _print_security(warnings, sys.stdout)
    return 0


def _print_report(settings: Any, config: dict[str, Any], effective: dict[str, Any]) -> None:
    from rich.console import Console

    from freqtrade_ratekit.config import exchange_of
    from freqtrade_ratekit.patches import freqtrade_version, supported_range_text, version_supported

    console = Console()
    version = freqtrade_version()
    state = "enabled" if settings.enabled else "disabled (Freqtrade runs as stock)"
    console.print(f"[bold]ratekit[/bold] section is valid: ratekit {state}")
    if not version_supported(version):
        console.print(
            f"[yellow]warning:[/yellow] installed Freqtrade {version} is outside the supported "
            f"range {supported_range_text()}; ratekit would not activate."
        )
    overrides = environment_overrides()
    if overrides:
        console.print("environment overrides applied, as the bot applies them:", markup=False)
        for name in overrides:  # ascii(): a name is whatever bytes the environment holds
            console.print(f"  {ascii(name)[1:-1]}", markup=False, highlight=False)
    if exchange_of(config)[0] is None:
        console.print(
            "note: no exchange.name in this config: weights.preset 'auto', weights.pools and "
            "the pools of weights.endpoints are checked when the bot starts.",
            markup=False,
        )
    coingecko = config.get("coingecko")
    if isinstance(coingecko, dict) and coingecko.get("api_key"):
        console.print("coingecko.api_key: *** (set)")
    # ensure_ascii: a value from the environment may hold characters stdout cannot encode.
    console.print_json(json.dumps(effective, sort_keys=True), ensure_ascii=True)


def _print_security(warnings: Sequence[Any], stream: Any, *, quiet_when_none: bool = False) -> None:
    """The security section: warnings only, never a secret value, never a failure."""
    if not warnings:
        if not quiet_when_none:
            print("Security: no warnings.", file=stream)
        return
    print(
        f"Security: {len(warnings)} warning(s) (they do not change the exit code):",
        file=stream,
    )
    for warning in warnings:
        print(f"  ! {warning.text()}", file=stream)


def _lazy(module: str, attr: str = "main") -> Callable[[Sequence[str]], int]:
    def run(argv: Sequence[str]) -> int:
        import importlib

        entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), attr)
        return entry(list(argv))

    return run


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "check-config": check_config,
    "demo": _lazy("freqtrade_ratekit.demo"),
    "emulator": _lazy("freqtrade_ratekit.sim.runner"),
    "status": _lazy("freqtrade_ratekit.status"),
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


if __name__ == "__main__":
    sys.exit(main())
