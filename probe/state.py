"""The daemon's latest state, as ``probe.export`` sees it.

The runner builds a new immutable ``Snapshot`` after every cycle (and on a
reload); exporters only read the newest one. Cumulative figures (counters,
histograms) live here too, so a scrape never triggers work and renders the
same numbers however often it comes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from probe.analysis.censor_hop import CensorHop
from probe.model import EndpointResult
from probe.vocab import EndpointState, Method, Regime, Status

# Check latencies on a healthy path are tens of ms; censorship timeouts sit
# at the configured step timeouts (seconds), so the buckets span both.
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One entry of an endpoint's ring buffer of recent non-ok results."""

    time: float  # unix seconds
    status: Status
    method: Method | None
    failure: str | None
    evidence: str


@dataclass(frozen=True, slots=True)
class HistoryCell:
    """One cycle's raw result of one endpoint: a cell of the status page's history bar.

    ``repeats`` and ``since`` count the consecutive cycles, up to this one,
    whose result line (status, method, failure, evidence) was the same, so
    the page can say "same for 12 cycles since 14:02" even when the run began
    before the oldest cell the ring still holds."""

    time: float  # unix seconds, the cycle's end
    status: Status  # raw, not confirmed
    method: Method | None
    failure: str | None
    evidence: str
    repeats: int = 1
    since: float = 0.0  # unix seconds: the first cycle of that run of repeats


@dataclass(frozen=True, slots=True)
class CensorTrace:
    """The last censor traceroute of an endpoint: it runs at most once a day
    (``raw.trace_every``), so it outlives the cycle it ran in."""

    at: float  # unix seconds, the end of the cycle it ran in
    hop: CensorHop | None  # None: the walk found no hop where the trigger fares worse


@dataclass(frozen=True, slots=True)
class TrackedEndpoint:
    service: str
    endpoint: str
    state: EndpointState
    status: Status  # confirmed over `confirm` cycles
    method: Method | None  # confirmed; None unless status is blocked
    since: float | None  # unix time of the last confirmed change
    latest: EndpointResult | None  # the raw result of the last cycle
    checks: tuple[str, ...]  # configured check labels, to initialise series
    methods: tuple[Method, ...]  # methods its checks can reveal, to initialise series
    recent_failures: tuple[FailureRecord, ...] = ()
    history: tuple[HistoryCell, ...] = ()  # the last cycles' raw results, oldest first (bounded ring)
    # A change seen but not confirmed yet: the candidate status (and method,
    # for a block) and how many consecutive cycles agreed on it so far, of
    # Snapshot.confirm. None when the latest result agrees with ``status``.
    pending: Status | None = None
    pending_method: Method | None = None
    pending_cycles: int = 0
    # Packet witnesses of the latest result (probe.analysis.packets), sorted:
    # the kinds ("dns", "reset") a raw check ran for, and those it showed injected.
    packets_checked: tuple[str, ...] = ()
    packets_injected: tuple[str, ...] = ()
    censor: CensorTrace | None = None  # None: no censor traceroute ever ran for it


@dataclass(frozen=True, slots=True)
class ServiceView:
    name: str
    title: str
    status: Status  # aggregate of its confirmed endpoint statuses
    blocked: bool  # any active endpoint confirmed blocked


@dataclass(frozen=True, slots=True)
class Histogram:
    bucket_counts: tuple[int, ...]  # cumulative, one per DURATION_BUCKETS entry, then +Inf
    total: float
    count: int


@dataclass(frozen=True, slots=True)
class CheckStats:
    # (service, check label, failure or "none") -> count
    totals: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    # (service, check label) -> histogram of durations
    durations: Mapping[tuple[str, str], Histogram] = field(default_factory=dict)


@dataclass
class EvidenceHealth:
    """What /metrics and the status page say of the evidence log (``probe.export.evidence``)."""

    records: int = 0  # records written since start
    write_errors: int = 0  # writes that failed (records dropped), since start
    dropped: int = 0  # records lost to those failures
    bytes: int = 0  # on disk now, every generation
    last_error: str | None = None  # the latest failure, None once a write succeeds again


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: str
    probe_id: str
    country: str
    asn: str
    started: float  # daemon start, unix seconds
    cycles: int = 0
    last_cycle_start: float | None = None
    last_cycle_end: float | None = None
    last_cycle_duration: float | None = None
    vantage_online: bool | None = None  # None until the first cycle ends
    regime: Regime | None = None  # the last cycle's vantage regime; None until the first cycle ends
    # The domestic canaries of the last cycle: canary -> its TLS handshake verified.
    canaries: Mapping[str, bool] = field(default_factory=dict)
    endpoints: tuple[TrackedEndpoint, ...] = ()
    services: tuple[ServiceView, ...] = ()
    stats: CheckStats = field(default_factory=CheckStats)
    reload_ok: bool = True
    reload_time: float | None = None
    reloads: Mapping[str, int] = field(default_factory=dict)  # "success"/"failure" -> count
    config_path: str = ""
    # Control peers asked since start: peer -> (answered last time it was asked, why not).
    # A peer never asked is absent: nothing is known of it yet.
    controls: Mapping[str, tuple[bool, str | None]] = field(default_factory=dict)

    # The daily byte budget of the throttle and freeze tests (None: not known yet).
    budget_used: int | None = None
    budget_limit: int | None = None
    # The evidence log's health (None: no evidence log configured).
    evidence: EvidenceHealth | None = None
    # Raw-packet checks: configured at all, and why they cannot run here (None: they can).
    raw_enabled: bool = False
    raw_problem: str | None = None
    confirm: int = 1  # consecutive cycles a change of status needs (Config.confirm)
    # When the next cycle should start, unix seconds: an estimate, the scheduler adds random jitter.
    next_cycle: float | None = None

    @property
    def ready(self) -> bool:
        return self.cycles > 0
