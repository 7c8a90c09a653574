"""Grafana dashboards: valid JSON with fixed uids, variables defined where
used, and every query (panels, variables, rules) parsed by Prometheus's own
parser and naming only series that exist. The live stack test runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.deploy.deploy_files import (
    DASHBOARDS_DIR,
    dashboard_files,
    load_dashboard,
    panel_queries,
    promtool_parse,
    rules,
    substitute,
    variable_queries,
    variables_used,
)

EXPECTED_UIDS = {
    "fleet-overview.json": "msgprobe-fleet",
    "service-detail.json": "msgprobe-service",
    "probe-health.json": "msgprobe-probe-health",
}

# The daemon's metrics (final names, DESIGN.md and the exporter's table).
PROBE_METRICS = {
    "msgprobe_endpoint_status",
    "msgprobe_endpoint_raw_status",
    "msgprobe_endpoint_blocked",
    "msgprobe_endpoint_last_change_timestamp_seconds",
    "msgprobe_service_blocked",
    "msgprobe_service_status",
    "msgprobe_check_success",
    "msgprobe_check_duration_seconds_bucket",
    "msgprobe_check_duration_seconds_count",
    "msgprobe_check_duration_seconds_sum",
    "msgprobe_checks_total",
    "msgprobe_cycle_duration_seconds",
    "msgprobe_cycles_total",
    "msgprobe_last_cycle_timestamp_seconds",
    "msgprobe_vantage_online",
    "msgprobe_control_up",
    "msgprobe_build_info",
    "msgprobe_vantage_info",
    "msgprobe_start_time_seconds",
    "msgprobe_config_last_reload_successful",
    "msgprobe_config_last_reload_success_timestamp_seconds",
    "msgprobe_config_reloads_total",
    # throttling, calls and regimes (issue 9)
    "msgprobe_endpoint_goodput_bytes_per_second",
    "msgprobe_throttle_budget_used_bytes",
    "msgprobe_throttle_budget_bytes",
    "msgprobe_vantage_regime",
    "msgprobe_canary_up",
    # raw-packet witnesses (issue 12)
    "msgprobe_injection_detected",
    "msgprobe_censor_hop",
    "msgprobe_raw_ready",
}
_SERIES_NAME = re.compile(r"\b(msgprobe[:_][a-zA-Z0-9_:]*[a-zA-Z0-9_])\b")
_IDENTITY_VARIABLES = {"datasource", "country", "asn", "vantage"}


def _recorded() -> set[str]:
    return {r.name for r in rules() if r.kind == "record"}


def _names_in(expr: str) -> set[str]:
    return set(_SERIES_NAME.findall(expr))  # a pattern such as "msgprobe_.+" does not match


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_has_its_fixed_uid_and_sound_panels(path: Path) -> None:
    board = load_dashboard(path)
    assert board["uid"] == EXPECTED_UIDS[path.name]
    assert board["title"].startswith("msgprobe — ")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    defined = {v["name"] for v in board["templating"]["list"]}
    assert defined >= _IDENTITY_VARIABLES
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        assert panel.get("description"), f"{panel['title']}: say what the panel shows"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            used = variables_used(target["expr"])
            assert used <= defined, f"{panel['title']}: undefined variables {used - defined}"


def test_all_uids_are_distinct_and_every_dashboard_is_listed() -> None:
    assert {p.name for p in dashboard_files()} == set(EXPECTED_UIDS)
    uids = [load_dashboard(p)["uid"] for p in dashboard_files()]
    assert len(uids) == len(set(uids))


def test_fleet_overview_has_a_service_by_vantage_state_map() -> None:
    board = load_dashboard(DASHBOARDS_DIR / "fleet-overview.json")
    (matrix,) = [p for p in board["panels"] if p["title"] == "Service × vantage"]
    (transform,) = matrix["transformations"]
    assert transform["id"] == "groupingToMatrix"
    assert (transform["options"]["rowField"], transform["options"]["columnField"]) == ("service", "vantage")
    texts = {m["text"] for m in matrix["fieldConfig"]["defaults"]["mappings"][0]["options"].values()}
    assert {"ok", "blocked", "unreachable", "down", "unknown", "error"} <= texts


def test_alert_links_point_at_shipped_dashboards() -> None:
    uids = set(EXPECTED_UIDS.values())
    for rule in (r for r in rules() if r.kind == "alert"):
        link = rule.spec["annotations"].get("dashboard")
        if link is not None:
            assert re.match(r"/d/([\w-]+)/", link) and link.split("/")[2] in uids, (rule.name, link)


def test_goodput_calls_and_regime_have_panels() -> None:
    # The throttling, call and whitelist alerts point at panels that show their evidence.
    queried = {(q.dashboard, name) for q in panel_queries() for name in _names_in(q.expr)}
    assert ("msgprobe-service", "msgprobe_endpoint_goodput_bytes_per_second") in queried
    assert any(d == "msgprobe-service" and "stun:" in q.expr for q in panel_queries() for d in [q.dashboard])
    assert ("msgprobe-fleet", "msgprobe_vantage_regime") in queried
    assert {
        ("msgprobe-probe-health", m) for m in ("msgprobe_throttle_budget_used_bytes", "msgprobe_canary_up")
    } <= queried


def test_packet_evidence_sits_beside_the_block_evidence() -> None:
    # Per endpoint, on the service dashboard where the blocked endpoints and their methods are.
    (panel,) = [q for q in panel_queries() if q.panel == "Packet evidence" and q.ref == "A"]
    assert panel.dashboard == "msgprobe-service" and panel.instant
    queried = {name for q in panel_queries() if q.panel == "Packet evidence" for name in _names_in(q.expr)}
    assert queried == {"msgprobe_injection_detected", "msgprobe_censor_hop"}
    for q in panel_queries():
        if q.panel == "Packet evidence":
            assert "endpoint" in q.expr, "one row per endpoint"


def test_queries_name_only_series_that_exist() -> None:
    known = PROBE_METRICS | _recorded()
    exprs = [q.expr for q in panel_queries()] + [v.metric_selector for v in variable_queries()]
    exprs += [r.expr for r in rules()]
    for expr in exprs:
        unknown = _names_in(expr) - known
        assert not unknown, f"{expr!r} names unknown series {unknown}"


def test_every_query_parses(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    exprs = {q.id: substitute(q.expr) for q in panel_queries()}
    for v in variable_queries():
        # label_values(selector, label) is Grafana's; the selector is PromQL.
        exprs[f"{v.dashboard}/${v.name}"] = f"group by ({v.label}) ({substitute(v.metric_selector)})"
    result = promtool_parse(promtool, exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_parse_check_catches_a_broken_query(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    result = promtool_parse(promtool, {"broken": "sum by (service (msgprobe_service_blocked)"}, tmp_path)
    assert result.returncode != 0
