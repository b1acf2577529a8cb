"""`freqtrade-ratekit status`: a running bot's ratekit state, read over its REST API.

This module owns the connection (arguments, config files, environment, `StatusClient`) and
the command itself; the tables are drawn by `cli.render`.

It connects the way `freqtrade-client` does (the `api_server` section of a config file, basic
auth, `FtRestClient`'s session), with three additions freqtrade-client lacks: `--url`,
`--username` and `--password` override the config, several `-c` files merge like Freqtrade
merges them, and Freqtrade's own `FREQTRADE__API_SERVER__*` environment variables apply, so a
password need not appear on the command line.

Every failure names the problem and the URL (never the password) and exits non-zero, because
this command is what users run when something already looks wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import requests
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from freqtrade_ratekit.cli.render import render_status
from freqtrade_ratekit.redact import MASK, mask_url

STATUS_PATH = "/api/v1/ratekit/status"
PING_PATH = "/api/v1/ping"
DEFAULT_CONFIG = "config.json"
DEFAULT_WATCH_INTERVAL = 2.0

EXIT_OK = 0
EXIT_ERROR = 1  # bad config, unexpected answer
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_UNREACHABLE = 3
EXIT_UNAUTHORIZED = 4
EXIT_NOT_ENABLED = 5

_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class StatusError(Exception):
    """A failure with a message fit for the user and the exit code it deserves."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Connection:
    """Where the bot's REST API is and how to log in; `shown_url` is safe to print."""

    server_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def shown_url(self) -> str:
        return mask_url(self.server_url)


class _SecretSafeParser(argparse.ArgumentParser):
    """An ArgumentParser whose error messages never echo a password from the command line.

    argparse quotes the offending arguments ("unrecognized arguments: -x s3cret", "ambiguous
    option: --pass=s3cret"), and a password is exactly what a mistyped flag leaves behind.
    """

    _secrets: tuple[str, ...] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        self._secrets = tuple(sorted(secret_values(argv), key=len, reverse=True))
        return super().parse_known_args(argv, namespace)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # argparse would list them verbatim; a mistyped --pasword=x is a password
            self.error(f"unrecognized arguments: {' '.join(_value_masked(extras))}")
        return parsed

    def error(self, message: str) -> NoReturn:
        for secret in self._secrets:
            message = message.replace(secret, MASK).replace(repr(secret)[1:-1], MASK)
        super().error(message)


def secret_values(argv: Sequence[str]) -> list[str]:
    """The password values in `argv`: after -p/--password (or an abbreviation argparse would
    accept, --pass), glued to it (-ps3cret, --password=s3cret), even when they start with '-'."""
    found = []
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        long_form = name.startswith("--") and len(name) > 2 and "--password".startswith(name)
        if long_form and equals:
            found.append(value)
        elif long_form or arg == "-p":
            if index + 1 < len(argv):
                found.append(argv[index + 1])
        elif arg.startswith("-p") and not arg.startswith("--") and len(arg) > 2:
            found.extend((arg[2:], arg[2:].removeprefix("=")))
    return [value for value in found if value]


def _value_masked(extras: Sequence[str]) -> list[str]:
    """Unrecognized arguments as an error may show them: option names kept, their values
    (`--pasword=x`, or the argument after an unknown option) masked."""
    shown = []
    after_option = False
    for arg in extras:
        if arg.startswith("-") and len(arg) > 1:
            name, equals, _ = arg.partition("=")
            shown.append(f"{name}={MASK}" if equals else arg)
            after_option = not equals
        else:
            shown.append(MASK if after_option else arg)
            after_option = False
    return shown


def build_parser() -> argparse.ArgumentParser:
    parser = _SecretSafeParser(
        prog="freqtrade-ratekit status",
        description=(
            "Show a running bot's ratekit state (rate cache, fiat, weights) over its REST API. "
            "Connection options work like freqtrade-client's."
        ),
        epilog=(
            "Credentials come from -u/--username and -p/--password, else "
            "FREQTRADE__API_SERVER__USERNAME/PASSWORD (which keeps the password off the "
            "command line and out of the shell history), else the config's api_server "
            f"section. Exit codes: 0 ok, 1 error, 2 usage, {EXIT_UNREACHABLE} unreachable, "
            f"{EXIT_UNAUTHORIZED} wrong credentials, {EXIT_NOT_ENABLED} ratekit not enabled "
            "on the bot."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        action="append",
        metavar="PATH",
        help=f"config file(s) with an api_server section, merged like Freqtrade does "
        f"(default: {DEFAULT_CONFIG} when it exists)",
    )
    parser.add_argument(
        "--url", help="server URL, e.g. http://127.0.0.1:8080 (overrides the config)"
    )
    parser.add_argument("-u", "--username", help="API username (overrides the config)")
    parser.add_argument("-p", "--password", help="API password (overrides the config)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="HTTP timeout"
    )
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="rows per list (entries, endpoints)"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help=f"print the raw {STATUS_PATH} JSON and exit"
    )
    output.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=DEFAULT_WATCH_INTERVAL,
        metavar="SECONDS",
        help=f"refresh every SECONDS (default {DEFAULT_WATCH_INTERVAL:g}) until Ctrl-C",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run `freqtrade-ratekit status ARGV`; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # --help or bad arguments: argparse has printed why
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.watch is not None and args.watch <= 0:
        parser.print_usage(sys.stderr)
        print("freqtrade-ratekit status: error: --watch needs a positive interval", file=sys.stderr)
        return EXIT_USAGE
    console = Console()
    try:
        client = StatusClient(resolve_connection(args), timeout=args.timeout)
        status = client.fetch()
        if args.json:
            print(json.dumps(status, indent=2))
        elif args.watch is not None:
            watch(client, console, args.watch, top=args.top, first=status)
        else:
            console.print(render_status(status, client.connection.shown_url, top=args.top))
    except StatusError as exc:
        print(f"freqtrade-ratekit status: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        pass
    return EXIT_OK


# -- connection ------------------------------------------------------------------------------


def resolve_connection(args: argparse.Namespace) -> Connection:
    """Config file(s), then FREQTRADE__* environment variables, then command-line flags."""
    api_server: dict[str, Any] = {}
    files = args.config or ([DEFAULT_CONFIG] if Path(DEFAULT_CONFIG).is_file() else [])
    if files:
        api_server.update(_load_api_server(files))
    elif not args.url:
        raise StatusError(
            f"no {DEFAULT_CONFIG} in {Path.cwd()}; pass -c CONFIG (with an api_server section) "
            "or --url http://HOST:PORT"
        )
    api_server.update(_api_server_from_environment())

    if args.url:
        server_url = args.url
    else:
        host = str(api_server.get("listen_ip_address", "127.0.0.1"))
        host = _WILDCARD_HOSTS.get(host, host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        server_url = f"http://{host}:{api_server.get('listen_port', 8080)}"
    if "://" not in server_url:
        server_url = f"http://{server_url}"
    username = args.username if args.username is not None else api_server.get("username")
    password = args.password if args.password is not None else api_server.get("password")
    return Connection(
        server_url=server_url.rstrip("/"),
        username=None if username is None else str(username),
        password=None if password is None else str(password),
    )


def _load_api_server(files: list[str]) -> dict[str, Any]:
    from freqtrade.configuration.load_config import load_from_files

    try:
        config = load_from_files(files)
    except Exception as exc:  # Freqtrade raises OperationalException/ConfigurationError
        raise StatusError(f"could not load {', '.join(files)}: {exc}") from None
    section = config.get("api_server")
    return dict(section) if isinstance(section, Mapping) else {}


def _api_server_from_environment() -> dict[str, Any]:
    from freqtrade.configuration.environment_vars import environment_vars_to_dict

    section = environment_vars_to_dict().get("api_server")
    return dict(section) if isinstance(section, Mapping) else {}


class StatusClient:
    """Reads `/api/v1/ratekit/status` through freqtrade-client's session and basic auth.

    `FtRestClient._call` swallows connection errors and ignores the HTTP status, so the
    request goes through its session directly and every failure is classified here.
    """

    def __init__(self, connection: Connection, timeout: float = 10.0) -> None:
        from freqtrade_client import FtRestClient

        self.connection = connection
        self._timeout = timeout
        self._client = FtRestClient(
            connection.server_url, connection.username, connection.password, timeout=timeout
        )

    def fetch(self) -> dict[str, Any]:
        response = self._get(STATUS_PATH)
        url = self.connection.shown_url
        if response.status_code == 401:
            if not self.connection.username or not self.connection.password:
                raise StatusError(
                    f"{url} wants a username and password (HTTP 401): set api_server.username/"
                    "password in the config, or pass --username/--password",
                    EXIT_UNAUTHORIZED,
                )
            raise StatusError(
                f"wrong username or password for {url} (HTTP 401, user "
                f"{self.connection.username!r})",
                EXIT_UNAUTHORIZED,
            )
        if response.status_code == 404:
            raise self._explain_not_found()
        if response.status_code == 503:
            raise StatusError(
                f"ratekit is installed in the bot at {url} but not active (HTTP 503): "
                "is 'ratekit.enabled' true, and has the bot finished starting?",
                EXIT_NOT_ENABLED,
            )
        if response.status_code != 200:
            raise StatusError(
                f"{url}{STATUS_PATH} answered HTTP {response.status_code}: {_short(response.text)}"
            )
        try:
            status = response.json()
        except ValueError:
            raise StatusError(
                f"{url}{STATUS_PATH} did not answer JSON: {_short(response.text)}"
            ) from None
        if not isinstance(status, dict):
            raise StatusError(f"{url}{STATUS_PATH} answered {type(status).__name__}, not an object")
        return status

    def _get(self, path: str) -> requests.Response:
        url = self.connection.shown_url
        try:
            return self._client._session.get(
                f"{self.connection.server_url}{path}",
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except requests.Timeout:
            raise StatusError(
                f"no answer from {url} within {self._timeout:g} s (is the bot busy or hung?)",
                EXIT_UNREACHABLE,
            ) from None
        except requests.ConnectionError as exc:
            problem = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise StatusError(
                f"cannot reach the Freqtrade REST API at {url}: {problem}. Is the bot running "
                "with api_server.enabled, and is this its listen address and port?",
                EXIT_UNREACHABLE,
            ) from None
        except requests.RequestException as exc:
            raise StatusError(
                f"request to {url} failed: {type(exc).__name__}", EXIT_UNREACHABLE
            ) from None

    def _explain_not_found(self) -> StatusError:
        """A 404 means either a bot without ratekit or no Freqtrade API at all: tell which."""
        url = self.connection.shown_url
        try:
            is_freqtrade = self._get(PING_PATH).json().get("status") == "pong"
        except (StatusError, ValueError, AttributeError):
            is_freqtrade = False
        if is_freqtrade:
            return StatusError(
                f"ratekit is not enabled on the bot at {url} ({STATUS_PATH} is not found): "
                "start the bot with `freqtrade-ratekit trade ...` and set "
                '"ratekit": {"enabled": true} in its config',
                EXIT_NOT_ENABLED,
            )
        return StatusError(
            f"no Freqtrade REST API at {url} ({STATUS_PATH} and {PING_PATH} are not found): "
            "check --url or api_server.listen_ip_address/listen_port",
            EXIT_ERROR,
        )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- live view -------------------------------------------------------------------------------


def watch(
    client: StatusClient,
    console: Console,
    interval: float,
    *,
    top: int,
    first: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> None:
    """Redraw the tables every `interval` seconds until Ctrl-C (KeyboardInterrupt).

    A failed refresh is shown above the last good figures instead of ending the view: a bot
    restarting for a moment should not need the command restarted too.
    """
    url = client.connection.shown_url
    status = first if first is not None else client.fetch()
    view = render_status(status, url, top=top, now=clock())
    with Live(view, console=console, auto_refresh=False) as live:
        while True:
            sleep(interval)
            try:
                status = client.fetch()
                view = render_status(status, url, top=top, now=clock())
            except StatusError as exc:
                error = Text(f"refresh failed at {time.strftime('%H:%M:%S')}: {exc}", "bold red")
                live.update(Group(error, view), refresh=True)
                continue
            live.update(view, refresh=True)
