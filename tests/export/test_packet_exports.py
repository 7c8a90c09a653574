"""Packet witnesses in every export: ``msgprobe_injection_detected`` and
``msgprobe_censor_hop`` on /metrics, ``packets`` per endpoint in /status,
and one line per endpoint on the status page (``snapshots.packets()``)."""

from __future__ import annotations

import dataclasses
import json
import re

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from probe.analysis.censor_hop import CensorHop
from probe.export.metrics import METRICS, SnapshotCollector
from probe.export.page_endpoint import endpoint_row
from probe.export.records import status_record
from probe.export.statuspage import render_status_page
from probe.state import CensorTrace, Snapshot
from tests.export import snapshots
from tests.export.snapshots import NOW

WECHAT = {"service": "wechat", "endpoint": "short.weixin.qq.com"}


def registry_for(snapshot: Snapshot) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SnapshotCollector(lambda: snapshot))
    return registry


def samples(snapshot: Snapshot, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(registry_for(snapshot)).decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_injection_detected_only_for_the_kinds_a_raw_check_ran_for() -> None:
    got = samples(snapshots.packets(), "msgprobe_injection_detected")
    assert got == {
        key(**WECHAT, kind="dns"): 0.0,
        key(**WECHAT, kind="reset"): 1.0,
        key(service="zello", endpoint="zello.io", kind="dns"): 0.0,
    }


def test_censor_hop_is_the_hop_or_zero_and_absent_until_a_traceroute_ran() -> None:
    got = samples(snapshots.packets(), "msgprobe_censor_hop")
    assert got == {key(**WECHAT): 3.0, key(service="line", endpoint="line.me"): 0.0}


def test_without_raw_checks_neither_family_is_exposed() -> None:
    text = generate_latest(registry_for(snapshots.scenario())).decode()
    assert "msgprobe_injection_detected" not in text and "msgprobe_censor_hop" not in text


def test_both_families_are_gauges_in_the_table_without_address_labels() -> None:
    specs = {spec.name: spec for spec in METRICS}
    assert specs["msgprobe_injection_detected"].labels == ("service", "endpoint", "kind")
    assert specs["msgprobe_censor_hop"].labels == ("service", "endpoint")
    text = generate_latest(registry_for(snapshots.packets())).decode()
    assert "# TYPE msgprobe_injection_detected gauge" in text
    assert "# TYPE msgprobe_censor_hop gauge" in text
    # The routers are evidence for /status, never label values (cardinality, and no path leaks).
    assert "10.79." not in text


def test_status_record_carries_the_packet_witnesses() -> None:
    record = status_record(snapshots.packets())
    endpoints = {e["endpoint"]: e for s in record["services"] for e in s["endpoints"]}
    assert endpoints["short.weixin.qq.com"]["packets"] == {
        "injected": ["reset"],
        "checked": ["dns", "reset"],
        "censor": {
            "hop": 3,
            "interference": "reset",
            "last_router": "10.79.2.2",
            "router": "10.79.3.1",
            "at": "2024-05-01T10:00:00.000Z",
        },
    }
    assert endpoints["line.me"]["packets"]["censor"] == {
        "hop": None,
        "interference": None,
        "last_router": None,
        "router": None,
        "at": "2024-04-30T11:00:00.000Z",
    }
    assert endpoints["zello.io"]["packets"] == {"injected": [], "checked": ["dns"], "censor": None}
    assert endpoints["bbm.example"]["packets"] == {"injected": [], "checked": [], "censor": None}
    json.dumps(record)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_status_page_has_one_packet_line_where_there_is_evidence() -> None:
    page = render_status_page(snapshots.packets(), now=NOW)
    assert page.count('class="packets"') == 2  # wechat's and line.me's; zello's clean check says nothing
    shown = text(page)
    assert "packets reset forged · censor at hop 3, after router 10.79.2.2 (reset) traced 10:00" in shown
    assert "packets censor traceroute: no interfering hop traced 04-30 11:00" in shown
    assert 'class="packets"' not in render_status_page(snapshots.scenario(), now=NOW)


def test_status_page_escapes_what_a_packet_says() -> None:
    # Addresses come from parsed packets, but the page escapes them like everything else.
    hostile = '10.79.2.2"><script>alert(1)</script>'
    (base,) = [e for e in snapshots.packets().endpoints if e.endpoint == "short.weixin.qq.com"]
    e = dataclasses.replace(
        base,
        packets_injected=("dns", "reset"),
        censor=CensorTrace(NOW - 60, CensorHop(4, "drop", hostile, None)),
    )
    row = endpoint_row(e, NOW, confirm=1, links=False)
    assert "<script>" not in row
    assert (
        "DNS answer forged · reset forged · censor at hop 4, after router 10.79.2.2&quot;&gt;&lt;script&gt;"
        in row
    )
    no_router = dataclasses.replace(e, censor=CensorTrace(NOW - 60, CensorHop(1, "drop", None, None)))
    assert "censor at hop 1 (drop)" in text(endpoint_row(no_router, NOW, confirm=1, links=False))


def test_raw_ready_says_whether_the_configured_raw_checks_can_run() -> None:
    off = dataclasses.replace(snapshots.packets(), raw_enabled=False)
    assert samples(off, "msgprobe_raw_ready") == {}
    assert status_record(off)["raw"] is None
    ready = dataclasses.replace(off, raw_enabled=True)
    assert samples(ready, "msgprobe_raw_ready") == {(): 1.0}
    assert status_record(ready)["raw"] == {"ready": True, "problem": None}
    blind = dataclasses.replace(off, raw_enabled=True, raw_problem="needs NET_RAW")
    assert samples(blind, "msgprobe_raw_ready") == {(): 0.0}
    assert status_record(blind)["raw"] == {"ready": False, "problem": "needs NET_RAW"}


def test_the_page_says_when_the_packet_checks_cannot_run() -> None:
    blind = dataclasses.replace(snapshots.packets(), raw_problem="needs NET_RAW")
    page = render_status_page(blind, now=NOW)
    assert "packet checks" in page and "needs NET_RAW: the other checks run" in page
    assert "needs NET_RAW" not in render_status_page(dataclasses.replace(blind, raw_enabled=False), now=NOW)
