"""JSON records: the shape DESIGN.md promises, and nothing the observations do not hold."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

from probe.export.records import cycle_record, endpoint_record, iso_time, result_record, status_record
from probe.model import EndpointResult, HttpObservation
from probe.vocab import Method, Status
from tests.export import snapshots
from tests.export.snapshots import BLOCKPAGE_BODY, NOW


def _field_names(record: object) -> set[str]:
    if isinstance(record, dict):
        return set(record) | {name for value in record.values() for name in _field_names(value)}
    if isinstance(record, list):
        return {name for value in record for name in _field_names(value)}
    return set()


def test_blocked_result_record_has_method_evidence_and_checks() -> None:
    r = snapshots.tls_reset_result("wechat", "short.weixin.qq.com", "203.0.113.10")
    record = result_record(r)
    assert record["service"] == "wechat"
    assert record["endpoint"] == "short.weixin.qq.com"
    assert record["status"] == "blocked"
    assert record["method"] == "tls.reset"
    assert record["failure"] == "connection_reset"
    assert record["evidence"] == {
        "failure": "connection_reset",
        "fingerprint": None,
        "address": "203.0.113.10",
        "summary": r.verdict.evidence,
        "witnesses": [{"kind": "decoy", "detail": "the same handshake with SNI example.com completes"}],
    }
    assert record["attempts"] == 1
    assert [c["check"] for c in record["checks"]] == ["dns", "tcp:443", "tls:443"]
    dns, tcp, tls = record["checks"]
    # duration rounded to the millisecond, detail flattened into the row
    assert dns == {
        "check": "dns",
        "ok": True,
        "failure": None,
        "duration_s": 0.012,
        "address": None,
        "resolver": "127.0.0.1:5353",
        "addresses": ["203.0.113.10"],
    }
    assert tls["ok"] is False and tls["failure"] == "connection_reset" and tls["sni"] == "short.weixin.qq.com"
    assert tcp["address"] == "203.0.113.10"
    json.dumps(record)  # plain JSON all the way down


def test_observations_keep_every_field_as_plain_json() -> None:
    r = snapshots.tls_reset_result("wechat", "short.weixin.qq.com", "203.0.113.10")
    obs = result_record(r)["observations"]
    assert obs["dns"][0]["failure"] is None
    assert obs["dns"][0]["duration"] == 0.012
    assert set(obs["dns"][0]) == {f.name for f in dataclasses.fields(r.observations.dns[0])}
    real, decoy = obs["tls"]
    assert real["failure"] == "connection_reset" and real["error"] == "reset by peer"
    assert decoy["decoy"] is True and decoy["certificate"]["names"] == ["example.com"]
    assert obs["asns"] == {"203.0.113.10": 64500}
    assert obs["errors"] == []


def test_http_body_is_exported_as_digest_not_content() -> None:
    r = snapshots.blockpage_result("line", "line.me", "203.0.113.20")
    record = result_record(r)
    http = record["observations"]["http"][0]
    assert "body" not in http
    assert http["body_sha256"] == hashlib.sha256(BLOCKPAGE_BODY).hexdigest()
    assert http["body_length"] == len(BLOCKPAGE_BODY)
    assert http["body_truncated"] is False
    assert http["title"] == "Access denied"
    assert http["headers"] == [["content-type", "text/html"]]
    expected = {f.name for f in dataclasses.fields(HttpObservation)} - {"body"} | {"body_sha256"}
    assert set(http) == expected
    assert "This site is blocked" not in json.dumps(record)
    assert record["method"] == "http.blockpage"
    assert record["evidence"]["fingerprint"] == "test-blockpage"


def test_method_is_null_unless_blocked() -> None:
    r = snapshots.tls_reset_result("wechat", "h", "203.0.113.10")
    odd = dataclasses.replace(r, verdict=dataclasses.replace(r.verdict, status=Status.UNREACHABLE))
    assert result_record(odd)["method"] is None
    assert result_record(r)["method"] == Method.TLS_RESET.value


def test_cycle_record_envelope() -> None:
    results = [result_record(snapshots.ok_result("wechat", "a.example", "203.0.113.1"))]
    record = cycle_record(
        probe={"id": "vol-7", "country": "ZZ", "asn": "AS64500", "version": "0.1.0"},
        started=NOW,
        finished="2024-05-01T12:00:03.000Z",
        vantage_online=True,
        results=results,
    )
    assert record == {
        "schema": 2,
        "probe": {"id": "vol-7", "country": "ZZ", "asn": "AS64500", "version": "0.1.0"},
        "started": "2024-05-01T12:00:00.000Z",
        "finished": "2024-05-01T12:00:03.000Z",
        "vantage_online": True,
        "regime": "online",
        "canaries": {},
        "results": results,
    }
    assert iso_time(NOW + 0.25) == "2024-05-01T12:00:00.250Z"


def test_status_record_groups_endpoints_by_service() -> None:
    record = status_record(snapshots.scenario())
    assert record["probe"] == {"id": "vol-7", "country": "ZZ", "asn": "AS64500", "version": "0.1.0"}
    assert record["ready"] is True and record["cycles"] == 12 and record["vantage_online"] is True
    assert record["last_cycle"] == {
        "started": "2024-05-01T11:59:54.500Z",
        "finished": "2024-05-01T11:59:57.500Z",
        "duration_s": 3.0,
    }
    assert record["config"]["last_reload_successful"] is False
    assert record["config"]["reloads"] == {"success": 2, "failure": 1}
    services = {s["service"]: s for s in record["services"]}
    assert list(services) == ["wechat", "line", "zello", "bbm"]
    assert services["wechat"]["blocked"] is True and services["zello"]["status"] == "unreachable"
    short = services["wechat"]["endpoints"][0]
    assert short["status"] == "blocked" and short["method"] == "tls.reset"
    assert short["since"] == "2024-05-01T11:50:00.000Z"
    assert short["latest"]["evidence"]["address"] == "203.0.113.10"
    assert [f["evidence"] for f in short["recent_failures"]] == ["second reset", "first reset"]
    unmeasured = services["line"]["endpoints"][2]
    assert unmeasured == {
        "endpoint": "obs.line-scdn.net",
        "state": "legacy",
        "status": "unknown",
        "method": None,
        "since": None,
        "latest": None,
        "recent_failures": [],
        "pending": None,
        "packets": {"injected": [], "checked": [], "censor": None},
    }
    assert record["confirm"] == snapshots.scenario().confirm
    json.dumps(record)


def test_status_record_shows_a_change_being_confirmed() -> None:
    endpoint = dataclasses.replace(
        snapshots.scenario().endpoints[0],
        pending=Status.BLOCKED,
        pending_method=Method.TLS_RESET,
        pending_cycles=1,
    )
    assert endpoint_record(endpoint)["pending"] == {"status": "blocked", "method": "tls.reset", "cycles": 1}


def test_status_record_before_first_cycle() -> None:
    record = status_record(snapshots.empty())
    assert record["ready"] is False and record["vantage_online"] is None
    assert record["last_cycle"] == {"started": None, "finished": None, "duration_s": None}
    assert record["services"] == []


def test_privacy_records_add_no_local_address_or_path() -> None:
    s = snapshots.scenario()
    text = json.dumps(status_record(s))
    names = _field_names(status_record(s))
    for forbidden in (
        "local_address",
        "local",
        "sockname",
        "client_address",
        "source_address",
        "config_path",
    ):
        assert forbidden not in names
    assert s.config_path not in text
    # Only the addresses that were measured appear, never any other.
    measured = {"203.0.113.10", "203.0.113.11", "203.0.113.20", "198.51.100.7", "198.51.100.9"}
    seen = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text))
    assert seen <= measured | {"127.0.0.1"}  # 127.0.0.1:5353 is the configured resolver


def test_unexpected_values_do_not_break_a_record() -> None:
    r = snapshots.ok_result("wechat", "a.example", "203.0.113.1")
    row = dataclasses.replace(r.checks[0], detail={"ok": "overridden?", "pair": ("a", 1.23456), "n": {1: 2}})
    record = result_record(EndpointResult(r.service, r.endpoint, r.verdict, (row,), r.observations))
    assert record["checks"][0]["ok"] is True  # the fixed column wins
    assert record["checks"][0]["pair"] == ["a", 1.235]
    assert record["checks"][0]["n"] == {"1": 2}
