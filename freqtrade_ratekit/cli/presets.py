"""`freqtrade-ratekit presets [--json]`: every exchange preset, its limits and where they are from.

Needs neither a config nor Freqtrade: it reads the presets as shipped (what `weights.preset`
names and `auto` picks), so a user can see which limits a bot would respect before starting it.
`--json` is for scripts: one object, keys sorted, presets by name.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from freqtrade_ratekit.weights.headers import headers_read
from freqtrade_ratekit.weights.presets import Preset, all_presets, preset_targets


def preset_document(preset: Preset) -> dict[str, Any]:
    """One preset as plain data: the shape of `--json` and of the table's rows."""
    targets = preset_targets(preset.name)
    return {
        "name": preset.name,
        "exchange_ids": sorted({exchange for exchange, _ in targets}),
        "trading_modes": sorted({mode for _, mode in targets}),
        "pools": [
            {
                "name": pool.name,
                "limit": float(pool.limit),
                "interval_s": float(pool.interval_s),
                "scope": pool.scope,
                "kind": pool.kind,
                "per_endpoint": pool.per_endpoint,
            }
            for pool in preset.pools
        ],
        "headers_read": list(headers_read(preset.header_format)),
        "limits_from_exchange": preset.limits_from_exchange,
        "sources": list(preset.sources),
        "read_on": preset.read_on,
    }


def presets_document() -> dict[str, Any]:
    return {"presets": [preset_document(preset) for preset in all_presets()]}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="freqtrade-ratekit presets",
        description="List the exchange weight presets: exchange ids, trading modes, pools "
        "(limit, interval, scope, kind), usage headers read, whether limits are read from the "
        "exchange, and the source and date of the published figures.",
    )
    parser.add_argument("--json", action="store_true", help="print the presets as JSON")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # --help or bad arguments: argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    document = presets_document()
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    _print_table(document)
    return 0


def _print_table(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ratekit weight presets", show_lines=True)
    for column in ("preset", "exchanges", "modes", "pools", "headers read", "from exchange"):
        table.add_column(column)
    table.add_column("source (read on)", overflow="fold")
    for row in document["presets"]:
        pools = "\n".join(_pool_text(pool) for pool in row["pools"])
        table.add_row(
            row["name"],
            "\n".join(row["exchange_ids"]),
            "\n".join(row["trading_modes"]),
            pools,
            "\n".join(row["headers_read"]),
            "yes" if row["limits_from_exchange"] else "no",
            "\n".join(row["sources"]) + f"\n({row['read_on']})",
        )
    Console().print(table)


def _pool_text(pool: dict[str, Any]) -> str:
    """`NAME 600 / 5s ip window`, with `per endpoint` for templates."""
    each = " per endpoint" if pool["per_endpoint"] else ""
    return (
        f"{pool['name']} {pool['limit']:g} / {pool['interval_s']:g}s "
        f"{pool['scope']} {pool['kind']}{each}"
    )
