"""The VictoriaMetrics variant of the watchdogs' stack
(deploy/watchdog/victoriametrics/): valid against the Compose Specification,
consistent with the files it mounts and the dashboards it serves, and its
rules accepted by vmalert's own parser (a real run of Debian's vmalert)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool
from tests.deploy.deploy_files import (
    COMPOSE_SCHEMA,
    DASHBOARDS_DIR,
    DEPLOY,
    RULES_DIR,
    dashboard_files,
    load_dashboard,
    rule_files,
)
from tests.deploy.live_stack import rules_with_short_interval
from tests.deploy.victoria_stack import NEWER_RULE_FIELDS, dry_run, unsupported_fields

VM_DIR = DEPLOY / "watchdog" / "victoriametrics"
COMPOSE = VM_DIR / "compose.yaml"
# vmalert learnt keep_firing_for (in the shipped MessengerNewBlock) in v1.90.
KEEP_FIRING_FOR_SINCE = (1, 90)


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _flags(service: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for arg in _compose()["services"][service]["command"]:
        name, _, value = arg.lstrip("-").partition("=")
        out.setdefault(name, []).append(value)
    return out


def _mounts(service: str) -> dict[str, str]:
    """Container path -> source, for the service's volumes."""
    return {v.split(":")[1]: v.split(":")[0] for v in _compose()["services"][service]["volumes"]}


def test_compose_file_matches_the_compose_specification() -> None:
    pytest.importorskip("check_jsonschema", reason="in the project's test extras")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMPOSE_SCHEMA), str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_are_pinned_and_vmalert_knows_the_shipped_rule_fields() -> None:
    images = {name: s["image"] for name, s in _compose()["services"].items()}
    for name, image in images.items():
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned"
    vm_version = images["victoria-metrics"].rsplit(":v", 1)[1]
    assert images["vmalert"].endswith(f":v{vm_version}"), "vmalert and victoria-metrics from one release"
    major, minor, _ = map(int, vm_version.split("."))
    assert (major, minor) >= KEEP_FIRING_FOR_SINCE


def test_every_port_is_bound_to_loopback_by_default() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"


def test_bind_mounts_exist() -> None:
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (VM_DIR / source).exists(), f"{name}: {source} does not exist"


def test_vmalert_runs_the_shipped_rule_files_against_victoria_metrics() -> None:
    flags = _flags("vmalert")
    (rule_glob,) = flags["rule"]
    mounted = {target: (VM_DIR / source).resolve() for target, source in _mounts("vmalert").items()}
    directory, _, pattern = rule_glob.rpartition("/")
    assert mounted[directory] == RULES_DIR.resolve()
    assert sorted(RULES_DIR.glob(pattern)) == rule_files()
    store = "http://victoria-metrics:8428"
    # Queries from it, recorded series and ALERTS into it, alert state restored from it.
    assert flags["datasource.url"] == flags["remoteWrite.url"] == flags["remoteRead.url"] == [store]
    assert flags["notifier.url"] == ["http://alertmanager:9093"]
    assert _mounts("alertmanager")["/etc/alertmanager/alertmanager.yml"] == "../alertmanager.yml"


def test_retention_is_configurable() -> None:
    assert _flags("victoria-metrics")["retentionPeriod"] == ["${VM_RETENTION:-400d}"]
    assert "VM_RETENTION=" in (VM_DIR / ".env.example").read_text()


def test_grafana_reads_victoria_metrics_under_the_dashboards_datasource_uid() -> None:
    mounts = _mounts("grafana")
    datasources = VM_DIR / mounts["/etc/grafana/provisioning/datasources"]
    ((source,),) = [yaml.safe_load(p.read_text())["datasources"] for p in datasources.glob("*.yml")]
    assert source["type"] == "prometheus" and source["url"] == "http://victoria-metrics:8428"
    for path in dashboard_files():
        (variable,) = [v for v in load_dashboard(path)["templating"]["list"] if v["type"] == "datasource"]
        assert variable["query"] == source["type"] and variable["current"]["value"] == source["uid"], (
            path.name
        )
    assert (VM_DIR / mounts["/var/lib/grafana/dashboards/msgprobe"]).resolve() == DASHBOARDS_DIR.resolve()


@pytest.mark.parametrize("name", ["victoria-metrics", "vmalert"])
def test_every_flag_is_known_to_the_binary(name: str) -> None:
    binary = require_tool(name)
    # Debian's build (1.79.5) is older than the image: a flag it lists exists in both.
    result = subprocess.run([binary, "-help"], capture_output=True, text=True, timeout=30, check=False)
    known = set(re.findall(r"^\s+-([\w.]+)", result.stdout + result.stderr, re.M))
    assert set(_flags(name)) <= known, sorted(set(_flags(name)) - known)


def test_vmalert_accepts_every_shipped_rule_file(tmp_path: Path) -> None:
    vmalert = require_tool("vmalert")
    shipped = [str(p) for p in rule_files()]
    # An older vmalert (Debian's 1.79.5) may refuse only the fields it predates.
    drop = unsupported_fields(vmalert, shipped)
    assert set(drop) <= set(NEWER_RULE_FIELDS)
    rules = shipped if not drop else rules_with_short_interval(tmp_path / "rules", drop=drop)
    result = dry_run(vmalert, rules)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_dry_run_catches_a_mistake(tmp_path: Path) -> None:
    vmalert = require_tool("vmalert")
    doc = yaml.safe_load((RULES_DIR / "msgprobe-recording.yml").read_text())  # no newer fields
    doc["groups"][0]["rules"][0]["expr"] = "sum(msgprobe_service_blocked"
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(doc))
    result = dry_run(vmalert, [str(bad)])
    assert result.returncode != 0
    assert "unexpected" in result.stderr or "cannot parse" in result.stderr, result.stderr[-1000:]
