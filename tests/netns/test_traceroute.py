"""The censor traceroute through the path network (tests.netns.path), for real.

r1 is hop 1, r2 hop 2, the censor hop 3, the server hop 4. Each walk runs
in the client namespace (``tests.netns.trace_driver``, which prints the
RawTraceroute as JSON) and is judged by ``censor_hop``:

- the censor resetting the blocked SNI: hop 3, "reset", the last router r2;
- the censor dropping the blocked Host: hop 3, "drop";
- no rule: no hop for either trigger, the walk reaching the server at 4.

r1 sits in the client's /24, so its time exceeded is recorded without its
address: a router that close would narrow down the volunteer's own.

Packets are counted by iptables rules (counters, no target) in r1, which
every packet of the client passes whatever its TTL: the payload leaves
exactly ``per_hop`` times per TTL, never retransmitted by the kernel.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from probe.analysis.censor_hop import CensorHop, censor_hop
from probe.config.model import Raw
from probe.model_packets import RawTraceroute, TraceHop
from probe.raw.traceroute import IPV4_ONLY, traceroute
from tests.conftest import require_netns
from tests.netns.path import (
    CLIENT_IP,
    HOPS,
    HTTP_PORT,
    HTTPS_PORT,
    R2_IP,
    SERVER_IP,
    PathNetwork,
    path_network,
)

BLOCKED = "blocked.path.test"
CONTROL = "example.com"
WALK_TIMEOUT = 60.0  # s for one driver run: a walk here takes about 1-2 s


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PathNetwork]:
    require_netns()
    with path_network() as network:
        network.start_server(tmp_path_factory.mktemp("trace"))
        yield network


def walk(net: PathNetwork, trigger: str, *args: str) -> RawTraceroute:
    port = HTTPS_PORT if trigger == "sni" else HTTP_PORT
    run = net.python(
        net.client, "-m", "tests.netns.trace_driver", SERVER_IP, str(port), "--trigger", trigger,
        "--name", BLOCKED, "--control", CONTROL, "--hop-wait", "0.5", "--pace", "0.05", *args,
        timeout=WALK_TIMEOUT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    data: dict[str, Any] = json.loads(run.stdout)
    return RawTraceroute(**{**data, "hops": tuple(TraceHop(**h) for h in data["hops"])})


def routers(trace: RawTraceroute) -> set[str]:
    return {r for h in trace.hops for r in (h.control_router, h.trigger_router) if r is not None}


@pytest.mark.parametrize("trigger", ["sni", "host"])
def test_a_clean_path_has_no_censor_hop_and_reaches_the_server_at_hop_4(
    net: PathNetwork, trigger: str
) -> None:
    with net.flushed():
        trace = walk(net, trigger)
    assert trace.failure is None and trace.stopped == "reached the server", trace
    assert censor_hop(trace) is None
    # r1 shares the client's /24: the volunteer's own neighbourhood is a hop without an address.
    assert [h.control_router for h in trace.hops] == [None, HOPS[2], HOPS[3], None]
    assert [h.trigger_answer for h in trace.hops] == ["icmp", "icmp", "icmp", "server"]
    assert CLIENT_IP not in routers(trace)


def test_the_sni_reset_is_found_at_the_censors_hop(net: PathNetwork) -> None:
    with net.flushed():
        net.reset_sni(BLOCKED)
        trace = walk(net, "sni")
    assert trace.stopped == "interference", trace
    assert censor_hop(trace) == CensorHop(3, "reset", R2_IP, HOPS[3])
    assert CLIENT_IP not in routers(trace)


def test_the_host_drop_is_found_at_the_censors_hop(net: PathNetwork) -> None:
    with net.flushed():
        net.drop_host(BLOCKED)
        trace = walk(net, "host")
    assert trace.stopped == "interference", trace
    assert censor_hop(trace) == CensorHop(3, "drop", R2_IP, HOPS[3])


def test_the_time_budget_cuts_the_walk_and_keeps_what_it_saw(net: PathNetwork) -> None:
    # Finding the drop takes two silent TTLs of 0.5 s each: more than the whole budget.
    with net.flushed():
        net.drop_host(BLOCKED)
        trace = walk(net, "host", "--budget", "0.9")
    assert trace.stopped == "time budget", trace
    assert trace.duration < 0.9 + 1.0  # the budget, plus the capture's start before it
    assert [h.control_router for h in trace.hops] == [None, HOPS[2], HOPS[3], None]
    assert censor_hop(trace) is None


def count(net: PathNetwork, *match: str) -> int:
    """Packets the r1 rule with ``match`` has counted (iptables -L -v -x: pkts is the first column)."""
    listing = net.exec(net.r1, "iptables", "-w", "5", "-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n")
    rules = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    comment = match[-1]
    return next(int(r[0]) for r in rules if comment in " ".join(r))


def test_each_ttl_carries_the_payload_exactly_per_hop_times(net: PathNetwork) -> None:
    counters = {
        "trigger": ("-m", "string", "--algo", "bm", "--string", f"Host: {BLOCKED}"),
        "control": ("-m", "string", "--algo", "bm", "--string", f"Host: {CONTROL}"),
        "all": (),
    }
    for name, match in counters.items():
        rule = ("-s", CLIENT_IP, "-p", "tcp", *match, "-m", "comment", "--comment", f"trace-{name}")
        net.exec(net.r1, "iptables", "-w", "5", "-t", "raw", "-A", "PREROUTING", *rule)
    try:
        with net.flushed():
            trace = walk(net, "host", "--per-hop", "2")
        seen = {name: count(net, f"trace-{name}") for name in counters}
    finally:
        net.exec(net.r1, "iptables", "-w", "5", "-t", "raw", "-F")
    ttls = len(trace.hops)
    assert ttls == 4 and trace.stopped == "reached the server", trace
    assert seen["control"] == ttls and seen["trigger"] == 2 * ttls, seen
    # Per TTL and walk: SYN, ACK, the payload(s), the crafted reset, the kernel's abort reset;
    # the kernel may answer the server's reply (it acknowledges data the kernel never sent) once.
    per_connection = (seen["all"] - seen["trigger"] - seen["control"]) / (2 * ttls)
    assert 4 <= per_connection <= 5, seen


def test_a_cancelled_walk_leaves_no_socket_and_no_capture_thread(net: PathNetwork) -> None:
    with net.flushed():
        net.drop_host(BLOCKED)  # silent TTLs: the walk is surely mid-flight when cancelled
        run = net.python(
            net.client, "-m", "tests.netns.trace_driver", SERVER_IP, str(HTTP_PORT), "--trigger", "host",
            "--name", BLOCKED, "--control", CONTROL, "--cancel-after", "0.8", timeout=WALK_TIMEOUT,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["cancelled"] and report["sockets_after"] == report["sockets_before"], report
    assert report["capture_threads"] == 0, report


def test_ipv6_is_refused_with_the_reason() -> None:
    started = time.monotonic()
    trace = asyncio.run(
        traceroute("2001:db8::1", 443, trigger="sni", name=BLOCKED, control_name=CONTROL, raw=Raw(),
                   connect_timeout=1.0)
    )  # fmt: skip
    assert trace.failure == IPV4_ONLY and trace.hops == ()
    assert time.monotonic() - started < 1.0  # nothing was sent or awaited
