"""Security advice for a Freqtrade config: what `check-config` warns about, without failing.

None of these stops a bot (Freqtrade runs with all of them), but each one has cost people
money: exchange keys in a config file that gets copied, shared or committed; a REST API
reachable from the network behind a default password; `CORS_origins: ["*"]`; a shared Redis
budget that anyone on the network can read or drain. Every warning names the key and the fix,
and never a secret's value (not even its length).

Pure functions over config dicts: no I/O, no Freqtrade import, safe on any input.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MIN_PASSWORD_CHARS = 12
MIN_JWT_SECRET_CHARS = 32  # Freqtrade's own schema minimum for api_server.jwt_secret_key
GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'

# Exchange credentials Freqtrade reads (freqtrade/configuration/config_secrets.py), and the
# environment variable that sets each. Freqtrade lower-cases the keys of FREQTRADE__*
# variables, so a camelCase key is set through its snake_case twin, which Freqtrade also reads.
# Wallet addresses are left out: they are public, not credentials.
EXCHANGE_CREDENTIALS: dict[str, str] = {
    "key": "FREQTRADE__EXCHANGE__KEY",
    "api_key": "FREQTRADE__EXCHANGE__API_KEY",
    "apiKey": "FREQTRADE__EXCHANGE__KEY",
    "secret": "FREQTRADE__EXCHANGE__SECRET",
    "password": "FREQTRADE__EXCHANGE__PASSWORD",
    "uid": "FREQTRADE__EXCHANGE__UID",
    "account_id": "FREQTRADE__EXCHANGE__ACCOUNT_ID",
    "accountId": "FREQTRADE__EXCHANGE__ACCOUNT_ID",
    "private_key": "FREQTRADE__EXCHANGE__PRIVATE_KEY",
    "privateKey": "FREQTRADE__EXCHANGE__PRIVATE_KEY",
}
# Credentials passed to ccxt directly; Freqtrade keeps the case of their final key.
CCXT_SECTIONS = ("ccxt_config", "ccxt_sync_config", "ccxt_async_config")
CCXT_CREDENTIALS = ("apiKey", "secret", "password", "uid", "privateKey", "token", "twofa")

# Values shipped in Freqtrade's docs and templates, and in ratekit's example config.
KNOWN_DEFAULTS = frozenset(
    {
        "",
        "admin",
        "freqtrade",
        "freqtrader",
        "password",
        "secret",
        "super-secret",
        "supersecret",
        "somethingrandom",
        "somethingrandomsomethingrandom123",
        "supersecurepassword",
        "supersecretpassword",
        "secret_ws_t0ken.",
    }
)
_PLACEHOLDER = re.compile(r"change[-_ ]?(me|this)|replace[-_ ]?me|your[-_ ]?(password|secret)")


@dataclass(frozen=True)
class SecurityWarning:
    """One finding: the config key, what is wrong, and how to fix it (never a secret value)."""

    key: str
    problem: str
    fix: str

    def text(self) -> str:
        return f"{self.key}: {self.problem}. Fix: {self.fix}"


def security_warnings(
    config: Mapping[str, Any], file_config: Mapping[str, Any] | None = None
) -> list[SecurityWarning]:
    """Every warning for a config. `config` is what the bot runs (files and environment
    merged); `file_config` what the files alone hold (default: `config`), because a secret
    written in a file is exposed even when an environment variable overrides it."""
    written = config if file_config is None else file_config
    return [
        *credentials_in_file(written),
        *api_server_warnings(config),
        *redis_warnings(config),
    ]


def credentials_in_file(file_config: Mapping[str, Any]) -> list[SecurityWarning]:
    """Exchange credentials (and a Redis password) written in the config file."""
    found = []
    exchange = _mapping(file_config.get("exchange"))
    for name, variable in EXCHANGE_CREDENTIALS.items():
        if _is_set(exchange.get(name)):
            found.append(
                SecurityWarning(
                    f"exchange.{name}",
                    "is written in the config file, where copies, backups and shared "
                    "snippets expose it",
                    f"remove it from the file and pass it as the environment variable "
                    f"{variable}; give the key trading rights only (no withdrawals) and "
                    "restrict it to your bot's IP address on the exchange",
                )
            )
    for section in CCXT_SECTIONS:
        values = _mapping(exchange.get(section))
        for name in CCXT_CREDENTIALS:
            if _is_set(values.get(name)):
                found.append(
                    SecurityWarning(
                        f"exchange.{section}.{name}",
                        "is written in the config file",
                        f"remove it from the file and pass it as the environment variable "
                        f"FREQTRADE__EXCHANGE__{section.upper()}__{name}",
                    )
                )
    backend = _mapping(_mapping(file_config.get("ratekit")).get("weights")).get("backend")
    if isinstance(backend, str) and _url_password(backend):
        found.append(
            SecurityWarning(
                "ratekit.weights.backend",
                "holds a Redis password written in the config file",
                "remove the URL from the file and pass it as the environment variable "
                "FREQTRADE__RATEKIT__WEIGHTS__BACKEND",
            )
        )
    return found


def api_server_warnings(config: Mapping[str, Any]) -> list[SecurityWarning]:
    """A REST API reachable beyond loopback with weak credentials, and a wildcard CORS."""
    api = _mapping(config.get("api_server"))
    if api.get("enabled") is not True:
        return []
    found = []
    origins = api.get("CORS_origins")
    if isinstance(origins, list) and "*" in origins:
        found.append(
            SecurityWarning(
                "api_server.CORS_origins",
                'contains "*": any web page open in your browser may call the bot\'s API',
                'list the exact origins of your UI instead, e.g. ["http://127.0.0.1:8080"]',
            )
        )
    host = api.get("listen_ip_address", "127.0.0.1")
    if is_loopback(host):
        return found
    where = f"the API server listens on {_shown_host(host)}, beyond loopback"
    bind = (
        "or set api_server.listen_ip_address to 127.0.0.1 (in Docker, publish the port on "
        "127.0.0.1 only: -p 127.0.0.1:8080:8080)"
    )
    weakness = _weakness(api.get("password"), MIN_PASSWORD_CHARS, api.get("username"))
    if weakness:
        found.append(
            SecurityWarning(
                "api_server.password",
                f"{weakness}, and {where}",
                f"set a random password of at least {MIN_PASSWORD_CHARS} characters ({GENERATE}"
                f") passed as FREQTRADE__API_SERVER__PASSWORD, {bind}",
            )
        )
    # Freqtrade signs its tokens with "super-secret" when the key is absent.
    weakness = _weakness(api.get("jwt_secret_key", "super-secret"), MIN_JWT_SECRET_CHARS)
    if weakness:
        found.append(
            SecurityWarning(
                "api_server.jwt_secret_key",
                f"{weakness}: whoever knows it can forge login tokens, and {where}",
                f"set a random secret of at least {MIN_JWT_SECRET_CHARS} characters "
                f"({GENERATE}) passed as FREQTRADE__API_SERVER__JWT_SECRET_KEY, {bind}",
            )
        )
    tokens = api.get("ws_token")
    for index, token in enumerate(tokens if isinstance(tokens, list) else [tokens]):
        weakness = _weakness(token, MIN_PASSWORD_CHARS) if token is not None else None
        if weakness:
            key = "api_server.ws_token" + (f"[{index}]" if isinstance(tokens, list) else "")
            found.append(
                SecurityWarning(
                    key,
                    f"{weakness}, and {where}",
                    f"set a random token ({GENERATE}), {bind}",
                )
            )
    return found


def redis_warnings(config: Mapping[str, Any]) -> list[SecurityWarning]:
    """A shared Redis budget on another host without a password or without TLS."""
    ratekit = _mapping(config.get("ratekit"))
    backend = _mapping(ratekit.get("weights")).get("backend")
    if ratekit.get("enabled") is not True or not isinstance(backend, str):
        return []
    try:
        parts = urlsplit(backend)
        host = parts.hostname or ""
        port = parts.port or 6379
    except ValueError:
        return []  # not a URL: the validation names it
    if parts.scheme not in ("redis", "rediss") or is_loopback(host):
        return []
    password, tls = _url_password(backend), parts.scheme == "rediss"
    if password and tls:
        return []
    if not password:
        missing = "no password and no TLS" if not tls else "no password"
        problem = "whoever reaches it can read the shared budget and block or drain every bot"
    else:
        missing, problem = "no TLS", "its password and the budget cross the network in clear"
    return [
        SecurityWarning(
            "ratekit.weights.backend",
            f"Redis at {_shown_host(host)}:{port} is used with {missing}: {problem}",
            "use rediss://:PASSWORD@HOST:PORT/0 (Redis requirepass or an ACL user, TLS on) "
            "passed as FREQTRADE__RATEKIT__WEIGHTS__BACKEND, or keep Redis on 127.0.0.1 or a "
            "unix:// socket",
        )
    ]


def is_loopback(host: Any) -> bool:
    """Whether `host` only accepts connections from this machine (unknown names: no)."""
    if not isinstance(host, str):
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _weakness(value: Any, min_chars: int, username: Any = None) -> str | None:
    """Why a password-like value is weak, in words that reveal nothing about it."""
    if not isinstance(value, str) or not value:
        return "is empty"
    lowered = value.lower()
    if lowered in KNOWN_DEFAULTS or _PLACEHOLDER.search(lowered):
        return "is a default or example value"
    if isinstance(username, str) and value == username:
        return "is the same as the username"
    if len(value) < min_chars:
        return f"is shorter than {min_chars} characters"
    return None


def _url_password(url: str) -> bool:
    """Whether a URL carries a password: in its user info, or as a query parameter (which
    redis-py honours)."""
    try:
        parts = urlsplit(url)
        query: Iterable[tuple[str, str]] = parse_qsl(parts.query, keep_blank_values=True)
        password = parts.password
    except ValueError:
        return False
    return bool(password) or any(name == "password" and value for name, value in query)


def _shown_host(host: Any) -> str:
    """A host as a warning shows it: short, one line (it came from the config)."""
    text = str(host)
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= 80 else text[:80] + "..."


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_set(value: Any) -> bool:
    return bool(value.strip()) if isinstance(value, str) else bool(value)
