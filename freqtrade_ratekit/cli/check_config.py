"""`freqtrade-ratekit check-config`: validate a config the way the bot will, and say so.

Its own module because it loads Freqtrade's configuration code and prints a report, none of
which the other commands need; the validation itself is `config.validate_bot_config`, the same
function the bot runs at start-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

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


def main(argv: Sequence[str]) -> int:
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
    from freqtrade_ratekit.redact import MASK

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
        console.print(f"coingecko.api_key: {MASK} (set)")
    # ensure_ascii: a value from the environment may hold characters stdout cannot encode.
    console.print_json(json.dumps(effective, sort_keys=True), ensure_ascii=True)
    if settings.enabled:
        _print_clients(console, settings, exchange_of(config)[0])


def _print_clients(console: Any, settings: Any, exchange_id: str | None) -> None:
    """The non-bot clients (download-data, list-markets, webserver, ...) of the config's
    scope, read from its Redis: who besides the bots spends the budget. Never a failure."""
    import time

    from freqtrade_ratekit.cli.render import clients_table
    from freqtrade_ratekit.redact import mask_url, scrub, secret_forms, url_secrets

    weights = settings.weights
    reserve = f"non-bot commands use at most {1 - weights.reserve:.0%} of each pool"
    if not weights.uses_redis:
        console.print(
            f"Non-bot clients: memory backend, nothing is shared: each process counts only its "
            f"own calls ({reserve}).",
            markup=False,
        )
        return
    where = f"scope {weights.scope_id!r} on {mask_url(weights.backend)}"
    if exchange_id is None:
        console.print(f"Non-bot clients of {where}: no exchange.name, not listed.", markup=False)
        return
    from freqtrade_ratekit import wiring

    try:
        registry = wiring.build_client_registry(settings, exchange_id=exchange_id)
        try:
            clients = registry.clients()
        finally:
            registry.close()
    except Exception as exc:  # Redis down or refusing: the config is still valid
        detail = scrub(f"{type(exc).__name__}: {exc}", secret_forms(url_secrets(weights.backend)))
        console.print(
            f"Non-bot clients of {where}: could not be read ({' '.join(detail.split())}).",
            markup=False,
        )
        return
    if not clients:
        console.print(f"Non-bot clients of {where}: none ({reserve}).", markup=False)
        return
    console.print(f"Non-bot clients of {where} ({reserve}):", markup=False)
    console.print(clients_table(clients, time.time()))


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
