"""The tables of `freqtrade-ratekit status`: the status document as rich renderables.

Apart from the client so that drawing is testable with a plain document (no server) and so
that the demo and the live view share it. The JSON fetched over HTTP is typed as
`documents.RatekitStatus` here, at the boundary, and read by key, so mypy catches a field
renamed on the producing side. A section of another shape (a bot of another ratekit version)
is named as unreadable instead of ending the command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from freqtrade_ratekit.documents import (
    DocumentT,
    RatekitCacheEntry,
    RatekitClient,
    RatekitFiat,
    RatekitHistogram,
    RatekitInactive,
    RatekitRateBook,
    RatekitReaders,
    RatekitStatus,
    RatekitStream,
    RatekitTradingBatch,
    RatekitWeights,
    RatekitWeightTotals,
    is_active,
)

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

_READ_ERRORS = (KeyError, TypeError, AttributeError, ValueError)


def render_status(
    status: Mapping[str, Any], shown_url: str, *, top: int = 10, now: float | None = None
) -> RenderableType:
    """The whole status document (parsed JSON of `/api/v1/ratekit/status`) as renderables."""
    now = time.time() if now is None else now
    document = cast(RatekitStatus, status)
    parts: list[RenderableType] = []
    parts += _guarded("Status", lambda: [_header(document, shown_url, now)])
    parts += _section(
        lambda: document["rate_cache"],
        "Rate cache",
        lambda cache: _rate_cache_parts(cache, top, now),
    )
    parts += _section(lambda: document["fiat"], "Fiat", lambda fiat: _fiat_parts(fiat, now))
    parts += _section(
        lambda: document["weights"], "Weights", lambda weights: _weights_parts(weights, top, now)
    )
    parts += _readers(document)
    return Group(*parts)


def _header(status: RatekitStatus, shown_url: str, now: float) -> Text:
    return Text.assemble(
        ("ratekit ", "bold"),
        str(status["version"]),
        "  Freqtrade ",
        str(status["freqtrade_version"]),
        "  exchange ",
        str(status["exchange"] or "?"),
        "  ",
        ("enabled", "green") if status["enabled"] else ("disabled", "red"),
        f"  {shown_url}",
        f"  at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))}",
    )


def _guarded(title: str, draw: Callable[[], list[RenderableType]]) -> list[RenderableType]:
    try:
        return draw()
    except _READ_ERRORS as exc:
        return [Text(f"{title}: unreadable document ({type(exc).__name__}: {exc})", "red")]


def _section(
    read: Callable[[], DocumentT | RatekitInactive],
    title: str,
    draw: Callable[[DocumentT], list[RenderableType]],
) -> list[RenderableType]:
    """One component's section: its tables, "not active", or why it could not be read."""

    def parts() -> list[RenderableType]:
        try:
            section: DocumentT | RatekitInactive | None = read()
        except KeyError:  # a bot without this component at all
            section = None
        if not section or not is_active(section):
            return [Text(f"{title}: not active", "dim")]
        return draw(section)

    return _guarded(title, parts)


def _readers(status: RatekitStatus) -> list[RenderableType]:
    """The /profit snapshots; nothing at all before the first reader asked (or when off)."""
    readers = status.get("readers")
    if not readers or not is_active(readers):
        return []
    return _guarded("Reader snapshots", lambda: _readers_parts(readers))


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


def _rate_cache_parts(cache: RatekitRateBook, top: int, now: float) -> list[RenderableType]:
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
    entries: list[tuple[str, RatekitCacheEntry]] = []
    for side, side_figures in cache["sides"].items():
        ttl, stale_ttl, negative_ttl = (
            side_figures["ttl"],
            side_figures["stale_ttl"],
            side_figures["negative_ttl"],
        )
        ttls = "/".join(_fmt_seconds(value) for value in (ttl, stale_ttl, negative_ttl))
        table.add_row(
            _text(side),
            f"{_fmt_count(side_figures['size'])} / {_fmt_count(side_figures['capacity'])}",
            _fmt_ratio(side_figures["hit_ratio"]),
            _fmt_count(side_figures["hits"]),
            _fmt_count(side_figures["misses"]),
            _fmt_count(side_figures["stale_reads"]),
            _fmt_count(side_figures["negative_hits"]),
            _fmt_count(side_figures["evictions"]),
            ttls,
        )
        entries += [(str(side), entry) for entry in side_figures["entries"]]
    parts: list[RenderableType] = [table]

    prewarm = cache["last_prewarm"]
    if prewarm:
        line = Text(
            f"Last pre-warm: {_fmt_count(prewarm['pairs'])} pairs in "
            f"{_fmt_seconds(prewarm['seconds'])}, {_fmt_ago(prewarm['at'], now)}, "
            f"via {prewarm['method'] or MISSING}"
        )
        failed, failed_pairs = _json_number(prewarm["failed"]), prewarm["failed_pairs"]
        if failed:
            line.append(f", {failed:.0f} failed", "red")
            if isinstance(failed_pairs, list) and failed_pairs:
                names = ", ".join(map(str, failed_pairs[:5]))
                line.append(f" ({names}{', ...' if failed > 5 else ''})", "red")
        if prewarm["error"]:
            line.append(f"; error: {prewarm['error']}", "red")
        parts.append(line)
    else:
        parts.append(Text("Last pre-warm: none yet", "dim"))
    refresher = cache["refresher"]
    if refresher:
        line = Text(
            f"Refresher: {'running' if refresher['running'] else 'stopped'}, every "
            f"{_fmt_seconds(refresher['interval_s'])}, {_fmt_count(refresher['runs'])} "
            f"runs, last {_fmt_ago(refresher['last_run_at'], now)} "
            f"({_fmt_seconds(refresher['last_duration_s'])})"
        )
        failures = _json_number(refresher["consecutive_failures"]) or 0
        if failures or refresher["last_error"]:
            line.append(
                f", {failures:.0f} failures in a row: {refresher['last_error'] or MISSING}",
                "red",
            )
        parts.append(line)
    parts.append(_trading_line(cache["trading"]))
    stream = cache["trading"]["stream"]
    if stream is not None:
        parts.append(_stream_line(stream, now))

    if entries:
        # the pairs that need attention first: failing, then stale, then the oldest
        entries.sort(
            key=lambda item: (
                _STATE_ORDER.get(str(item[1]["state"]), 3),
                -(_json_number(item[1]["age_s"]) or 0.0),
            )
        )
        shown = entries[: max(top, 0)]
        title = f"Cached rates ({len(shown)} of {len(entries)}, worst first)"
        table = _table(title, ("Side", "Pair", "Rate", "Age", "State", "Error"), ("Rate", "Age"))
        for side, entry in shown:
            table.add_row(
                _text(side),
                _text(entry["pair"]),
                _fmt_rate(entry["rate"]),
                _fmt_seconds(entry["age_s"]),
                _state(entry["state"]),
                _text(entry["error"]),
            )
        parts.append(table)
    return parts


def _trading_line(trading: RatekitTradingBatch) -> Text:
    """How the bot's iterations were priced: from the batch, or per pair and why."""
    iterations = trading["iterations"]
    timing = (
        f"{_fmt_count(iterations['count'])} iterations, p50 "
        f"{_fmt_quantile(iterations, 0.5)}, p99 {_fmt_quantile(iterations, 0.99)}"
    )
    if not trading["enabled"]:
        return Text(f"Trading loop: batch off (stock per-pair pricing); {timing}", "dim")
    reasons = ", ".join(
        f"{reason} {_fmt_count(count)}"
        for reason, count in sorted(trading["per_pair_by_reason"].items())
        if count
    )
    line = Text(
        f"Trading loop: batch ≤ {_fmt_seconds(trading['max_age'])} old; "
        f"{_fmt_count(trading['batch_calls'])} batch calls, reads "
        f"{_fmt_count(trading['served'])} from the batch (age p50 "
        f"{_fmt_quantile(trading['served_age'], 0.5)}) / {_fmt_count(trading['per_pair'])} "
        f"per pair{f' ({reasons})' if reasons else ''}; {timing}"
    )
    failed = _json_number(trading["failed_calls"]) or 0
    if failed:
        last = trading["last_call"]
        error = last["error"] if last is not None else None
        line.append(f"; {failed:.0f} failed calls, last: {error or MISSING}", "red")
    return line


def _stream_line(stream: RatekitStream, now: float) -> Text:
    state = "connected" if stream["connected"] else "not connected"
    line = Text(
        f"Price stream ({stream['method']}): {state}, {_fmt_count(stream['pairs'])} pairs, "
        f"{_fmt_count(stream['messages'])} updates, last {_fmt_ago(stream['last_message_at'], now)}"
        f"; {_fmt_count(stream['connects'])} connects, "
        f"{_fmt_count(stream['subscriptions'])} subscriptions",
        "" if stream["connected"] else "yellow",
    )
    failures = _json_number(stream["consecutive_failures"]) or 0
    if failures:
        line.append(f", {failures:.0f} failures in a row: {stream['last_error'] or MISSING}", "red")
    return line


def _fmt_quantile(histogram: RatekitHistogram, quantile: float) -> str:
    """The upper bound of the bucket holding the quantile (`≤ 0.25s`), from cumulative buckets."""
    count = _json_number(histogram["count"]) or 0
    if not count:
        return MISSING
    for bound, cumulative in histogram["buckets"]:
        if (_json_number(cumulative) or 0) >= quantile * count:
            return f"≤ {_fmt_seconds(bound)}" if bound != "+Inf" else "> max bucket"
    return MISSING


def _fiat_parts(fiat: RatekitFiat, now: float) -> list[RenderableType]:
    if fiat["enabled"] is False:
        return [Text("Fiat: disabled (no fiat_display_currency)", "dim")]
    parts: list[RenderableType] = []
    numeric = ("Price", "Age", "Next refresh")
    table = _table(
        "Fiat prices", ("Pair", "Price", "Age", "State", "Next refresh", "Last error"), numeric
    )
    for record in fiat["pairs"]:
        table.add_row(
            _text(record["pair"]),
            _fmt_rate(record["price"]),
            _fmt_seconds(record["age_s"]),
            _state(record["state"]),
            _fmt_seconds(record["next_refresh_in_s"]),
            _text(record["last_error"]),
        )
    parts.append(table)

    calls = fiat["calls"]
    coin_list = fiat["coin_list"]
    line = Text(
        f"CoinGecko {fiat['base_url'] or MISSING}: simple/price "
        f"{_fmt_count(calls['simple_price'])}, coins/list {_fmt_count(calls['coins_list'])}"
        f", errors {_fmt_count(calls['errors'])}, 429s {_fmt_count(calls['status_429'])}; "
        f"last refresh {_fmt_ago(fiat['last_refresh_at'], now)}; coin list "
        f"{_fmt_count(coin_list['entries'])} coins ({coin_list['source'] or MISSING}, "
        f"{_fmt_seconds(coin_list['age_s'])} old)"
    )
    paused_until = fiat["paused_until"]
    if paused_until is not None and _paused(paused_until, now):
        line.append(f"; paused for {_fmt_seconds(paused_until - now)}", "yellow")
    failures = _json_number(fiat["consecutive_failures"]) or 0
    if failures:
        line.append(f"; {failures:.0f} failures in a row", "red")
    parts.append(line)
    return parts


def _readers_parts(readers: RatekitReaders) -> list[RenderableType]:
    rows = readers["snapshots"]
    if not rows:
        return []
    numeric = ("Age", "Compute", "Fresh reads", "Stale reads", "Misses")
    columns = ("Call", "Age", "State", "Compute", *numeric[2:], "Last error")
    table = _table("Reader snapshots", columns, numeric)
    for row in rows:
        table.add_row(
            _text(row["call"]),
            _fmt_seconds(row["age_s"]),
            _state("fresh" if row["fresh"] else "stale"),
            _fmt_seconds(row["compute_s"]),
            _fmt_count(row["hits"]),
            _fmt_count(row["stale_hits"]),
            _fmt_count(row["misses"]),
            _text(row["last_error"]),
        )
    return [table]


def _weights_parts(weights: RatekitWeights, top: int, now: float) -> list[RenderableType]:
    headroom = _json_number(weights["headroom"])
    parts: list[RenderableType] = [
        Text(
            f"Weights: mode {weights['mode'] or MISSING}, preset "
            f"{weights['preset'] or MISSING}, headroom "
            f"{MISSING if headroom is None else f'{headroom:.0%}'}, exchange "
            f"{weights['exchange'] or MISSING}",
            "bold",
        )
    ]
    backend = weights["backend"]
    if backend:
        healthy, degraded = backend["healthy"], backend["degraded"]
        state = (
            ("degraded (local share)", "bold red")
            if degraded
            else ("healthy", "green")
            if healthy
            else ("unhealthy", "bold red")
        )
        line = Text.assemble(
            "Backend: ",
            str(backend["kind"] or MISSING),
            f", scope {backend['scope'] or MISSING}, ",
            state,
        )
        if backend["detail"]:
            line.append(f" - {backend['detail']}")
        parts.append(line)

    parts += _priority_parts(weights)

    pools = weights["pools"]
    if pools:
        numeric = ("Used", "Admits", "Limit", "Server", "429", "418")
        columns = ("Pool", "Scope", "Usage", *numeric[:4], "Paused", "429", "418")
        table = _table("Pools", columns, numeric)
        for pool in pools:
            used = _json_number(pool["used"])
            capacity = _json_number(pool["effective_limit"]) or _json_number(pool["limit"])
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
            table.add_row(
                _text(pool["name"]),
                _text(pool["scope"]),
                bar,
                _fmt_count(pool["used"]),
                _fmt_count(pool["effective_limit"]),
                Text(f"{_fmt_count(pool['limit'])} / {_fmt_seconds(pool['interval_s'])}"),
                _fmt_count(pool["server_used"]),
                Text("yes", "bold red") if _paused(pool["paused_until"], now) else Text("no"),
                _fmt_count(pool["status_429"]),
                _fmt_count(pool["status_418"]),
            )
        parts.append(table)

    endpoints = list(weights["endpoints"])
    if endpoints:
        endpoints.sort(key=lambda record: -(_json_number(record["weight"]) or 0.0))
        shown = endpoints[: max(top, 0)]
        figures = ("Calls", "Weight", "Waited", "429", "418")
        title = f"Endpoints by weight ({len(shown)} of {len(endpoints)})"
        table = _table(title, ("Endpoint", *figures), figures)
        for record in shown:
            table.add_row(_text(record["endpoint"]), *_endpoint_figures(record))
        totals = weights["totals"]
        if totals:
            table.add_section()
            table.add_row(Text("total", "bold"), *_endpoint_figures(totals))
        parts.append(table)
    parts += _clients_parts(weights.get("clients"), now)
    return parts


def _priority_parts(weights: RatekitWeights) -> list[RenderableType]:
    """Who goes first: this process's priority, the reserve, what waits now. Nothing for a bot
    of an older ratekit version (no such keys)."""
    if "reserve" not in weights:
        return []
    reserve = _json_number(weights["reserve"])
    if reserve is None:
        return []
    client = weights.get("client")
    if weights.get("background") and client:
        line = Text(
            f"This process: {client['name']} ({client['run_mode']}), not a bot: its calls go "
            f"after the bots' and use at most {1 - reserve:.0%} of each pool",
            "yellow",
        )
    else:
        line = Text(
            f"Priority: bot calls first and may use every pool whole; non-bot commands "
            f"(download-data, ...) at most {1 - reserve:.0%} of each (weights.reserve "
            f"{reserve:g})"
        )
    waiting = weights.get("waiting")
    if waiting:
        calls = _json_number(waiting["calls"]) or 0
        line.append(
            f"; {calls:.0f} calls waiting now, waited {_fmt_seconds(waiting['blocked_s'])} "
            "for budget in all",
            "yellow" if calls else "",
        )
    return [line]


def _clients_parts(clients: list[RatekitClient] | None, now: float) -> list[RenderableType]:
    """The scope's non-bot clients: who, besides the bots, spent the shared budget."""
    if not clients:
        return []
    return [clients_table(clients, now)]


def clients_table(clients: Iterable[RatekitClient], now: float) -> Table:
    """The non-bot clients of a scope as one table (status CLI and check-config)."""
    figures = ("Weight", "Calls", "Waited", "429", "418", "Seen")
    columns = ("Client", "Run mode", "Host / pid", "State", *figures)
    table = _table("Non-bot clients of this scope", columns, figures)
    for client in clients:
        state = client["state"]
        table.add_row(
            _text(client["name"]),
            _text(client["run_mode"]),
            _text(f"{client['host']} / {client['pid']}"),
            Text(str(state), "green" if state == "running" else "dim"),
            _fmt_count(client["weight"]),
            _fmt_count(client["calls"]),
            _fmt_seconds(client["blocked_s"]),
            _fmt_count(client["status_429"]),
            _fmt_count(client["status_418"]),
            _fmt_ago(client["updated_at"], now),
        )
    return table


def _endpoint_figures(record: RatekitWeightTotals) -> tuple[str, ...]:
    """The figure columns of an endpoint row, or of the totals row (an endpoint's figures are
    the totals' fields, plus its name)."""
    return (
        _fmt_count(record["calls"]),
        _fmt_count(record["weight"]),
        _fmt_seconds(record["wait_s"]),
        _fmt_count(record["status_429"]),
        _fmt_count(record["status_418"]),
    )


def _paused(paused_until: Any, now: float) -> bool:
    until = _json_number(paused_until)
    return until is not None and until > now
