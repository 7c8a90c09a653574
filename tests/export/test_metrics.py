"""The collector, family by family, on hand-built snapshots (``registry.get_sample_value``)."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from probe.export.metrics import METRICS, SnapshotCollector, register
from probe.model import CheckResult
from probe.state import Snapshot
from probe.vocab import Failure, Method, Status
from tests.export import snapshots
from tests.export.snapshots import NOW, STARTED


def registry_for(snapshot: Snapshot) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SnapshotCollector(lambda: snapshot))
    return registry


@pytest.fixture(scope="module")
def scenario() -> CollectorRegistry:
    return registry_for(snapshots.scenario())


def ep(service: str, endpoint: str, **labels: str) -> dict[str, str]:
    return {"service": service, "endpoint": endpoint, **labels}


def test_endpoint_status_is_a_full_state_set(scenario: CollectorRegistry) -> None:
    def status(service: str, endpoint: str) -> dict[str, float | None]:
        return {
            s.value: scenario.get_sample_value(
                "msgprobe_endpoint_status", ep(service, endpoint, status=s.value)
            )
            for s in Status
        }

    assert status("wechat", "short.weixin.qq.com") == {
        "ok": 0.0,
        "blocked": 1.0,
        "unreachable": 0.0,
        "down": 0.0,
        "unknown": 0.0,
        "error": 0.0,
    }
    assert status("zello", "zello.io")["unreachable"] == 1.0
    assert status("bbm", "bbm.example")["down"] == 1.0
    # Configured by a reload, never measured: unknown, with all zeros beside it.
    assert status("line", "obs.line-scdn.net") == {
        s.value: 1.0 if s is Status.UNKNOWN else 0.0 for s in Status
    }


def test_raw_status_shows_the_unconfirmed_result(scenario: CollectorRegistry) -> None:
    gd2 = ep("line", "gd2.line.naver.jp")
    assert scenario.get_sample_value("msgprobe_endpoint_status", {**gd2, "status": "ok"}) == 1.0
    assert scenario.get_sample_value("msgprobe_endpoint_raw_status", {**gd2, "status": "blocked"}) == 1.0
    assert scenario.get_sample_value("msgprobe_endpoint_raw_status", {**gd2, "status": "ok"}) == 0.0
    # No result yet: every raw series exists and is 0.
    fresh = ep("line", "obs.line-scdn.net")
    values = [
        scenario.get_sample_value("msgprobe_endpoint_raw_status", {**fresh, "status": s}) for s in Status
    ]
    assert values == [0.0] * len(Status)


def test_blocked_by_method_initialised_per_endpoint(scenario: CollectorRegistry) -> None:
    short = ep("wechat", "short.weixin.qq.com")
    assert scenario.get_sample_value("msgprobe_endpoint_blocked", {**short, "method": "tls.reset"}) == 1.0
    assert scenario.get_sample_value("msgprobe_endpoint_blocked", {**short, "method": "dns.nxdomain"}) == 0.0
    assert scenario.get_sample_value("msgprobe_endpoint_blocked", {**short, "method": "tcp.timeout"}) == 0.0
    # Methods the endpoint's checks cannot reveal get no series.
    assert (
        scenario.get_sample_value("msgprobe_endpoint_blocked", {**short, "method": "http.blockpage"}) is None
    )
    page = ep("line", "line.me", method="http.blockpage")
    assert scenario.get_sample_value("msgprobe_endpoint_blocked", page) == 1.0
    # A raw block that is not confirmed is not a block.
    gd2 = ep("line", "gd2.line.naver.jp", method="dns.nxdomain")
    assert scenario.get_sample_value("msgprobe_endpoint_blocked", gd2) == 0.0
    bbm = ep("bbm", "bbm.example")
    assert scenario.get_sample_value("msgprobe_endpoint_blocked", {**bbm, "method": "tcp.refused"}) == 0.0
    assert scenario.get_sample_value("msgprobe_endpoint_blocked", {**bbm, "method": "dns.nxdomain"}) is None


def test_a_confirmed_method_outside_the_initialised_set_still_shows() -> None:
    s = snapshots.scenario()
    odd = dataclasses.replace(s.endpoints[-1], status=Status.BLOCKED, method=Method.THROTTLED)
    registry = registry_for(dataclasses.replace(s, endpoints=(*s.endpoints[:-1], odd)))
    labels = ep("bbm", "bbm.example", method="throttled")
    assert registry.get_sample_value("msgprobe_endpoint_blocked", labels) == 1.0


def test_a_method_without_a_confirmed_block_is_not_a_block() -> None:
    s = snapshots.scenario()
    stray = dataclasses.replace(s.endpoints[-1], status=Status.DOWN, method=Method.TCP_REFUSED)
    registry = registry_for(dataclasses.replace(s, endpoints=(stray,)))
    labels = ep("bbm", "bbm.example", method="tcp.refused")
    assert registry.get_sample_value("msgprobe_endpoint_blocked", labels) == 0.0


def test_last_change_timestamp(scenario: CollectorRegistry) -> None:
    name = "msgprobe_endpoint_last_change_timestamp_seconds"
    assert scenario.get_sample_value(name, ep("wechat", "short.weixin.qq.com")) == NOW - 600
    assert scenario.get_sample_value(name, ep("line", "obs.line-scdn.net")) is None


def test_service_blocked_and_status(scenario: CollectorRegistry) -> None:
    assert scenario.get_sample_value("msgprobe_service_blocked", {"service": "wechat"}) == 1.0
    assert scenario.get_sample_value("msgprobe_service_blocked", {"service": "zello"}) == 0.0
    zello = {
        s.value: scenario.get_sample_value("msgprobe_service_status", {"service": "zello", "status": s.value})
        for s in Status
    }
    assert zello == {s.value: 1.0 if s is Status.UNREACHABLE else 0.0 for s in Status}


def test_check_success_from_latest_raw_result(scenario: CollectorRegistry) -> None:
    def check(service: str, endpoint: str, label: str) -> float | None:
        return scenario.get_sample_value("msgprobe_check_success", ep(service, endpoint, check=label))

    assert check("wechat", "short.weixin.qq.com", "dns") == 1.0
    assert check("wechat", "short.weixin.qq.com", "tcp:443") == 1.0
    assert check("wechat", "short.weixin.qq.com", "tls:443") == 0.0
    # TCP timed out, so TLS never ran: skipped is not a success.
    assert check("zello", "zello.io", "tcp:443") == 0.0
    assert check("zello", "zello.io", "tls:443") == 0.0
    # The blockpage answered HTTP fine, but the check is not a success.
    assert check("line", "line.me", "http:https://line.me/") == 0.0
    # Before any result the series is absent, not 0.
    assert check("line", "obs.line-scdn.net", "dns") is None


def test_check_success_needs_every_address_to_succeed() -> None:
    s = snapshots.scenario()
    tracked = s.endpoints[1]
    assert tracked.latest is not None
    rows = (
        *tracked.latest.checks,
        CheckResult("tcp:443", False, "connection_reset", 0.01, "203.0.113.99"),
    )
    latest = dataclasses.replace(tracked.latest, checks=rows)
    registry = registry_for(dataclasses.replace(s, endpoints=(dataclasses.replace(tracked, latest=latest),)))
    labels = ep("wechat", "dns.weixin.qq.com")
    assert registry.get_sample_value("msgprobe_check_success", {**labels, "check": "tcp:443"}) == 0.0
    assert registry.get_sample_value("msgprobe_check_success", {**labels, "check": "tls:443"}) == 1.0


def test_duration_histogram_buckets(scenario: CollectorRegistry) -> None:
    labels = {"service": "wechat", "check": "tls:443"}
    bucket = "msgprobe_check_duration_seconds_bucket"
    # observations 0.02, 0.03, 0.04, 0.3
    assert scenario.get_sample_value(bucket, {**labels, "le": "0.01"}) == 0.0
    assert scenario.get_sample_value(bucket, {**labels, "le": "0.025"}) == 1.0
    assert scenario.get_sample_value(bucket, {**labels, "le": "0.05"}) == 3.0
    assert scenario.get_sample_value(bucket, {**labels, "le": "0.25"}) == 3.0
    assert scenario.get_sample_value(bucket, {**labels, "le": "0.5"}) == 4.0
    assert scenario.get_sample_value(bucket, {**labels, "le": "30.0"}) == 4.0
    assert scenario.get_sample_value(bucket, {**labels, "le": "+Inf"}) == 4.0
    assert scenario.get_sample_value("msgprobe_check_duration_seconds_count", labels) == 4.0
    assert scenario.get_sample_value("msgprobe_check_duration_seconds_sum", labels) == pytest.approx(0.39)
    # Configured checks that never ran are initialised to empty histograms.
    http = {"service": "line", "check": "http:https://line.me/"}
    assert scenario.get_sample_value("msgprobe_check_duration_seconds_count", http) == 0.0
    assert scenario.get_sample_value(bucket, {**http, "le": "+Inf"}) == 0.0


def test_checks_total_uses_the_closed_failure_vocabulary(scenario: CollectorRegistry) -> None:
    def total(service: str, check: str, failure: str) -> float | None:
        return scenario.get_sample_value(
            "msgprobe_checks_total", {"service": service, "check": check, "failure": failure}
        )

    assert total("wechat", "tls:443", "connection_reset") == 3.0
    assert total("wechat", "tls:443", "none") == 9.0
    assert total("zello", "tcp:443", "generic_timeout_error") == 2.0
    assert total("zello", "dns", "unknown_failure") == 1.0
    assert total("bbm", "dns", "none") == 0.0  # initialised from the config
    allowed = {"none", *(f.value for f in Failure)}
    text = generate_latest(scenario).decode()
    for family in text_string_to_metric_families(text):
        if family.name == "msgprobe_checks":
            assert {s.labels["failure"] for s in family.samples} <= allowed
    assert "10.1.2.3" not in text


def test_cycle_and_daemon_metrics(scenario: CollectorRegistry) -> None:
    assert scenario.get_sample_value("msgprobe_cycle_duration_seconds") == 3.0
    assert scenario.get_sample_value("msgprobe_cycles_total") == 12.0
    assert scenario.get_sample_value("msgprobe_last_cycle_timestamp_seconds") == NOW - 2.5
    assert scenario.get_sample_value("msgprobe_vantage_online") == 1.0
    assert scenario.get_sample_value("msgprobe_build_info", {"version": "0.1.0"}) == 1.0
    info = {"probe_id": "vol-7", "country": "ZZ", "asn": "AS64500"}
    assert scenario.get_sample_value("msgprobe_vantage_info", info) == 1.0
    assert scenario.get_sample_value("msgprobe_start_time_seconds") == STARTED


def test_reload_metrics(scenario: CollectorRegistry) -> None:
    assert scenario.get_sample_value("msgprobe_config_last_reload_successful") == 0.0
    assert scenario.get_sample_value("msgprobe_config_last_reload_success_timestamp_seconds") == NOW - 1000
    assert scenario.get_sample_value("msgprobe_config_reloads_total", {"result": "success"}) == 2.0
    assert scenario.get_sample_value("msgprobe_config_reloads_total", {"result": "failure"}) == 1.0


def test_empty_snapshot_initialises_what_it_can_and_omits_the_unknown() -> None:
    registry = registry_for(snapshots.empty())
    assert registry.get_sample_value("msgprobe_cycles_total") == 0.0
    assert registry.get_sample_value("msgprobe_vantage_online") is None
    assert registry.get_sample_value("msgprobe_cycle_duration_seconds") is None
    assert registry.get_sample_value("msgprobe_last_cycle_timestamp_seconds") is None
    assert registry.get_sample_value("msgprobe_config_last_reload_successful") == 1.0
    # The start is the first successful load.
    assert registry.get_sample_value("msgprobe_config_last_reload_success_timestamp_seconds") == STARTED
    assert registry.get_sample_value("msgprobe_config_reloads_total", {"result": "success"}) == 0.0
    assert registry.get_sample_value("msgprobe_config_reloads_total", {"result": "failure"}) == 0.0


def test_vantage_offline_is_zero() -> None:
    registry = registry_for(dataclasses.replace(snapshots.scenario(), vantage_online=False))
    assert registry.get_sample_value("msgprobe_vantage_online") == 0.0


def test_every_scrape_reads_the_newest_snapshot() -> None:
    current = [snapshots.empty()]
    registry = CollectorRegistry()
    register(registry, lambda: current[0])
    assert registry.get_sample_value("msgprobe_cycles_total") == 0.0
    current[0] = snapshots.scenario()
    assert registry.get_sample_value("msgprobe_cycles_total") == 12.0
    # A second registry is independent: no module-level state.
    other = registry_for(snapshots.empty())
    assert other.get_sample_value("msgprobe_cycles_total") == 0.0


def test_describe_names_every_family_so_duplicates_are_refused() -> None:
    registry = CollectorRegistry(auto_describe=True)
    register(registry, snapshots.empty)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        register(registry, snapshots.empty)


def test_every_family_has_help_and_only_declared_names() -> None:
    # The packet witnesses' two families exist only where a raw check ran: packets() adds them.
    text = generate_latest(registry_for(snapshots.packets())).decode()
    declared = {spec.name for spec in METRICS}
    helps = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    assert helps == declared  # the scenario exercises every family
    for spec in METRICS:
        assert spec.help.strip() and spec.name.startswith("msgprobe_")


def test_control_up_per_peer_asked_and_absent_before() -> None:
    r = registry_for(snapshots.scenario())
    assert r.get_sample_value("msgprobe_control_up", {"peer": "control-a.example:9491"}) == 1.0
    assert r.get_sample_value("msgprobe_control_up", {"peer": "control-b.example:9491"}) == 0.0
    assert registry_for(snapshots.empty()).get_sample_value("msgprobe_control_up", {"peer": "x"}) is None
