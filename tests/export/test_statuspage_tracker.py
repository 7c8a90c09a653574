"""What the status page reads from the runner: the bounded history ring per
endpoint (kept across a reload for endpoints that stay), the repeat counts
that collapse evidence, and the change being confirmed."""

from __future__ import annotations

import dataclasses
import re

from probe.config.model import Check, Config, Endpoint, Service
from probe.export.statuspage import render_status_page
from probe.model import EndpointObservations, EndpointResult, Verdict
from probe.runner.cycle import CycleResult
from probe.runner.tracker import HISTORY, Tracker
from probe.state import TrackedEndpoint
from probe.vocab import CheckKind, Method, Status

CHECKS = (Check(CheckKind.DNS),)
OK = Verdict(Status.OK)
RESET = Verdict(Status.BLOCKED, Method.TLS_RESET, "connection_reset", "reset after ClientHello")
NXDOMAIN = Verdict(Status.BLOCKED, Method.DNS_NXDOMAIN, "dns_nxdomain_error", "NXDOMAIN")


def config(*hosts: str, confirm: int = 2) -> Config:
    endpoints = tuple(Endpoint(h, CHECKS) for h in hosts)
    return Config(None, (Service("chat", "Chat", endpoints),), interval=60.0, jitter=10.0, confirm=confirm)


def cycle(t: float, verdicts: dict[str, Verdict]) -> CycleResult:
    results = tuple(
        EndpointResult("chat", host, v, (), EndpointObservations("chat", host))
        for host, v in verdicts.items()
    )
    return CycleResult(t, t + 2.0, True, results)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def endpoint(tracker: Tracker, host: str) -> TrackedEndpoint:
    return next(e for e in tracker.snapshot.endpoints if e.endpoint == host)


def test_the_first_block_is_published_as_a_candidate_being_confirmed() -> None:
    tracker = Tracker(config("a.test", "b.test"), started=0.0)
    tracker.apply(cycle(100.0, {"a.test": RESET, "b.test": OK}))
    a, b = endpoint(tracker, "a.test"), endpoint(tracker, "b.test")
    assert (a.status, a.pending, a.pending_method, a.pending_cycles) == (
        Status.UNKNOWN,
        Status.BLOCKED,
        Method.TLS_RESET,
        1,
    )
    assert (b.status, b.pending, b.pending_cycles) == (Status.OK, None, 0)  # a first ok is taken at once
    assert tracker.snapshot.confirm == 2
    assert tracker.snapshot.next_cycle == 100.0 + 60.0 + 5.0  # interval plus the mean jitter
    page = text(render_status_page(tracker.snapshot, now=103.0))
    assert "blocked — confirming, 1 of 2 cycles tls.reset" in page

    tracker.apply(cycle(200.0, {"a.test": RESET, "b.test": OK}))
    a = endpoint(tracker, "a.test")
    assert (a.status, a.method, a.pending, a.pending_cycles) == (Status.BLOCKED, Method.TLS_RESET, None, 0)
    assert (
        "confirming"
        not in render_status_page(tracker.snapshot, now=203.0)
        .split("<main>")[1]
        .split('<section class="legend">')[0]
    )


def test_a_change_of_method_is_pending_while_the_old_block_stands() -> None:
    tracker = Tracker(config("a.test", confirm=3), started=0.0)
    for t in (1.0, 2.0, 3.0):
        tracker.apply(cycle(t, {"a.test": RESET}))
    tracker.apply(cycle(4.0, {"a.test": NXDOMAIN}))
    tracker.apply(cycle(5.0, {"a.test": NXDOMAIN}))
    a = endpoint(tracker, "a.test")
    assert (a.status, a.method) == (Status.BLOCKED, Method.TLS_RESET)
    assert (a.pending, a.pending_method, a.pending_cycles) == (Status.BLOCKED, Method.DNS_NXDOMAIN, 2)


def test_history_is_a_bounded_ring_oldest_first_with_repeat_counts() -> None:
    tracker = Tracker(config("a.test"), started=0.0)
    verdicts = [OK] * 5 + [RESET] * (HISTORY + 10)
    for i, v in enumerate(verdicts):
        tracker.apply(cycle(float(i), {"a.test": v}))
    history = endpoint(tracker, "a.test").history
    assert len(history) == HISTORY
    assert [c.time for c in history] == [
        float(i) + 2.0 for i in range(len(verdicts) - HISTORY, len(verdicts))
    ]
    newest = history[-1]
    # The run began before the ring's oldest cell; its length and start are still known.
    assert (newest.status, newest.method, newest.repeats, newest.since) == (
        Status.BLOCKED,
        Method.TLS_RESET,
        HISTORY + 10,
        5.0 + 2.0,
    )
    assert "same for 40 cycles since" in render_status_page(tracker.snapshot, now=50.0)


def test_a_different_line_starts_a_new_run() -> None:
    tracker = Tracker(config("a.test"), started=0.0)
    other = dataclasses.replace(RESET, evidence="reset after ClientHello, second address")
    for i, v in enumerate([RESET, RESET, other, RESET]):
        tracker.apply(cycle(float(i), {"a.test": v}))
    assert [(c.repeats, c.since) for c in endpoint(tracker, "a.test").history] == [
        (1, 2.0),
        (2, 2.0),
        (1, 4.0),
        (1, 5.0),
    ]


def test_history_survives_a_reload_for_endpoints_that_stay() -> None:
    tracker = Tracker(config("a.test", "b.test"), started=0.0)
    for t in (1.0, 2.0, 3.0):
        tracker.apply(cycle(t, {"a.test": RESET, "b.test": OK}))
    tracker.configure(config("a.test", "c.test"))
    assert len(endpoint(tracker, "a.test").history) == 3
    assert endpoint(tracker, "c.test").history == ()
    tracker.configure(config("a.test", "b.test"))  # b.test comes back: a new endpoint, no old history
    assert endpoint(tracker, "b.test").history == ()
    assert len(endpoint(tracker, "a.test").history) == 3
