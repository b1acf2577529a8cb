"""Secrets out of everything ratekit shows: one URL mask for logs, errors, REST and the CLI.

A URL can carry a secret in two places: its user info (`redis://:pw@host`) and its query
(`redis://host/0?password=pw`, which redis-py honours; `?x_cg_pro_api_key=...` for CoinGecko).
Every surface masks both the same way, through `mask_url`, so a test can plant a secret once
and grep every output for it. Free text that may quote a secret (a server's or a client
library's error message) is cleaned with `url_secrets` + `secret_forms` + `scrub`.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
# A query parameter whose lower-cased name contains one of these carries a secret.
SECRET_QUERY_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "sig")
# Longest value echoed in an error message; a larger one is cut (a 10 MB value is no help).
MAX_SHOWN_CHARS = 200


def is_secret_name(name: str) -> bool:
    """Whether a key or query parameter name says its value is a secret."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_QUERY_WORDS)


def mask_url(url: str) -> str:
    """The URL with its password, a user that may be a token, and every secret-bearing query
    value replaced by `***`; the fragment is dropped. An unreadable URL is masked whole."""
    try:
        parts = urlsplit(url)
        port = parts.port
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if parts.username or parts.password is not None:
        host = parts.hostname or ""
        if port is not None:
            host = f"{host}:{port}"
        credentials = f"{parts.username or ''}:{MASK}" if parts.password is not None else MASK
        netloc = f"{credentials}@{host}"
    masked_query = urlencode(
        [(name, MASK if is_secret_name(name) else value) for name, value in query], safe="*"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, masked_query, ""))


def url_secrets(url: str) -> set[str]:
    """Every secret `url` carries, as written and percent-decoded: the password (or a user
    without one, which `mask_url` hides as a token too) and each secret-bearing query value.
    An unreadable URL is a secret whole."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return {url}
    found: set[str] = set()
    if parts.password:
        found.add(parts.password)
    elif parts.username:
        found.add(parts.username)
    found.update(value for name, value in query if value and is_secret_name(name))
    for pair in parts.query.split("&"):  # and as written (percent-encoded), too
        name, _, value = pair.partition("=")
        if value and is_secret_name(unquote(name)):
            found.add(value)
    return found | {unquote(value) for value in found}


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Each secret as given, percent-decoded and percent-encoded (`quote`, `quote_plus`),
    longest first: what `scrub` replaces, in that order (so no part of a longer form is left
    behind by replacing a shorter one first)."""
    forms = {
        form
        for secret in secrets
        for form in (secret, unquote(secret), quote(secret, safe=""), quote_plus(secret))
        if form
    }
    return tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str, forms: Iterable[str]) -> str:
    """`text` with every one of `forms` (from `secret_forms`) replaced by `***`."""
    for form in forms:
        text = text.replace(form, MASK)
    return text


def cut(text: str) -> str:
    """`text`, cut to `MAX_SHOWN_CHARS` (with its full length named) when longer."""
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[:MAX_SHOWN_CHARS]}... ({len(text)} characters)"


def shorten(value: object) -> str:
    """`repr(value)`, cut to `MAX_SHOWN_CHARS`, for an error message that names a bad value."""
    try:
        shown = repr(value)
    except ValueError:  # repr() of an int of more than 4300 digits
        return f"<{type(value).__name__} too large to show>"
    return cut(shown)
