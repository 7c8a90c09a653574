"""One vantage's series as the watchdogs' store receives them, from the
daemon's own exporter, and a fast way to make a thousand vantages of them.

The series are the real exposition of the built-in catalog
(probe.export.metrics.render_families on a fresh Tracker), plus the series
that appear once results exist, counted as tests/deploy/test_series_budget.py
counts them (a check's success, an endpoint's last change and goodput, the
regime state set, the cycle's gauges), plus `up`; then labelled as the
volunteer's agent labels them: the external labels vantage, country, asn and
the target's job="msgprobe", instance="msgprobe" (deploy/volunteer/prometheus-agent.yml).

A vantage's WriteRequest is encoded once as a template whose identity and
per-round values are fixed-width placeholders; a vantage and a round are then
a few bytes.replace calls (C speed) instead of re-encoding ~6,000 series in
Python, so the generator keeps ahead of the store on the same two cores.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bench.fleet.wire import label as encode_label
from bench.fleet.wire import length_delimited, varint

# Fixed width, so a replacement never changes a protobuf length.
VANTAGE_WIDTH = 10  # "fleet-0042"
ASN_WIDTH = 10  # 32-bit private-use ASNs (RFC 6996): 4200000000-4294967294
VANTAGE_HOLE = "@" * VANTAGE_WIDTH
COUNTRY_HOLE = "@@"
ASN_HOLE = "#" * ASN_WIDTH
# A timestamp far from any real one (2039), 6 varint bytes like every ms time until 2039.
TIME_HOLE = varint(2**41 - 4321)
# Counter values per round, as NaNs with payloads nothing else carries.
CYCLES_HOLE = struct.pack("<Q", 0x7FF8_0000_DEAD_0001)
SECONDS_HOLE = struct.pack("<Q", 0x7FF8_0000_DEAD_0002)
CHECK_SECONDS = 0.05  # every simulated check takes this long (histogram sums)
BLOCK_METHOD = "tls.reset"


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]  # without the vantage's identity
    value: float | bytes  # a constant, or CYCLES_HOLE / SECONDS_HOLE


def _catalog_series(censored: frozenset[str]) -> list[Series]:
    """The built-in catalog's series at one vantage: all ok, or the ``censored``
    services confirmed blocked by tls.reset at every endpoint."""
    from probe.config.load import load_config
    from probe.export.metrics import render_families
    from probe.runner.tracker import Tracker
    from probe.vocab import Regime

    config = load_config(None)
    snapshot = Tracker(config, started=0.0).snapshot
    out: list[Series] = []
    for family in render_families(snapshot):
        for s in family.samples:
            labels = dict(s.labels)
            out.append(Series({"__name__": s.name, **labels}, _steady_value(s.name, labels, censored)))
    for e in snapshot.endpoints:
        where = {"service": e.service, "endpoint": e.endpoint}
        blocked = e.service in censored
        for check in e.checks:
            ok = not (blocked and check.startswith(("tls", "http")))
            out.append(Series({"__name__": "msgprobe_check_success", **where, "check": check}, float(ok)))
        out.append(Series({"__name__": "msgprobe_endpoint_last_change_timestamp_seconds", **where}, 1.7e9))
        out.append(Series({"__name__": "msgprobe_endpoint_goodput_bytes_per_second", **where}, 250_000.0))
    for regime in Regime:
        out.append(
            Series(
                {"__name__": "msgprobe_vantage_regime", "regime": regime.value},
                float(regime.value == "online"),
            )
        )
    for name, value in (
        ("msgprobe_cycle_duration_seconds", 41.0),
        ("msgprobe_last_cycle_timestamp_seconds", 1.7e9),
        ("msgprobe_vantage_online", 1.0),
        ("msgprobe_throttle_budget_used_bytes", 1.2e6),
        ("msgprobe_throttle_budget_bytes", 5e6),
        ("up", 1.0),
    ):
        out.append(Series({"__name__": name}, value))
    return out


def _steady_value(name: str, labels: dict[str, str], censored: frozenset[str]) -> float | bytes:
    blocked = labels.get("service") in censored
    if name in ("msgprobe_endpoint_status", "msgprobe_endpoint_raw_status", "msgprobe_service_status"):
        return float(labels["status"] == ("blocked" if blocked else "ok"))
    if name == "msgprobe_service_blocked":
        return float(blocked)
    if name == "msgprobe_endpoint_blocked":
        return float(blocked and labels["method"] == BLOCK_METHOD)
    if name in ("msgprobe_cycles_total", "msgprobe_check_duration_seconds_count"):
        return CYCLES_HOLE
    if name == "msgprobe_checks_total":
        return CYCLES_HOLE if labels.get("failure") in (None, "", "none") else 0.0
    if name == "msgprobe_check_duration_seconds_bucket":
        return CYCLES_HOLE if float(labels["le"]) >= CHECK_SECONDS else 0.0
    if name == "msgprobe_check_duration_seconds_sum":
        return SECONDS_HOLE
    if name == "msgprobe_build_info" or name == "msgprobe_vantage_info":
        return 1.0
    return 1.0 if "successful" in name else 0.0 if not name.endswith("_seconds") else 1.7e9


@dataclass(frozen=True)
class Template:
    """A vantage's WriteRequest for one scrape, with holes for identity and round."""

    body: bytes
    series: int

    def for_vantage(self, vantage: str, country: str, asn: str) -> bytes:
        assert len(vantage) == VANTAGE_WIDTH and len(country) == 2 and len(asn) == ASN_WIDTH
        return (
            self.body.replace(_hole("vantage", VANTAGE_HOLE), _hole("vantage", vantage))
            .replace(_hole("country", COUNTRY_HOLE), _hole("country", country))
            .replace(_hole("asn", ASN_HOLE), _hole("asn", asn))
        )


def for_round(vantage_body: bytes, timestamp_ms: int, cycles: float) -> bytes:
    """One round's request from a vantage's body: the time and the counters filled in."""
    ts = varint(timestamp_ms)
    assert len(ts) == len(TIME_HOLE), "timestamps between 2004 and 2039 only"
    return (
        vantage_body.replace(TIME_HOLE, ts)
        .replace(CYCLES_HOLE, struct.pack("<d", cycles))
        .replace(SECONDS_HOLE, struct.pack("<d", cycles * CHECK_SECONDS))
    )


def _hole(name: str, value: str) -> bytes:
    # The whole Label message, name included: a hole can only match where it was put.
    return encode_label(name, value)


def template(censored: frozenset[str] = frozenset()) -> Template:
    identity = {"vantage": VANTAGE_HOLE, "country": COUNTRY_HOLE, "asn": ASN_HOLE}
    target = {"job": "msgprobe", "instance": "msgprobe"}
    parts = []
    series = _catalog_series(censored)
    for s in series:
        labels = {**s.labels, **target, **identity}
        value = s.value if isinstance(s.value, bytes) else struct.pack("<d", s.value)
        body = b"".join(encode_label(k, labels[k]) for k in sorted(labels))
        body += length_delimited(b"\x12", b"\x09" + value + b"\x10" + TIME_HOLE)
        parts.append(length_delimited(b"\x0a", body))
    t = Template(b"".join(parts), len(series))
    # Every hole is where it was put and nowhere else, or a replace would corrupt the request.
    for hole, want in ((TIME_HOLE, t.series), (_hole("vantage", VANTAGE_HOLE), t.series)):
        assert t.body.count(hole) == want, f"{hole!r}: {t.body.count(hole)} places for {want} series"
    return t


def services() -> list[str]:
    from probe.config.load import load_config

    return [s.name for s in load_config(None).services]
