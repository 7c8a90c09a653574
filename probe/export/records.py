"""JSON records of results: one renderer for ``msgprobe once --format json``,
``/status`` and the evidence log, so the three never drift apart.

Everything here is a pure function of plain data. A record holds what the
observations hold and nothing more: no local socket names, no raw response
bodies (a body is reduced to its length, title and SHA-256, because a
blockpage can echo the volunteer's address and is not ours to republish).
Floats are seconds rounded to the millisecond; vocabulary values are their
strings.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from probe.model import (
    CheckResult,
    EndpointObservations,
    EndpointResult,
    Finding,
    HttpObservation,
    TraceEvent,
)
from probe.state import CensorTrace, FailureRecord, Snapshot, TrackedEndpoint
from probe.vocab import Regime, Status

# 2 (December 2026): each result carries its trace (every operation with its
# name, failure, timing and bytes) and its findings with their witnesses.
SCHEMA = 2
Record = dict[str, Any]


def iso_time(t: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds, ``2024-05-01T12:00:00.000Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_or_none(t: float | None) -> str | None:
    return None if t is None else iso_time(t)


def _plain(value: object) -> Any:
    """Observation data as JSON values: enums by value, floats to the ms, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, HttpObservation):
        return _http(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    # Nothing else is expected on an observation; a repr is safer than a crash in a months-long run.
    return repr(value)


def _http(h: HttpObservation) -> Record:
    record = {f.name: _plain(getattr(h, f.name)) for f in dataclasses.fields(h) if f.name != "body"}
    # The captured (capped) body by digest only; null when nothing was captured.
    record["body_sha256"] = hashlib.sha256(h.body).hexdigest() if h.body else None
    return record


def observations_record(obs: EndpointObservations) -> Record:
    record: Record = {
        f.name: _plain(getattr(obs, f.name)) for f in dataclasses.fields(obs) if f.name != "trace"
    }
    record["asns"] = {address: asn for address, asn in obs.asns}
    return record


def trace_record(event: TraceEvent) -> Record:
    record: Record = _plain(event)
    # Samples as [t, sent, received] triples: a long transfer keeps hundreds.
    record["samples"] = [[round(s.t, 4), s.sent, s.received] for s in event.samples]
    return record


def finding_record(f: Finding) -> Record:
    v = f.verdict
    return {
        "step": f.step,
        "status": v.status.value,
        "method": v.method.value if v.method is not None else None,
        "failure": v.failure,
        "address": v.address,
        "summary": v.evidence,
        "witnesses": [{"kind": w.kind, "detail": w.detail} for w in v.witnesses],
    }


def check_record(c: CheckResult) -> Record:
    record: Record = {
        "check": c.check,
        "ok": c.ok,
        "failure": c.failure,
        "duration_s": round(c.duration_s, 3),
        "address": c.address,
    }
    for key, value in c.detail.items():
        # The fixed columns win: a detail may add facts, never rename one.
        record.setdefault(key, _plain(value))
    return record


def result_record(r: EndpointResult) -> Record:
    v = r.verdict
    return {
        "service": r.service,
        "endpoint": r.endpoint,
        "status": v.status.value,
        "method": v.method.value if v.method is not None and v.status is Status.BLOCKED else None,
        "failure": v.failure,
        "evidence": {
            "failure": v.failure,
            "fingerprint": v.fingerprint,
            "address": v.address,
            "summary": v.evidence,
            "witnesses": [{"kind": w.kind, "detail": w.detail} for w in v.witnesses],
        },
        "attempts": r.attempts,
        "checks": [check_record(c) for c in r.checks],
        "findings": [finding_record(f) for f in r.findings],
        "trace": [trace_record(e) for e in r.observations.trace],
        "observations": observations_record(r.observations),
    }


def cycle_record(
    *,
    probe: Mapping[str, str],
    started: str | float,
    finished: str | float,
    vantage_online: bool,
    results: Sequence[Record],
    regime: Regime | None = None,
    canaries: Mapping[str, bool] | None = None,
) -> Record:
    """The envelope of ``msgprobe once --format json``; times as ISO strings or unix seconds.

    ``regime`` defaults to what ``vantage_online`` says (online or offline);
    ``canaries`` are the domestic canaries measured, each with whether its
    TLS handshake verified."""
    if regime is None:
        regime = Regime.ONLINE if vantage_online else Regime.OFFLINE
    return {
        "schema": SCHEMA,
        "probe": {key: probe.get(key, "") for key in ("id", "country", "asn", "version")},
        "started": started if isinstance(started, str) else iso_time(started),
        "finished": finished if isinstance(finished, str) else iso_time(finished),
        "vantage_online": vantage_online,
        "regime": regime.value,
        "canaries": dict(canaries or {}),
        "results": list(results),
    }


def failure_record(f: FailureRecord) -> Record:
    return {
        "time": iso_time(f.time),
        "status": f.status.value,
        "method": f.method.value if f.method is not None else None,
        "failure": f.failure,
        "evidence": f.evidence,
    }


def censor_record(c: CensorTrace) -> Record:
    """The last censor traceroute; a walk that found no hop has every field null but ``at``."""
    hop = c.hop
    return {
        "hop": hop.hop if hop is not None else None,
        "interference": hop.interference if hop is not None else None,
        "last_router": hop.last_router if hop is not None else None,
        "router": hop.router if hop is not None else None,
        "at": iso_time(c.at),
    }


def packets_record(e: TrackedEndpoint) -> Record:
    """Packet witnesses: the latest result's injection kinds, and the last traceroute (null: none ran)."""
    return {
        "injected": list(e.packets_injected),
        "checked": list(e.packets_checked),
        "censor": censor_record(e.censor) if e.censor is not None else None,
    }


def endpoint_record(e: TrackedEndpoint) -> Record:
    return {
        "endpoint": e.endpoint,
        "state": e.state.value,
        "status": e.status.value,
        "method": e.method.value if e.method is not None and e.status is Status.BLOCKED else None,
        "since": _iso_or_none(e.since),
        "latest": result_record(e.latest) if e.latest is not None else None,
        # Newest first: the one a reader wants is at the top.
        "recent_failures": [failure_record(f) for f in reversed(e.recent_failures)],
        # A change seen but not confirmed yet (null: none), which the page shows as "confirming".
        "pending": None
        if e.pending is None
        else {
            "status": e.pending.value,
            "method": e.pending_method.value if e.pending_method is not None else None,
            "cycles": e.pending_cycles,
        },
        "packets": packets_record(e),
    }


def status_record(s: Snapshot) -> Record:
    """The body of ``GET /status``: the confirmed state and the latest evidence, per service."""
    by_service: dict[str, list[TrackedEndpoint]] = {}
    for e in s.endpoints:
        by_service.setdefault(e.service, []).append(e)
    return {
        "schema": SCHEMA,
        "probe": {"id": s.probe_id, "country": s.country, "asn": s.asn, "version": s.version},
        "started": iso_time(s.started),
        "ready": s.ready,
        "cycles": s.cycles,
        "confirm": s.confirm,
        "next_cycle": _iso_or_none(s.next_cycle),
        "vantage_online": s.vantage_online,
        "regime": s.regime.value if s.regime is not None else None,
        "canaries": dict(s.canaries),
        "last_cycle": {
            "started": _iso_or_none(s.last_cycle_start),
            "finished": _iso_or_none(s.last_cycle_end),
            "duration_s": None if s.last_cycle_duration is None else round(s.last_cycle_duration, 3),
        },
        # Raw-packet checks (null: none configured): can they run here, and if not, why.
        "raw": {"ready": s.raw_problem is None, "problem": s.raw_problem} if s.raw_enabled else None,
        # The evidence log's health and where its records are served (null: no log).
        "evidence": None
        if s.evidence is None
        else {
            "href": "/evidence",
            "records": s.evidence.records,
            "write_errors": s.evidence.write_errors,
            "dropped": s.evidence.dropped,
            "bytes": s.evidence.bytes,
            "last_error": s.evidence.last_error,
        },
        "config": {
            "last_reload_successful": s.reload_ok,
            "last_reload_success": _iso_or_none(s.reload_time),
            "reloads": {result: s.reloads.get(result, 0) for result in ("success", "failure")},
        },
        "services": [
            {
                "service": view.name,
                "title": view.title,
                "status": view.status.value,
                "blocked": view.blocked,
                "endpoints": [endpoint_record(e) for e in by_service.get(view.name, ())],
            }
            for view in s.services
        ],
    }
