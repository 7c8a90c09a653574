"""The real exposition: ``promtool check metrics`` on the text format, the
client's strict parser on OpenMetrics, and label values from closed sets only."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from probe.export.metrics import SnapshotCollector
from probe.state import Snapshot
from probe.vocab import Method, Status
from tests.conftest import require_tool
from tests.export import snapshots

SCENARIOS = {
    "scenario": snapshots.scenario,
    "empty": snapshots.empty,
    "catalog": snapshots.catalog,
    "packets": snapshots.packets,
}


def registry_for(snapshot: Snapshot) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SnapshotCollector(lambda: snapshot))
    return registry


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_promtool_check_metrics_is_clean(name: str) -> None:
    promtool = require_tool("promtool")
    text = generate_latest(registry_for(SCENARIOS[name]()))
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert done.stdout.decode().strip() == "" and done.stderr.decode().strip() == ""


def test_promtool_does_catch_a_lint_problem() -> None:
    # The check above is only worth something if promtool reports problems here.
    promtool = require_tool("promtool")
    bad = b"# HELP msgprobe_bad_counter x\n# TYPE msgprobe_bad_counter counter\nmsgprobe_bad_counter 1\n"
    done = subprocess.run(
        [promtool, "check", "metrics"], input=bad, capture_output=True, timeout=60, check=False
    )
    assert done.returncode != 0


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_openmetrics_parses_strictly(name: str) -> None:
    text = generate_openmetrics(registry_for(SCENARIOS[name]())).decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(text)}
    assert families["msgprobe_build"].type == "info"
    assert families["msgprobe_cycles"].type == "counter"
    if name != "empty":
        assert families["msgprobe_check_duration_seconds"].type == "histogram"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_label_values_come_from_closed_sets(name: str) -> None:
    snapshot = SCENARIOS[name]()
    text = generate_latest(registry_for(snapshot)).decode()
    services = {s.name for s in snapshot.services}
    endpoints = {e.endpoint for e in snapshot.endpoints}
    checks = {c for e in snapshot.endpoints for c in e.checks}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            assert labels.get("status", "ok") in {s.value for s in Status}
            assert labels.get("method", "tls.reset") in {m.value for m in Method}
            assert labels.get("kind", "dns") in {"dns", "reset"}
            if "endpoint" in labels:
                assert labels["endpoint"] in endpoints
            if "check" in labels:
                assert (
                    labels["check"] in checks
                    or (labels["service"], labels["check"]) in snapshot.stats.durations
                )
            if "service" in labels and family.name != "msgprobe_checks":
                assert labels["service"] in services
