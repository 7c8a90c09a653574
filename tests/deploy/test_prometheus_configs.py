"""The shipped Prometheus and Alertmanager configs, checked by their own tools."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool
from tests.deploy.deploy_files import AGENT_CONFIG, ALERTMANAGER_CONFIG, CENTRAL_CONFIG, RULES_DIR, rules


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def test_agent_config_passes_promtool_in_agent_mode() -> None:
    promtool = require_tool("promtool")
    result = _run([promtool, "check", "config", "--agent", str(AGENT_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_agent_config_is_refused_as_a_server_config_with_rules(tmp_path: Path) -> None:
    # The check above is not vacuous: agent mode refuses what only a server does.
    promtool = require_tool("promtool")
    doc = _load(AGENT_CONFIG)
    doc["rule_files"] = [str(RULES_DIR / "*.yml")]
    path = tmp_path / "agent-with-rules.yml"
    path.write_text(yaml.safe_dump(doc))
    result = _run([promtool, "check", "config", "--agent", str(path)])
    assert result.returncode != 0
    assert "agent" in (result.stdout + result.stderr).lower()


def test_agent_labels_come_from_the_environment_and_only_probe_series_leave() -> None:
    doc = _load(AGENT_CONFIG)
    assert doc["global"]["external_labels"] == {
        "vantage": "${MSGPROBE_VANTAGE}",
        "country": "${MSGPROBE_COUNTRY}",
        "asn": "${MSGPROBE_ASN}",
    }
    (job,) = doc["scrape_configs"]
    assert job["job_name"] == "msgprobe"  # the alert rules' contract (ProbeDown)
    (remote,) = doc["remote_write"]
    assert remote["url"].startswith("https://")
    assert remote["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/run/secrets/remote_write_token",
    }
    (keep,) = remote["write_relabel_configs"]
    assert keep["action"] == "keep" and keep["source_labels"] == ["__name__"]
    # Prometheus anchors relabel regexes at both ends, as fullmatch does.
    pattern = re.compile(keep["regex"])
    for name in ("msgprobe_endpoint_status", "msgprobe_check_duration_seconds_bucket", "up"):
        assert pattern.fullmatch(name), name
    for name in (
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "prometheus_build_info",
        "upx",
        "go_goroutines",
    ):
        assert not pattern.fullmatch(name), name


def test_central_config_passes_promtool_with_the_rules_loaded(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    shipped = _run([promtool, "check", "config", str(CENTRAL_CONFIG)])
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    # In the container the rules are mounted at /etc/prometheus/rules; point
    # the same config at the repository's copy so promtool checks them too.
    doc = _load(CENTRAL_CONFIG)
    assert doc["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    doc["rule_files"] = [str(RULES_DIR / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc))
    result = _run([promtool, "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(list(RULES_DIR.glob('*.yml')))} rule files found" in result.stdout
    assert sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", result.stdout)) == len(rules())


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require_tool("amtool")
    result = _run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _alert_labels() -> dict[str, dict[str, str]]:
    return {r.name: {"alertname": r.name, **r.spec["labels"]} for r in rules() if r.kind == "alert"}


EXPECTED_RECEIVER = {
    "MessengerNewBlock": "censorship-events",
    "MessengerBlockLifted": "censorship-events",
    "MessengerUnreachableOnlyHere": "censorship",
    "ProbeDown": "fleet",
    "ProbeStale": "fleet",
    "ProbeNotMeasuring": "fleet",
    "ProbeVantageOffline": "fleet",
    "ProbeControlUnreachable": "fleet",
    "MessengerThrottled": "censorship",
    "MessengerCallsBlocked": "censorship",
    "ProbeWhitelistRegime": "censorship",
}


@pytest.mark.parametrize("alert", sorted(EXPECTED_RECEIVER))
def test_each_alert_routes_to_its_audience(alert: str) -> None:
    amtool = require_tool("amtool")
    labels = _alert_labels()[alert]
    labels.update(vantage="ru-1", country="RU", asn="12389", service="telegram", method="tls.reset")
    result = _run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--verify.receivers={EXPECTED_RECEIVER[alert]}",
            *(f"{k}={v}" for k, v in labels.items()),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_receiver_is_noticed() -> None:
    amtool = require_tool("amtool")
    result = _run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            "--verify.receivers=fleet",
            "alertname=MessengerNewBlock",
            "category=censorship",
        ]
    )
    assert result.returncode != 0
