"""Secrets out of everything ratekit shows: one URL mask for logs, errors, REST and the CLI.

A URL can carry a secret in two places: its user info (`redis://:pw@host`) and its query
(`redis://host/0?password=pw`, which redis-py honours; `?x_cg_pro_api_key=...` for CoinGecko).
Every surface masks both the same way, through `mask_url`, so a test can plant a secret once
and grep every output for it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def shorten(value: object) -> str:
    """`repr(value)`, cut to `MAX_SHOWN_CHARS`, for an error message that names a bad value."""
    shown = repr(value)
    if len(shown) <= MAX_SHOWN_CHARS:
        return shown
    return f"{shown[:MAX_SHOWN_CHARS]}... ({len(shown)} characters)"
