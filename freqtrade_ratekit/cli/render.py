"""The tables of `freqtrade-ratekit status`: the status document as rich renderables.

Apart from the client so that drawing is testable with a plain document (no server) and so
that the demo and the live view share it. Tolerant of missing keys and sections: a bot of
another version must still show what it has.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

USAGE_BAR_WIDTH = 10
"""Characters of a pool's usage bar: plain text, so it shows without colour (NO_COLOR, pipes)."""

_STATE_STYLES = {
    "fresh": "green",
    "stale": "yellow",
    "failing": "red",
    "never": "red",
}
_STATE_ORDER = {"failing": 0, "never": 0, "stale": 1, "fresh": 2}
MISSING = "-"


def render_status(
    status: Mapping[str, Any], shown_url: str, *, top: int = 10, now: float | None = None
) -> RenderableType:
    """The whole status document as rich renderables; tolerant of missing keys and sections."""
    now = time.time() if now is None else now
    header = Text.assemble(
        ("ratekit ", "bold"),
        str(status.get("version", "?")),
        "  Freqtrade ",
        str(status.get("freqtrade_version", "?")),
        "  exchange ",
        str(status.get("exchange") or "?"),
        "  ",
        ("enabled", "green") if status.get("enabled") else ("disabled", "red"),
        f"  {shown_url}",
        f"  at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))}",
    )
    parts: list[RenderableType] = [header]
    parts += _rate_cache_parts(_mapping(status.get("rate_cache")), top, now)
    parts += _fiat_parts(_mapping(status.get("fiat")), now)
    parts += _weights_parts(_mapping(status.get("weights")), top, now)
    parts += _readers_parts(_mapping(status.get("readers")))
    return Group(*parts)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _records(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _inactive(section: Mapping[str, Any], title: str) -> list[RenderableType]:
    if section and section.get("active", True) is not False:
        return []
    return [Text(f"{title}: not active", "dim")]


def _json_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _fmt_count(value: Any) -> str:
    number = _json_number(value)
    if number is None:
        return MISSING
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


def _fmt_rate(value: Any) -> str:
    number = _json_number(value)
    return MISSING if number is None else f"{number:.8g}"


def _fmt_ratio(value: Any) -> str:
    number = _json_number(value)
    return MISSING if number is None else f"{number:.1%}"


def _fmt_seconds(value: Any) -> str:
    """Durations and ages, in the unit a person reads at a glance."""
    seconds = _json_number(value)
    if seconds is None:
        return MISSING
    if abs(seconds) < 10:
        return f"{seconds:.2f} s"
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    if abs(seconds) < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _fmt_ago(timestamp: Any, now: float) -> str:
    at = _json_number(timestamp)
    return MISSING if at is None else f"{_fmt_seconds(now - at)} ago"


def _state(value: Any) -> Text:
    state = str(value) if value is not None else MISSING
    return Text(state, _STATE_STYLES.get(state, ""))


def _text(value: Any) -> Text:
    """Snapshot strings as plain text: an error message with [brackets] is not rich markup."""
    return Text(MISSING if value in (None, "") else str(value))


def _table(title: str, columns: Iterable[str], numeric: Iterable[str] = ()) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    right = set(numeric)
    for column in columns:
        if column in right:
            table.add_column(column, justify="right")
        else:  # names (pairs, pools, endpoints) never get cut; figures shrink first
            table.add_column(column, justify="left", no_wrap=True, min_width=len(column))
    return table


def _rate_cache_parts(cache: Mapping[str, Any], top: int, now: float) -> list[RenderableType]:
    inactive = _inactive(cache, "Rate cache")
    if inactive:
        return inactive
    figures = (
        "Entries",
        "Hit ratio",
        "Hits",
        "Misses",
        "Stale reads",
        "Negative hits",
        "Evictions",
    )
    table = _table("Rate cache", ("Side", *figures, "TTL fresh/stale/neg."), figures)
    entries: list[tuple[str, Mapping[str, Any]]] = []
    for side, side_snapshot in _mapping(cache.get("sides")).items():
        side_figures = _mapping(side_snapshot)
        ttls = "/".join(
            _fmt_seconds(side_figures.get(key)) for key in ("ttl", "stale_ttl", "negative_ttl")
        )
        table.add_row(
            _text(side),
            f"{_fmt_count(side_figures.get('size'))} / {_fmt_count(side_figures.get('capacity'))}",
            _fmt_ratio(side_figures.get("hit_ratio")),
            _fmt_count(side_figures.get("hits")),
            _fmt_count(side_figures.get("misses")),
            _fmt_count(side_figures.get("stale_reads")),
            _fmt_count(side_figures.get("negative_hits")),
            _fmt_count(side_figures.get("evictions")),
            ttls,
        )
        entries += [(str(side), entry) for entry in _records(side_figures.get("entries"))]
    parts: list[RenderableType] = [table]

    prewarm = _mapping(cache.get("last_prewarm"))
    if prewarm:
        line = Text(
            f"Last pre-warm: {_fmt_count(prewarm.get('pairs'))} pairs in "
            f"{_fmt_seconds(prewarm.get('seconds'))}, {_fmt_ago(prewarm.get('at'), now)}, "
            f"via {prewarm.get('method') or MISSING}"
        )
        failed, failed_pairs = _json_number(prewarm.get("failed")), prewarm.get("failed_pairs")
        if failed:
            line.append(f", {failed:.0f} failed", "red")
            if isinstance(failed_pairs, list) and failed_pairs:
                names = ", ".join(map(str, failed_pairs[:5]))
                line.append(f" ({names}{', ...' if failed > 5 else ''})", "red")
        if prewarm.get("error"):
            line.append(f"; error: {prewarm['error']}", "red")
        parts.append(line)
    else:
        parts.append(Text("Last pre-warm: none yet", "dim"))
    refresher = _mapping(cache.get("refresher"))
    if refresher:
        line = Text(
            f"Refresher: {'running' if refresher.get('running') else 'stopped'}, every "
            f"{_fmt_seconds(refresher.get('interval_s'))}, {_fmt_count(refresher.get('runs'))} "
            f"runs, last {_fmt_ago(refresher.get('last_run_at'), now)} "
            f"({_fmt_seconds(refresher.get('last_duration_s'))})"
        )
        failures = _json_number(refresher.get("consecutive_failures")) or 0
        if failures or refresher.get("last_error"):
            line.append(
                f", {failures:.0f} failures in a row: {refresher.get('last_error') or MISSING}",
                "red",
            )
        parts.append(line)

    if entries:
        # the pairs that need attention first: failing, then stale, then the oldest
        entries.sort(
            key=lambda item: (
                _STATE_ORDER.get(str(item[1].get("state")), 3),
                -(_json_number(item[1].get("age_s")) or 0.0),
            )
        )
        shown = entries[: max(top, 0)]
        title = f"Cached rates ({len(shown)} of {len(entries)}, worst first)"
        table = _table(title, ("Side", "Pair", "Rate", "Age", "State", "Error"), ("Rate", "Age"))
        for side, entry in shown:
            table.add_row(
                _text(side),
                _text(entry.get("pair")),
                _fmt_rate(entry.get("rate")),
                _fmt_seconds(entry.get("age_s")),
                _state(entry.get("state")),
                _text(entry.get("error")),
            )
        parts.append(table)
    return parts


def _fiat_parts(fiat: Mapping[str, Any], now: float) -> list[RenderableType]:
    inactive = _inactive(fiat, "Fiat")
    if inactive:
        return inactive
    if fiat.get("enabled") is False:
        return [Text("Fiat: disabled (no fiat_display_currency)", "dim")]
    parts: list[RenderableType] = []
    numeric = ("Price", "Age", "Next refresh")
    table = _table(
        "Fiat prices", ("Pair", "Price", "Age", "State", "Next refresh", "Last error"), numeric
    )
    for record in _records(fiat.get("pairs")):
        table.add_row(
            _text(record.get("pair")),
            _fmt_rate(record.get("price")),
            _fmt_seconds(record.get("age_s")),
            _state(record.get("state")),
            _fmt_seconds(record.get("next_refresh_in_s")),
            _text(record.get("last_error")),
        )
    parts.append(table)

    calls = _mapping(fiat.get("calls"))
    coin_list = _mapping(fiat.get("coin_list"))
    line = Text(
        f"CoinGecko {fiat.get('base_url') or MISSING}: simple/price "
        f"{_fmt_count(calls.get('simple_price'))}, coins/list {_fmt_count(calls.get('coins_list'))}"
        f", errors {_fmt_count(calls.get('errors'))}, 429s {_fmt_count(calls.get('status_429'))}; "
        f"last refresh {_fmt_ago(fiat.get('last_refresh_at'), now)}; coin list "
        f"{_fmt_count(coin_list.get('entries'))} coins ({coin_list.get('source') or MISSING}, "
        f"{_fmt_seconds(coin_list.get('age_s'))} old)"
    )
    if _paused(fiat.get("paused_until"), now):
        line.append(f"; paused for {_fmt_seconds(fiat['paused_until'] - now)}", "yellow")
    failures = _json_number(fiat.get("consecutive_failures")) or 0
    if failures:
        line.append(f"; {failures:.0f} failures in a row", "red")
    parts.append(line)
    return parts


def _readers_parts(readers: Mapping[str, Any]) -> list[RenderableType]:
    """The /profit snapshots; nothing at all before the first reader asked (or when off)."""
    rows = _records(readers.get("snapshots"))
    if not rows:
        return []
    numeric = ("Age", "Compute", "Fresh reads", "Stale reads", "Misses")
    columns = ("Call", "Age", "State", "Compute", *numeric[2:], "Last error")
    table = _table("Reader snapshots", columns, numeric)
    for row in rows:
        table.add_row(
            _text(row.get("call")),
            _fmt_seconds(row.get("age_s")),
            _state("fresh" if row.get("fresh") else "stale"),
            _fmt_seconds(row.get("compute_s")),
            _fmt_count(row.get("hits")),
            _fmt_count(row.get("stale_hits")),
            _fmt_count(row.get("misses")),
            _text(row.get("last_error")),
        )
    return [table]


def _weights_parts(weights: Mapping[str, Any], top: int, now: float) -> list[RenderableType]:
    inactive = _inactive(weights, "Weights")
    if inactive:
        return inactive
    headroom = _json_number(weights.get("headroom"))
    parts: list[RenderableType] = [
        Text(
            f"Weights: mode {weights.get('mode') or MISSING}, preset "
            f"{weights.get('preset') or MISSING}, headroom "
            f"{MISSING if headroom is None else f'{headroom:.0%}'}, exchange "
            f"{weights.get('exchange') or MISSING}",
            "bold",
        )
    ]
    backend = _mapping(weights.get("backend"))
    if backend:
        healthy, degraded = backend.get("healthy"), backend.get("degraded")
        state = (
            ("degraded (local share)", "bold red")
            if degraded
            else ("healthy", "green")
            if healthy
            else ("unhealthy", "bold red")
        )
        line = Text.assemble(
            "Backend: ",
            str(backend.get("kind") or MISSING),
            f", scope {backend.get('scope') or MISSING}, ",
            state,
        )
        if backend.get("detail"):
            line.append(f" - {backend['detail']}")
        parts.append(line)

    pools = _records(weights.get("pools"))
    if pools:
        numeric = ("Used", "Admits", "Limit", "Server", "429", "418")
        columns = ("Pool", "Scope", "Usage", *numeric[:4], "Paused", "429", "418")
        table = _table("Pools", columns, numeric)
        for pool in pools:
            used = _json_number(pool.get("used"))
            capacity = _json_number(pool.get("effective_limit")) or _json_number(pool.get("limit"))
            share = used / capacity if used is not None and capacity else None
            bar: RenderableType = MISSING
            if share is not None:
                style = "red" if share >= 0.9 else "yellow" if share >= 0.7 else "green"
                filled = round(min(share, 1.0) * USAGE_BAR_WIDTH)
                bar = (
                    Text("█" * filled, style)
                    + Text("░" * (USAGE_BAR_WIDTH - filled), "dim")
                    + Text(f" {_fmt_ratio(share)}")
                )
            paused_until = pool.get("paused_until")
            table.add_row(
                _text(pool.get("name")),
                _text(pool.get("scope")),
                bar,
                _fmt_count(pool.get("used")),
                _fmt_count(pool.get("effective_limit")),
                Text(f"{_fmt_count(pool.get('limit'))} / {_fmt_seconds(pool.get('interval_s'))}"),
                _fmt_count(pool.get("server_used")),
                Text("yes", "bold red") if _paused(paused_until, now) else Text("no"),
                _fmt_count(pool.get("status_429")),
                _fmt_count(pool.get("status_418")),
            )
        parts.append(table)

    endpoints = _records(weights.get("endpoints"))
    if endpoints:
        endpoints.sort(key=lambda record: -(_json_number(record.get("weight")) or 0.0))
        shown = endpoints[: max(top, 0)]
        figures = ("Calls", "Weight", "Waited", "429", "418")
        title = f"Endpoints by weight ({len(shown)} of {len(endpoints)})"
        table = _table(title, ("Endpoint", *figures), figures)
        for record in shown:
            table.add_row(
                _text(record.get("endpoint")),
                _fmt_count(record.get("calls")),
                _fmt_count(record.get("weight")),
                _fmt_seconds(record.get("wait_s")),
                _fmt_count(record.get("status_429")),
                _fmt_count(record.get("status_418")),
            )
        totals = _mapping(weights.get("totals"))
        if totals:
            table.add_section()
            table.add_row(
                Text("total", "bold"),
                _fmt_count(totals.get("calls")),
                _fmt_count(totals.get("weight")),
                _fmt_seconds(totals.get("wait_s")),
                _fmt_count(totals.get("status_429")),
                _fmt_count(totals.get("status_418")),
            )
        parts.append(table)
    return parts


def _paused(paused_until: Any, now: float) -> bool:
    until = _json_number(paused_until)
    return until is not None and until > now
