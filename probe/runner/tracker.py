"""Folds cycle results into the daemon's ``Snapshot``: confirmation, ring
buffers of recent failures and of every cycle's result (the status page's
history bar), cumulative counters and histograms, and the packet witnesses
exports show: the latest result's injections, and the last censor
traceroute, kept across cycles because it runs at most once a day.

State lives in memory for the daemon's lifetime and survives reloads for
the endpoints that remain; the tracker writes nothing to disk. The censor
traceroutes are the exception that must survive a restart (a walk is not
repeated for a day), so the daemon hands their last results back in from the
traceroute log it keeps.

No I/O and no clock of its own: the daemon passes ``now``.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Mapping
from dataclasses import replace

from probe import __version__
from probe.analysis.confirm import Track, advance
from probe.analysis.packets import summary
from probe.analysis.service import service_blocked, service_status
from probe.checks import applicable_methods
from probe.config.model import Config
from probe.model import EndpointResult
from probe.runner.cycle import CycleResult
from probe.state import (
    DURATION_BUCKETS,
    CensorTrace,
    CheckStats,
    FailureRecord,
    Histogram,
    HistoryCell,
    ServiceView,
    Snapshot,
    TrackedEndpoint,
)
from probe.vocab import Status, failure_label

RECENT_FAILURES = 10
# Cycles of history kept per endpoint: 30 small cells, a few kB per endpoint
# even for the built-in catalog, and at the default interval 2.5 hours.
HISTORY = 30


def _history_cell(ring: deque[HistoryCell], now: float, result: EndpointResult) -> HistoryCell:
    """This cycle's cell, counting how many cycles in a row gave the same line."""
    v = result.verdict
    line = (v.status, v.method, v.failure, v.evidence)
    last = ring[-1] if ring else None
    if last is not None and (last.status, last.method, last.failure, last.evidence) == line:
        return HistoryCell(now, *line, repeats=last.repeats + 1, since=last.since)
    return HistoryCell(now, *line, repeats=1, since=now)


class Tracker:
    def __init__(
        self,
        config: Config,
        *,
        started: float,
        censor: Mapping[tuple[str, str], CensorTrace] | None = None,
    ) -> None:
        """``censor``: the last traceroute per (service, endpoint) from before a restart
        (the traceroute log), which the once-a-day limit will not repeat for hours."""
        self._snapshot = Snapshot(
            version=__version__,
            probe_id=config.probe_id,
            country=config.country,
            asn=config.asn,
            started=started,
            config_path=str(config.path or ""),
        )
        self._tracks: dict[tuple[str, str], Track] = {}
        self._recent: dict[tuple[str, str], deque[FailureRecord]] = {}
        self._totals: dict[tuple[str, str, str], int] = {}
        self._durations: dict[tuple[str, str], list[float | int]] = {}  # bucket counts..., sum, count
        self._latest: dict[tuple[str, str], EndpointResult] = {}
        self._history: dict[tuple[str, str], deque[HistoryCell]] = {}
        # The latest result's packet witnesses: (kinds checked, kinds injected).
        self._packets: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._censor: dict[tuple[str, str], CensorTrace] = dict(censor or {})
        self.configure(config)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def configure(self, config: Config) -> None:
        """Adopt a (re)loaded config: endpoints that remain keep their history."""
        self.config = config
        keys = {(s.name, e.host) for s in config.services for e in s.endpoints}
        stores = (self._tracks, self._recent, self._latest, self._history, self._packets, self._censor)
        for store in stores:
            for key in [k for k in store if k not in keys]:
                del store[key]
        self._snapshot = replace(
            self._snapshot,
            probe_id=config.probe_id,
            country=config.country,
            asn=config.asn,
            config_path=str(config.path or ""),
            confirm=config.confirm,
        )
        self._publish()

    def record_reload(self, ok: bool, now: float) -> None:
        reloads = dict(self._snapshot.reloads)
        result = "success" if ok else "failure"
        reloads[result] = reloads.get(result, 0) + 1
        self._snapshot = replace(
            self._snapshot,
            reload_ok=ok,
            reload_time=now if ok else self._snapshot.reload_time,
            reloads=reloads,
        )

    def apply(self, cycle: CycleResult) -> Snapshot:
        now = cycle.finished
        for result in cycle.results:
            key = (result.service, result.endpoint)
            self._latest[key] = result
            self._tracks[key] = advance(
                self._tracks.get(key, Track()), result.verdict, now, self.config.confirm
            )
            if result.verdict.status is not Status.OK:
                ring = self._recent.setdefault(key, deque(maxlen=RECENT_FAILURES))
                v = result.verdict
                ring.append(FailureRecord(now, v.status, v.method, v.failure, v.evidence))
            history = self._history.setdefault(key, deque(maxlen=HISTORY))
            history.append(_history_cell(history, now, result))
            packets = summary(result.observations.other)
            self._packets[key] = (tuple(sorted(packets.checked)), tuple(sorted(packets.injected)))
            if packets.traced:
                # Only a walk that ran replaces the last one: the cycles in between skip it.
                self._censor[key] = CensorTrace(now, packets.hop)
            for row in result.checks:
                label = row.check
                counter = (result.service, label, failure_label(row.failure))
                self._totals[counter] = self._totals.get(counter, 0) + 1
                self._observe((result.service, label), row.duration_s)
        self._snapshot = replace(
            self._snapshot,
            cycles=self._snapshot.cycles + 1,
            last_cycle_start=cycle.started,
            last_cycle_end=cycle.finished,
            last_cycle_duration=cycle.duration,
            vantage_online=cycle.vantage_online,
            regime=cycle.regime,
            canaries=cycle.canary_up,
            controls={**self._snapshot.controls, **cycle.controls},
            # The scheduler's own plan: interval after the start plus jitter (here its mean).
            next_cycle=max(cycle.started + self.config.interval + self.config.jitter / 2, cycle.finished),
        )
        self._publish()
        return self._snapshot

    def _observe(self, key: tuple[str, str], seconds: float) -> None:
        slots = self._durations.setdefault(key, [0] * (len(DURATION_BUCKETS) + 1) + [0.0, 0])
        slots[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        slots[-2] += seconds
        slots[-1] += 1

    def _publish(self) -> None:
        endpoints = []
        services = []
        for service in self.config.services:
            states = []
            for e in service.endpoints:
                key = (service.name, e.host)
                track = self._tracks.get(key, Track())
                pending = track.candidate
                checked, injected = self._packets.get(key, ((), ()))
                states.append((e.state, track.status))
                endpoints.append(
                    TrackedEndpoint(
                        service=service.name,
                        endpoint=e.host,
                        state=e.state,
                        status=track.status,
                        method=track.method,
                        since=track.since,
                        latest=self._latest.get(key),
                        checks=tuple(c.label for c in e.checks),
                        methods=applicable_methods(e),
                        recent_failures=tuple(self._recent.get(key, ())),
                        history=tuple(self._history.get(key, ())),
                        pending=pending[0] if pending else None,
                        pending_method=pending[1] if pending else None,
                        pending_cycles=track.streak if pending else 0,
                        packets_checked=checked,
                        packets_injected=injected,
                        censor=self._censor.get(key),
                    )
                )
            services.append(
                ServiceView(service.name, service.title, service_status(states), service_blocked(states))
            )
        durations = {}
        for key, slots in self._durations.items():
            n = len(DURATION_BUCKETS) + 1
            cumulative = tuple(int(sum(slots[: i + 1])) for i in range(n))
            durations[key] = Histogram(cumulative, float(slots[-2]), int(slots[-1]))
        self._snapshot = replace(
            self._snapshot,
            endpoints=tuple(endpoints),
            services=tuple(services),
            stats=CheckStats(dict(self._totals), durations),
        )
