"""Peer controls on the loopback censor: a control peer (the real server, its
policy and summaries) outside the censor proves what one vantage cannot.

The peer's packets to the censored addresses reach the genuine servers
(``probe.testbed.control_peer``); the network-namespace tests
(``tests/netns/``) show the same verdicts through a real iptables middlebox.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from probe.config.model import ControlPeer
from probe.measure.toolkit import open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.control_peer import control_peer
from probe.testbed.middlebox import Blockpage
from probe.testbed.scenarios import UNKNOWN_PAGE, FakeService, LoopbackCensor
from probe.vocab import Method, Status
from tests.e2e.harness import FINGERPRINTS, by_service

# The methods these tests prove (the registry test asks that every method is shown somewhere).
PROVEN = {Method.TCP_TIMEOUT, Method.TCP_REFUSED, Method.HTTP_DIFF}

FAKES = [
    FakeService("tcp-refused", tcp="closed", checks=("dns", "tcp", "tls")),
    FakeService("tcp-timeout", tcp="blackhole", checks=("dns", "tcp", "tls")),
    FakeService("http-diff", http=Blockpage(UNKNOWN_PAGE), checks=("dns", "tcp", "http")),
    FakeService("http-clean", checks=("dns", "tcp", "http")),
]


async def _cycle(*, dead_peer: bool) -> CycleResult:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=len(FAKES)) as bed:
            config = bed.config([await bed.add(f) for f in FAKES])
            async with control_peer(bed, config, Path(workdir)) as peer:
                if dead_peer:  # a port on the peer's address where nothing listens
                    host = peer.url.rsplit(":", 1)[0]
                    peer = ControlPeer(f"{host}:9", peer.token_file)
                probe = replace(config, control_peers=(peer,))
                async with open_toolkit(probe) as kit:
                    return await run_cycle(kit, FINGERPRINTS, probe.services)


@pytest.fixture(scope="module")
def answered() -> CycleResult:
    return asyncio.run(_cycle(dead_peer=False))


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("tcp-refused", Method.TCP_REFUSED),
        ("tcp-timeout", Method.TCP_TIMEOUT),
        ("http-diff", Method.HTTP_DIFF),
    ],
)
def test_a_control_proves_the_block(answered: CycleResult, name: str, method: Method) -> None:
    v = by_service(answered)[name].verdict
    assert (v.status, v.method) == (Status.BLOCKED, method), v.evidence
    assert [w.kind for w in v.witnesses] == ["control"]


def test_the_http_diff_evidence_names_the_numbers(answered: CycleResult) -> None:
    evidence = by_service(answered)["http-diff"].verdict.evidence
    assert "HTTP 200 both" in evidence and "ratio" in evidence and "'Notice'" in evidence


def test_the_clean_mirror_is_ok_and_the_peer_counts_as_up(answered: CycleResult) -> None:
    assert by_service(answered)["http-clean"].verdict.status is Status.OK
    assert [up for up, _ in answered.controls.values()] == [True]


def test_no_control_reachable_is_unknown_never_blocked() -> None:
    cycle = asyncio.run(_cycle(dead_peer=True))
    for name in ("tcp-refused", "tcp-timeout"):
        v = by_service(cycle)[name].verdict
        assert v.status is Status.UNKNOWN and "no control peer reachable" in v.evidence, v.evidence
    assert by_service(cycle)["http-diff"].verdict.method is not Method.HTTP_DIFF
    ((up, error),) = cycle.controls.values()
    assert not up and error == "connection_refused"
