"""The Grafana dashboard and the Prometheus example only use metrics ratekit exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from freqtrade_ratekit import api, metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "user_data" / "grafana" / "ratekit-dashboard.json"
SCRAPE_CONFIG = ROOT / "user_data" / "prometheus" / "prometheus.yml"

METRIC_NAME = re.compile(r"\bratekit_[a-z0-9_]+")
HISTOGRAMS = {spec.name for spec in metrics.METRICS if spec.kind == metrics.HISTOGRAM}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # collapsed rows nest their panels


def panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def exprs(dashboard: dict[str, Any]) -> list[str]:
    """Panel queries and template variable queries."""
    variables = dashboard["templating"]["list"]
    return panel_exprs(dashboard) + [v["query"] for v in variables if v["type"] == "query"]


def documented(name: str) -> bool:
    if name in metrics.DOCUMENTED_METRICS:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base in HISTOGRAMS


def test_every_expr_uses_only_documented_metrics(dashboard: dict[str, Any]) -> None:
    used = {name for expr in exprs(dashboard) for name in METRIC_NAME.findall(expr)}

    assert used, "no ratekit metric found in the dashboard"
    assert {name for name in used if not documented(name)} == set()


def test_dashboard_covers_the_promised_figures(dashboard: dict[str, Any]) -> None:
    used = {name for expr in exprs(dashboard) for name in METRIC_NAME.findall(expr)}

    for name in (
        "ratekit_cache_hit_ratio",
        "ratekit_cache_stale_reads_total",
        "ratekit_prewarm_duration_seconds",
        "ratekit_fiat_price_age_seconds",
        "ratekit_weight_pool_used",
        "ratekit_weight_pool_limit",
        "ratekit_weight_rate_limited_responses_total",
        "ratekit_weight_wait_seconds_bucket",
        "ratekit_weight_backend_degraded",
    ):
        assert name in used, name


def test_exprs_are_balanced_and_filtered_by_the_bot_variable(dashboard: dict[str, Any]) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    for expr in exprs(dashboard):
        stack: list[str] = []
        for char in re.sub(r'"[^"]*"', '""', expr):  # brackets inside label values do not count
            if char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], expr
        assert not stack, expr
    for expr in panel_exprs(dashboard):
        for name in METRIC_NAME.findall(expr):
            assert re.search(rf'{name}\{{instance=~"\$instance"\}}', expr), (name, expr)


def test_is_a_grafana_10_dashboard_with_a_prometheus_datasource_variable(
    dashboard: dict[str, Any],
) -> None:
    assert dashboard["schemaVersion"] >= 37  # Grafana 10.0
    assert dashboard["uid"] and dashboard["title"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        position = panel["gridPos"]
        for x in range(position["x"], position["x"] + position["w"]):
            for y in range(position["y"], position["y"] + position["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


def test_scrape_config_points_at_the_metrics_route_with_basic_auth() -> None:
    text = SCRAPE_CONFIG.read_text()
    active = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))

    assert re.search(rf"^\s+metrics_path: {re.escape(api.PREFIX)}/metrics$", active, re.M)
    auth = re.search(r"^(\s+)basic_auth:\n((?:\1\s+.*\n)+)", active, re.M)
    assert auth, "basic_auth block missing"
    assert re.search(r"^\s+username: \S+", auth.group(2), re.M)
    assert re.search(r"^\s+password_file: /\S+", auth.group(2), re.M)
    assert re.search(r"^\s+- \d+\.\d+\.\d+\.\d+:\d+$", active, re.M)  # a host:port target
