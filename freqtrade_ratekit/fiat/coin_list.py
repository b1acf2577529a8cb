"""The CoinGecko coin list (~17k `{id, symbol, name}` entries) and its file on disk.

Apart from the converter because it is data with its own rules: stock Freqtrade downloads the
list at every start; here it is kept on disk between restarts (atomic replace, so a crash or a
concurrent reader never sees half a file), and whatever is read (file, shared store, network)
goes through the same validation (`valid_coins`), so a hostile list is corrupt data.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COIN_LIST_FORMAT_VERSION = 1
# A coin-list file larger than this is not one (the real list is ~1.5 MB, 2026-11).
MAX_COIN_LIST_FILE_BYTES = 64 * 1024 * 1024
# Longest id or symbol kept from coins/list (real ones are short slugs).
MAX_COIN_FIELD_CHARS = 256


@dataclass(frozen=True)
class CoinList:
    coins: list[dict[str, str]]  # {"id", "symbol", "name"}, as CoinGecko's coins/list
    fetched_at: float


def coin_list_document(coin_list: CoinList) -> str:
    return json.dumps(
        {
            "format": COIN_LIST_FORMAT_VERSION,
            "fetched_at": coin_list.fetched_at,
            "coins": coin_list.coins,
        },
        separators=(",", ":"),
    )


def parse_coin_list_document(document: Any, default_fetched_at: float | None) -> CoinList:
    """Our own `{"fetched_at", "coins"}` document, or a bare coins/list array (as saved with
    curl; then `default_fetched_at`, the file's mtime, is its age). ValueError on anything
    else."""
    fetched_at: Any
    if isinstance(document, list) and default_fetched_at is not None:
        entries, fetched_at = document, default_fetched_at
    elif isinstance(document, dict) and isinstance(document.get("coins"), list):
        entries, fetched_at = document["coins"], document.get("fetched_at")
        if (
            not isinstance(fetched_at, int | float)
            or isinstance(fetched_at, bool)
            or not math.isfinite(fetched_at)
        ):
            raise ValueError("fetched_at missing or not a finite number")
    else:
        raise ValueError(f"unexpected document of type {type(document).__name__}")
    coins = valid_coins(entries)
    if not coins:
        raise ValueError("no valid coin entries")
    return CoinList(coins=coins, fetched_at=float(fetched_at))


def read_coin_list_file(path: Path) -> CoinList | None:
    """The coin list saved at `path`; None when there is no file. ValueError when the file is
    corrupt, truncated or of the wrong shape."""
    try:
        stat = path.stat()
        if stat.st_size > MAX_COIN_LIST_FILE_BYTES:
            raise ValueError(f"larger than {MAX_COIN_LIST_FILE_BYTES} bytes")
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        document = json.loads(raw)
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"not valid JSON: {exc}") from None
    return parse_coin_list_document(document, default_fetched_at=stat.st_mtime)


def write_coin_list_file(path: Path, coin_list: CoinList) -> None:
    """Atomic replace (temp file in the same directory, fsync, os.replace): a crash or a
    concurrent reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp_file:
            tmp_file.write(coin_list_document(coin_list))
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp_name)
        raise
    with suppress(OSError):  # make the rename itself durable where the platform allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def valid_coins(entries: list[Any]) -> list[dict[str, str]]:
    """Keep the entries that are objects with a string `id` and `symbol` (and a string `name`,
    else ""); anything else, or an id or symbol longer than `MAX_COIN_FIELD_CHARS`, is
    dropped. Never recurses into what it drops."""
    coins = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        gecko_id, symbol, name = entry.get("id"), entry.get("symbol"), entry.get("name", "")
        if not (isinstance(gecko_id, str) and isinstance(symbol, str)):
            continue
        if not gecko_id or len(gecko_id) > MAX_COIN_FIELD_CHARS:
            continue
        if len(symbol) > MAX_COIN_FIELD_CHARS:
            continue
        coins.append(
            {"id": gecko_id, "symbol": symbol, "name": name if isinstance(name, str) else ""}
        )
    return coins
