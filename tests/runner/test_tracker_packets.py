"""The packet witnesses the tracker publishes: the latest result's injections,
and the last censor traceroute, which runs at most once a day and so must
outlive the cycle it ran in (and a reload), replaced only by a new walk."""

from __future__ import annotations

import dataclasses

from probe.analysis.censor_hop import CensorHop, censor_hop
from probe.config.model import Check, Config, Endpoint, Service
from probe.model import EndpointObservations, EndpointResult, Verdict
from probe.model_packets import NEEDS_NET_RAW, PacketFacts, RawDns, RawReset, RawTraceroute, TraceHop
from probe.runner.cycle import CycleResult
from probe.runner.tracker import Tracker
from probe.state import CensorTrace, TrackedEndpoint
from probe.vocab import CheckKind, Method, Status

RESET = Verdict(Status.BLOCKED, Method.TLS_RESET, "connection_reset", "reset after ClientHello")
SYNACK = PacketFacts(0.01, "192.0.2.80", 61, 0, df=True, flags="SA", window=64240)
# The injector sits two hops closer than the server: its reset arrives with a higher TTL.
FORGED = PacketFacts(0.03, "192.0.2.80", 63, 54321, flags="R", window=0)
GENUINE = PacketFacts(0.03, "192.0.2.80", 61, 0, flags="R", window=0)


def config(*hosts: str) -> Config:
    endpoints = tuple(Endpoint(h, (Check(CheckKind.DNS),)) for h in hosts)
    return Config(None, (Service("chat", "Chat", endpoints),), interval=60.0, jitter=0.0, confirm=1)


def reset(rst: PacketFacts) -> RawReset:
    return RawReset("raw_reset", "192.0.2.80", 443, "tls", "check", True, (rst,), SYNACK)


def dns(failure: str | None = None) -> RawDns:
    reply = PacketFacts(0.02, "192.0.2.53", 60, 7, rcode="NOERROR", addresses=("192.0.2.80",))
    baseline = PacketFacts(0.02, "192.0.2.53", 60, 9, rcode="NOERROR", addresses=("192.0.2.81",))
    return RawDns(
        "raw_dns",
        "a.test",
        "A",
        "udp:192.0.2.53",
        "192.0.2.53",
        "canary.test",
        (reply,),
        (baseline,),
        failure=failure,
    )


def trace(stopped: str = "interference", skipped: str | None = None) -> RawTraceroute:
    """Routers at TTL 1 and 2; from TTL 3 on the trigger draws a reset while the control goes on."""
    routers = {ttl: f"10.79.{ttl}.2" for ttl in range(1, 5)}
    hops = tuple(
        TraceHop(ttl, "icmp", router, "icmp", router)
        if ttl < 3
        else TraceHop(ttl, "icmp", router, "reset", None)
        for ttl, router in routers.items()
    )
    return RawTraceroute(
        "raw_traceroute", "192.0.2.80", 443, "sni", "a.test", "example.com",
        hops=() if skipped else hops, duration=8.0, stopped="" if skipped else stopped, skipped=skipped,
    )  # fmt: skip


def cycle(t: float, *others: object, host: str = "a.test") -> CycleResult:
    obs = EndpointObservations("chat", host, other=others)
    return CycleResult(t, t + 2.0, True, (EndpointResult("chat", host, RESET, (), obs),))


def endpoint(tracker: Tracker, host: str = "a.test") -> TrackedEndpoint:
    return next(e for e in tracker.snapshot.endpoints if e.endpoint == host)


def test_injections_are_the_latest_results() -> None:
    tracker = Tracker(config("a.test"), started=0.0)
    assert (endpoint(tracker).packets_checked, endpoint(tracker).packets_injected) == ((), ())
    tracker.apply(cycle(100.0, reset(FORGED), dns()))
    a = endpoint(tracker)
    assert (a.packets_checked, a.packets_injected) == (("dns", "reset"), ("reset",))
    # The next cycle's genuine reset clears the mark: injections are not sticky.
    tracker.apply(cycle(200.0, reset(GENUINE)))
    a = endpoint(tracker)
    assert (a.packets_checked, a.packets_injected) == (("reset",), ())
    # A raw check that could not run checked nothing (the metric is then absent, not 0).
    tracker.apply(cycle(300.0, dns(failure=NEEDS_NET_RAW)))
    assert (endpoint(tracker).packets_checked, endpoint(tracker).packets_injected) == ((), ())


def test_the_censor_traceroute_outlives_its_cycle_until_a_new_one_runs() -> None:
    tracker = Tracker(config("a.test", "b.test"), started=0.0)
    assert endpoint(tracker).censor is None
    walk = trace()
    tracker.apply(cycle(100.0, walk))
    first = CensorTrace(102.0, censor_hop(walk))  # the cycle's end
    assert endpoint(tracker).censor == first
    # Later cycles skip the walk ("done within the last 24h") or do not try it at all.
    tracker.apply(cycle(200.0, trace(skipped="done within the last 24h")))
    tracker.apply(cycle(300.0))
    assert endpoint(tracker).censor == first
    # A failed walk (no NET_RAW after a restart of the container) does not erase it either.
    failed = RawTraceroute(
        "raw_traceroute", "192.0.2.80", 443, "sni", "a.test", "example.com", failure=NEEDS_NET_RAW
    )
    tracker.apply(cycle(400.0, failed))
    assert endpoint(tracker).censor == first
    assert endpoint(tracker, "b.test").censor is None
    # A reload keeps it for an endpoint that stays, and forgets an endpoint that goes.
    tracker.configure(config("a.test", "b.test"))
    assert endpoint(tracker).censor == first
    # A new walk replaces it, whatever it found: "reached the server" is a clean path now.
    clean = dataclasses.replace(trace(stopped="reached the server"), hops=trace().hops[:2])
    tracker.apply(cycle(86_500.0, clean))
    assert endpoint(tracker).censor == CensorTrace(86_502.0, censor_hop(clean))


def test_a_removed_endpoint_takes_its_traceroute_along() -> None:
    tracker = Tracker(config("a.test"), started=0.0)
    tracker.apply(cycle(100.0, trace(), reset(FORGED)))
    tracker.configure(config("b.test"))
    tracker.configure(config("a.test", "b.test"))
    a = endpoint(tracker)
    assert (a.censor, a.packets_checked, a.packets_injected) == (None, (), ())


def test_a_restart_starts_from_the_traceroutes_handed_back_in() -> None:
    # The once-a-day limit outlives a restart (the traceroute log), so its last result must too.
    before = CensorTrace(50.0, CensorHop(3, "reset", "10.79.2.2", None))
    tracker = Tracker(
        config("a.test"),
        started=0.0,
        censor={("chat", "a.test"): before, ("chat", "gone.test"): before},
    )
    assert endpoint(tracker).censor == before
    tracker.apply(cycle(100.0, reset(GENUINE)))  # no walk: not due yet
    assert endpoint(tracker).censor == before
    tracker.configure(config("a.test", "gone.test"))
    assert endpoint(tracker, "gone.test").censor is None  # not configured at start: dropped then
