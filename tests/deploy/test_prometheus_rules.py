"""The alert and recording rules: promtool's checks, its unit tests, and that
those unit tests would catch each of the rules' guards being broken."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_tool
from tests.deploy.deploy_files import RULE_TESTS_DIR, RULES_DIR, rule_files, rule_test_files, rules

EXPECTED_ALERTS = {
    "MessengerNewBlock",
    "MessengerBlockLifted",
    "MessengerUnreachableOnlyHere",
    "ProbeDown",
    "ProbeStale",
    "ProbeNotMeasuring",
    "ProbeVantageOffline",
    "ProbeControlUnreachable",
    "MessengerThrottled",
    "MessengerCallsBlocked",
    "ProbeWhitelistRegime",
}


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_rule_files_pass_promtool_check() -> None:
    promtool = require_tool("promtool")
    files = rule_files()
    assert files, "no rule files in deploy/prometheus/rules"
    result = _run([promtool, "check", "rules", *map(str, files)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_the_named_alerts_exist_with_routing_labels_and_text() -> None:
    alerts = [r for r in rules() if r.kind == "alert"]
    assert {r.name for r in alerts} == EXPECTED_ALERTS
    for rule in alerts:
        assert rule.spec["labels"]["severity"] in {"info", "warning", "critical"}, rule.name
        assert rule.spec["labels"]["category"] in {"censorship", "probe"}, rule.name
        assert {"summary", "description"} <= set(rule.spec["annotations"]), rule.name
    for rule in (r for r in alerts if r.spec["labels"]["category"] == "censorship"):
        # Every censorship alert names where it happened.
        assert "country" in rule.spec["annotations"]["summary"], rule.name


def test_recorded_names_follow_the_level_metric_operation_convention() -> None:
    for rule in (r for r in rules() if r.kind == "record"):
        assert re.fullmatch(r"msgprobe:[a-z0-9_]+:[a-z0-9_]+", rule.name), rule.name


def test_rule_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    files = rule_test_files()
    assert files, "no promtool unit tests in deploy/prometheus/tests"
    result = _run([promtool, "test", "rules", *map(str, files)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in rule_test_files():
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing >= EXPECTED_ALERTS, f"never tested firing: {sorted(EXPECTED_ALERTS - firing)}"
    assert silent >= EXPECTED_ALERTS, f"never tested silent: {sorted(EXPECTED_ALERTS - silent)}"


# The methods with alerts of their own, left out of the new/lifted block events.
_OWN_ALERTS = '{method!~"throttled|udp[.]blocked|whitelist"}'
_NOT_WHITELIST = '            unless on (vantage) msgprobe_vantage_regime{regime="whitelist"} == 1\n'

# Each guard of a rule, broken on purpose: the unit tests must notice.
# (what breaks, text in the rule files, its replacement, the test file that must fail)
MUTATIONS = [
    (
        "NewBlock forgets the previous day",
        "            unless on (vantage, service)\n"
        "              max_over_time(msgprobe:service_blocked_by_method:max"
        f"{_OWN_ALERTS}[1d] offset 1h) > 0\n",
        "",
        "new-block_test.yml",
    ),
    (
        "NewBlock ignores an offline vantage",
        f"          msgprobe:service_blocked_by_method:max{_OWN_ALERTS} == 1\n"
        "            and on (vantage) msgprobe_vantage_online == 1\n",
        f"          msgprobe:service_blocked_by_method:max{_OWN_ALERTS} == 1\n",
        "new-block_test.yml",
    ),
    (
        "NewBlock raises one alert per service for a whitelist regime",
        f"          msgprobe:service_blocked_by_method:max{_OWN_ALERTS} == 1\n",
        "          msgprobe:service_blocked_by_method:max == 1\n",
        "whitelist-regime_test.yml",
    ),
    (
        "NewBlock counts a whitelist regime as the previous day's block",
        f"max_over_time(msgprobe:service_blocked_by_method:max{_OWN_ALERTS}[1d] offset 1h)",
        "max_over_time(msgprobe_service_blocked[1d] offset 1h)",
        "whitelist-regime_test.yml",
    ),
    (
        "NewBlock doubles MessengerThrottled",
        f"          msgprobe:service_blocked_by_method:max{_OWN_ALERTS} == 1\n",
        '          msgprobe:service_blocked_by_method:max{method!~"udp[.]blocked|whitelist"} == 1\n',
        "throttled_test.yml",
    ),
    (
        "NewBlock doubles MessengerCallsBlocked",
        f"          msgprobe:service_blocked_by_method:max{_OWN_ALERTS} == 1\n",
        '          msgprobe:service_blocked_by_method:max{method!~"throttled|whitelist"} == 1\n',
        "calls-blocked_test.yml",
    ),
    (
        "BlockLifted fires for every service when a whitelist regime ends",
        f"max_over_time(msgprobe:service_blocked_by_method:max{_OWN_ALERTS}[2h]) == 1",
        "max_over_time(msgprobe:service_blocked_by_method:max[2h]) == 1",
        "whitelist-regime_test.yml",
    ),
    (
        "Throttled from an offline vantage",
        '          msgprobe_endpoint_blocked{method="throttled"} == 1\n'
        "            and on (vantage) msgprobe_vantage_online == 1\n",
        '          msgprobe_endpoint_blocked{method="throttled"} == 1\n',
        "throttled_test.yml",
    ),
    (
        "Throttled on one reading",
        '          msgprobe_endpoint_blocked{method="throttled"} == 1\n'
        "            and on (vantage) msgprobe_vantage_online == 1\n"
        "        for: 15m\n",
        '          msgprobe_endpoint_blocked{method="throttled"} == 1\n'
        "            and on (vantage) msgprobe_vantage_online == 1\n"
        "        for: 5m\n",
        "throttled_test.yml",
    ),
    (
        "CallsBlocked when all UDP is down",
        '          msgprobe_endpoint_blocked{method="udp.blocked"} == 1\n',
        '          msgprobe_check_success{check=~"stun:.+"} == 0\n',
        "calls-blocked_test.yml",
    ),
    (
        "CallsBlocked from an offline vantage",
        '          msgprobe_endpoint_blocked{method="udp.blocked"} == 1\n'
        "            and on (vantage) msgprobe_vantage_online == 1\n",
        '          msgprobe_endpoint_blocked{method="udp.blocked"} == 1\n',
        "calls-blocked_test.yml",
    ),
    (
        "WhitelistRegime without a canary as witness",
        "            and on (vantage) count by (vantage) (msgprobe_canary_up == 1) > 0\n",
        "",
        "whitelist-regime_test.yml",
    ),
    (
        "WhitelistRegime on an offline vantage",
        '          msgprobe_vantage_regime{regime="whitelist"} == 1\n'
        "            and on (vantage) count by (vantage) (msgprobe_canary_up == 1) > 0\n",
        '          msgprobe_vantage_regime{regime=~"whitelist|offline"} == 1\n',
        "whitelist-regime_test.yml",
    ),
    ("NewBlock notifies every flap", "        keep_firing_for: 1h\n", "", "new-block_test.yml"),
    (
        "BlockLifted fires on a short lift",
        "        for: 30m\n        labels:\n          severity: info\n          category: censorship\n"
        '        annotations:\n          summary: "{{ $labels.service }} no longer',
        "        for: 1m\n        labels:\n          severity: info\n          category: censorship\n"
        '        annotations:\n          summary: "{{ $labels.service }} no longer',
        "block-lifted_test.yml",
    ),
    (
        "BlockLifted without the service being ok",
        '            and on (vantage, service) msgprobe_service_status{status="ok"} == 1\n',
        "",
        "block-lifted_test.yml",
    ),
    (
        "UnreachableOnlyHere without the fleet as control",
        '            and on (service) count by (service) (msgprobe_service_status{status="ok"} == 1) > 0\n',
        "",
        "unreachable-only-here_test.yml",
    ),
    (
        "UnreachableOnlyHere counts offline vantages",
        '          msgprobe_service_status{status=~"unreachable|unknown"} == 1\n'
        "            and on (vantage) msgprobe_vantage_online == 1\n",
        '          msgprobe_service_status{status=~"unreachable|unknown"} == 1\n',
        "new-block_test.yml",
    ),
    (
        "ProbeStale fires for live vantages",
        "            unless on (vantage) msgprobe_cycles_total\n",
        "\n",
        "probe-health_test.yml",
    ),
    (
        "ProbeDown without a grace period",
        '        expr: up{job="msgprobe"} == 0\n        for: 10m\n',
        '        expr: up{job="msgprobe"} == 0\n',
        "probe-health_test.yml",
    ),
    (
        "ProbeVantageOffline on any dip",
        f"{_NOT_WHITELIST}        for: 15m\n",
        f"{_NOT_WHITELIST}        for: 5m\n",
        "probe-health_test.yml",
    ),
    (
        "ProbeVantageOffline under a whitelist regime",
        f"{_NOT_WHITELIST}        for: 15m\n",
        "        for: 15m\n",
        "whitelist-regime_test.yml",
    ),
    (
        "ProbeControlUnreachable on one missed cycle",
        "        expr: msgprobe_control_up == 0\n        for: 30m\n",
        "        expr: msgprobe_control_up == 0\n",
        "control_test.yml",
    ),
    ("status codes swapped", '{status="down"} * 2', '{status="down"} * 5', "new-block_test.yml"),
]


@pytest.mark.parametrize(("what", "old", "new", "catcher"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_unit_tests_catch_a_broken_guard(tmp_path: Path, what: str, old: str, new: str, catcher: str) -> None:
    promtool = require_tool("promtool")
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    shutil.copytree(RULE_TESTS_DIR, tmp_path / "tests")
    hits = 0
    for path in (tmp_path / "rules").glob("*.yml"):
        text = path.read_text()
        hits += text.count(old)
        path.write_text(text.replace(old, new))
    assert hits == 1, f"mutation {what!r} must change exactly one place, found {hits}"
    check = _run([promtool, "check", "rules", *map(str, (tmp_path / "rules").glob("*.yml"))])
    assert check.returncode == 0, f"the mutated rules must still be valid: {check.stdout}{check.stderr}"
    result = _run([promtool, "test", "rules", str(tmp_path / "tests" / catcher)])
    assert result.returncode != 0, f"unit tests did not notice: {what}"
    assert "FAILED" in result.stdout + result.stderr
