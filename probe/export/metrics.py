"""``/metrics``: a custom Collector that renders the newest ``Snapshot``.

Every scrape builds fresh families from the snapshot the runner published
last, so a scrape never measures, never blocks on a cycle and always shows
one consistent cycle. Nothing lives at module level but the metric table.

Label values come only from the config (service, endpoint, check labels)
or from the closed vocabularies (status, method, failure), and known label
sets are written out with zeros, so a series never appears out of nowhere
and an alert on ``== 1`` has a ``0`` to compare with before the block.
Metric names are final: alert rules and dashboards are written against them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from probe.analysis.goodput import best_goodput
from probe.state import DURATION_BUCKETS, Histogram, Snapshot
from probe.vocab import Method, Regime, Status, failure_label

_STATUSES = tuple((status, status.value) for status in Status)
# The client's own `le` formatting (Go's float syntax), so buckets read as its histograms do.
_go_float = cast(Callable[[float], str], floatToGoString)
_BUCKET_LABELS = (*(_go_float(b) for b in DURATION_BUCKETS), "+Inf")
_RELOAD_RESULTS = ("success", "failure")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # as exposed (counters with _total, info metrics with _info)
    kind: str  # "gauge" | "counter" | "histogram" | "info"
    help: str
    labels: tuple[str, ...] = ()


# Every metric, declared once: names, types, help text and label names.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "msgprobe_endpoint_status",
        "gauge",
        "Confirmed status of the endpoint (state set: 1 on the current status, 0 on the others).",
        ("service", "endpoint", "status"),
    ),
    MetricSpec(
        "msgprobe_endpoint_raw_status",
        "gauge",
        "Status of the endpoint in the latest cycle, before confirmation (state set; all 0 before a result).",
        ("service", "endpoint", "status"),
    ),
    MetricSpec(
        "msgprobe_endpoint_blocked",
        "gauge",
        "1 while the endpoint is confirmed blocked by this method, 0 otherwise.",
        ("service", "endpoint", "method"),
    ),
    MetricSpec(
        "msgprobe_endpoint_last_change_timestamp_seconds",
        "gauge",
        "Unix time of the endpoint's last confirmed status change.",
        ("service", "endpoint"),
    ),
    MetricSpec(
        "msgprobe_service_blocked",
        "gauge",
        "1 when any active endpoint of the service is confirmed blocked.",
        ("service",),
    ),
    MetricSpec(
        "msgprobe_service_status",
        "gauge",
        "Aggregate confirmed status of the service (state set).",
        ("service", "status"),
    ),
    MetricSpec(
        "msgprobe_check_success",
        "gauge",
        "1 if every run of this check succeeded in the latest cycle; 0 if one failed or it did not run.",
        ("service", "endpoint", "check"),
    ),
    MetricSpec(
        "msgprobe_check_duration_seconds",
        "histogram",
        "Duration of checks, per service and check.",
        ("service", "check"),
    ),
    MetricSpec(
        "msgprobe_checks_total",
        "counter",
        "Checks run, by failure (closed OONI vocabulary, or none).",
        ("service", "check", "failure"),
    ),
    MetricSpec(
        "msgprobe_endpoint_goodput_bytes_per_second",
        "gauge",
        "Best goodput of the endpoint's TLS/HTTP steps in the latest cycle (0: none had a rate).",
        ("service", "endpoint"),
    ),
    MetricSpec(
        "msgprobe_injection_detected",
        "gauge",
        "1 if the latest result's packets show this kind (dns, reset) injected, 0 if a raw check"
        " ran for it and showed none; absent when none ran (no NET_RAW, raw off).",
        ("service", "endpoint", "kind"),
    ),
    MetricSpec(
        "msgprobe_censor_hop",
        "gauge",
        "IP TTL at which the last censor traceroute met interference (0: it found no such hop);"
        " absent until one ran. At most one a day per blocked endpoint: the router is in /status.",
        ("service", "endpoint"),
    ),
    MetricSpec(
        "msgprobe_raw_ready",
        "gauge",
        "1 if the configured raw-packet checks can run here, 0 if not (no NET_RAW, scapy or"
        " libpcap: /status says which); absent when none is configured.",
    ),
    MetricSpec(
        "msgprobe_throttle_budget_used_bytes",
        "gauge",
        "Bytes of today's (UTC) throttle/freeze byte budget spent or reserved.",
    ),
    MetricSpec("msgprobe_throttle_budget_bytes", "gauge", "The daily byte budget (throttle.daily_bytes)."),
    MetricSpec(
        "msgprobe_evidence_records_total", "counter", "Evidence records written since start (absent: no log)."
    ),
    MetricSpec(
        "msgprobe_evidence_write_errors_total",
        "counter",
        "Evidence writes that failed (a full disk): the records were dropped, measuring went on.",
    ),
    MetricSpec(
        "msgprobe_evidence_dropped_records_total", "counter", "Evidence records lost to failed writes."
    ),
    MetricSpec("msgprobe_evidence_bytes", "gauge", "Bytes the evidence log holds on disk, every generation."),
    MetricSpec("msgprobe_cycle_duration_seconds", "gauge", "Wall time of the last measurement cycle."),
    MetricSpec("msgprobe_cycles_total", "counter", "Measurement cycles completed."),
    MetricSpec(
        "msgprobe_last_cycle_timestamp_seconds", "gauge", "Unix time at which the last cycle finished."
    ),
    MetricSpec(
        "msgprobe_vantage_online",
        "gauge",
        "1 if the vantage reached the network in the last cycle; 0 means no block is raised.",
    ),
    MetricSpec(
        "msgprobe_vantage_regime",
        "gauge",
        "Vantage regime of the last cycle (state set); whitelist: only the domestic canaries answer.",
        ("regime",),
    ),
    MetricSpec(
        "msgprobe_canary_up",
        "gauge",
        "1 if the domestic whitelist canary's TLS handshake verified in the last cycle.",
        ("canary",),
    ),
    MetricSpec(
        "msgprobe_control_up",
        "gauge",
        "1 if the control peer answered the last time it was asked; absent until it is asked.",
        ("peer",),
    ),
    MetricSpec("msgprobe_build_info", "info", "Version of msgprobe.", ("version",)),
    MetricSpec(
        "msgprobe_vantage_info",
        "info",
        "Identity of this probe as configured.",
        ("probe_id", "country", "asn"),
    ),
    MetricSpec("msgprobe_start_time_seconds", "gauge", "Unix time at which the daemon started."),
    MetricSpec(
        "msgprobe_config_last_reload_successful",
        "gauge",
        "1 if the last configuration reload succeeded (the old config keeps running otherwise).",
    ),
    MetricSpec(
        "msgprobe_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful configuration load.",
    ),
    MetricSpec("msgprobe_config_reloads_total", "counter", "Configuration reloads, by result.", ("result",)),
)


def _family(spec: MetricSpec) -> Metric:
    if spec.kind == "gauge":
        return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "histogram":
        return HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "info":
        return InfoMetricFamily(spec.name.removesuffix("_info"), spec.help, labels=spec.labels)
    raise ValueError(f"unknown metric kind {spec.kind!r}")


class _Families:
    """The families of one scrape, by exposed name; ``add`` appends one sample fast.

    Samples are appended directly rather than through ``add_metric``: a
    scrape of a large catalog writes thousands of them and the per-call
    overhead is most of the render time.
    """

    def __init__(self) -> None:
        self.by_name = {spec.name: _family(spec) for spec in METRICS}

    def add(self, name: str, labels: dict[str, str], value: float) -> None:
        self.by_name[name].samples.append(Sample(name, labels, value, None, None, None))

    def histogram(self, labels: dict[str, str], h: Histogram) -> None:
        name = "msgprobe_check_duration_seconds"
        samples = self.by_name[name].samples
        for le, count in zip(_BUCKET_LABELS, h.bucket_counts, strict=True):
            samples.append(Sample(name + "_bucket", {**labels, "le": le}, float(count), None, None, None))
        samples.append(Sample(name + "_count", labels, float(h.count), None, None, None))
        samples.append(Sample(name + "_sum", labels, h.total, None, None, None))


_EMPTY_HISTOGRAM = Histogram((0,) * len(_BUCKET_LABELS), 0.0, 0)


def _endpoints(f: _Families, s: Snapshot) -> None:
    for e in s.endpoints:
        service, endpoint = e.service, e.endpoint
        raw = e.latest.verdict.status if e.latest is not None else None
        for status, value in _STATUSES:
            labels = {"service": service, "endpoint": endpoint, "status": value}
            f.add("msgprobe_endpoint_status", labels, 1.0 if e.status is status else 0.0)
            f.add("msgprobe_endpoint_raw_status", labels, 1.0 if raw is status else 0.0)
        blocked_by = e.method if e.status is Status.BLOCKED else None
        methods: tuple[Method, ...] = e.methods
        if blocked_by is not None and blocked_by not in methods:
            methods = (*methods, blocked_by)  # never hide a block behind the initialised set
        for method in methods:
            f.add(
                "msgprobe_endpoint_blocked",
                {"service": service, "endpoint": endpoint, "method": method.value},
                1.0 if method is blocked_by else 0.0,
            )
        if e.since is not None:
            f.add(
                "msgprobe_endpoint_last_change_timestamp_seconds",
                {"service": service, "endpoint": endpoint},
                e.since,
            )
        if e.latest is not None:
            # A configured check without a row did not run (an earlier step
            # failed): that is not a success.
            ok: dict[str, bool] = {}
            for row in e.latest.checks:
                ok[row.check] = ok.get(row.check, True) and row.ok
            for check in e.checks:
                f.add(
                    "msgprobe_check_success",
                    {"service": service, "endpoint": endpoint, "check": check},
                    1.0 if ok.get(check, False) else 0.0,
                )
            f.add(
                "msgprobe_endpoint_goodput_bytes_per_second",
                {"service": service, "endpoint": endpoint},
                best_goodput(e.latest.observations),
            )
        # Only the kinds a raw check ran for: a 0 then says "looked, found none",
        # never "could not look". Router addresses stay out of the labels.
        for kind in sorted({*e.packets_checked, *e.packets_injected}):  # never hide an injection
            f.add(
                "msgprobe_injection_detected",
                {"service": service, "endpoint": endpoint, "kind": kind},
                1.0 if kind in e.packets_injected else 0.0,
            )
        if e.censor is not None:
            hop = e.censor.hop.hop if e.censor.hop is not None else 0
            f.add("msgprobe_censor_hop", {"service": service, "endpoint": endpoint}, float(hop))


def _services(f: _Families, s: Snapshot) -> None:
    for view in s.services:
        f.add("msgprobe_service_blocked", {"service": view.name}, 1.0 if view.blocked else 0.0)
        for status, value in _STATUSES:
            f.add(
                "msgprobe_service_status",
                {"service": view.name, "status": value},
                1.0 if view.status is status else 0.0,
            )


def _check_stats(f: _Families, s: Snapshot) -> None:
    configured = {(e.service, check) for e in s.endpoints for check in e.checks}
    durations = dict(s.stats.durations)
    for key in configured - durations.keys():
        durations[key] = _EMPTY_HISTOGRAM
    for (service, check), h in sorted(durations.items()):
        f.histogram({"service": service, "check": check}, h)
    totals: dict[tuple[str, str, str], int] = {(svc, check, "none"): 0 for svc, check in configured}
    for (service, check, failure), n in s.stats.totals.items():
        counter = (service, check, failure_label(failure))
        totals[counter] = totals.get(counter, 0) + n
    for (service, check, failure), n in sorted(totals.items()):
        f.add("msgprobe_checks_total", {"service": service, "check": check, "failure": failure}, float(n))


def _daemon(f: _Families, s: Snapshot) -> None:
    if s.last_cycle_duration is not None:
        f.add("msgprobe_cycle_duration_seconds", {}, s.last_cycle_duration)
    f.add("msgprobe_cycles_total", {}, float(s.cycles))
    if s.evidence is not None:
        f.add("msgprobe_evidence_records_total", {}, float(s.evidence.records))
        f.add("msgprobe_evidence_write_errors_total", {}, float(s.evidence.write_errors))
        f.add("msgprobe_evidence_dropped_records_total", {}, float(s.evidence.dropped))
        f.add("msgprobe_evidence_bytes", {}, float(s.evidence.bytes))
    if s.raw_enabled:
        f.add("msgprobe_raw_ready", {}, 0.0 if s.raw_problem else 1.0)
    if s.budget_limit is not None:
        f.add("msgprobe_throttle_budget_used_bytes", {}, float(s.budget_used or 0))
        f.add("msgprobe_throttle_budget_bytes", {}, float(s.budget_limit))
    if s.last_cycle_end is not None:
        f.add("msgprobe_last_cycle_timestamp_seconds", {}, s.last_cycle_end)
    if s.vantage_online is not None:
        f.add("msgprobe_vantage_online", {}, 1.0 if s.vantage_online else 0.0)
    if s.regime is not None:
        for regime in Regime:
            f.add("msgprobe_vantage_regime", {"regime": regime.value}, 1.0 if s.regime is regime else 0.0)
    for canary, up in sorted(s.canaries.items()):
        f.add("msgprobe_canary_up", {"canary": canary}, 1.0 if up else 0.0)
    for peer, (up, _) in sorted(s.controls.items()):
        f.add("msgprobe_control_up", {"peer": peer}, 1.0 if up else 0.0)
    f.add("msgprobe_build_info", {"version": s.version}, 1.0)
    f.add("msgprobe_vantage_info", {"probe_id": s.probe_id, "country": s.country, "asn": s.asn}, 1.0)
    f.add("msgprobe_start_time_seconds", {}, s.started)
    f.add("msgprobe_config_last_reload_successful", {}, 1.0 if s.reload_ok else 0.0)
    # The daemon does not start without a valid config, so the start is the first successful load.
    f.add(
        "msgprobe_config_last_reload_success_timestamp_seconds",
        {},
        s.reload_time if s.reload_time is not None else s.started,
    )
    for result in _RELOAD_RESULTS:
        f.add("msgprobe_config_reloads_total", {"result": result}, float(s.reloads.get(result, 0)))


def render_families(s: Snapshot) -> list[Metric]:
    """All metric families for one snapshot (families without samples are left out)."""
    f = _Families()
    _endpoints(f, s)
    _services(f, s)
    _check_stats(f, s)
    _daemon(f, s)
    return [family for family in f.by_name.values() if family.samples]


class SnapshotCollector(Collector):
    """Yields fresh families from ``get_snapshot()`` on every scrape."""

    def __init__(self, get_snapshot: Callable[[], Snapshot]) -> None:
        self.get_snapshot = get_snapshot

    def collect(self) -> Iterator[Metric]:
        yield from render_families(self.get_snapshot())

    def describe(self) -> Iterator[Metric]:
        # Names only, so registration never reads a snapshot and duplicate
        # names are caught however empty the first snapshot is.
        return iter([_family(spec) for spec in METRICS])


def register(registry: CollectorRegistry, get_snapshot: Callable[[], Snapshot]) -> SnapshotCollector:
    """Register a collector for ``get_snapshot`` in the caller's registry and return it."""
    collector = SnapshotCollector(get_snapshot)
    registry.register(collector)
    return collector


def snapshot_registry(get_snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry holding only the snapshot collector: what the daemon serves.

    Here rather than in the daemon, so that only ``probe.export`` imports
    prometheus_client (and the scrape cache's contract, one pure collector, holds)."""
    registry = CollectorRegistry(auto_describe=True)
    register(registry, get_snapshot)
    return registry
