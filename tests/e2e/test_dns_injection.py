"""Injection needs a witness, and the probe's own retransmissions are never one.

A slow recursive resolver answers the retransmitted copy of a query at once
(cache hit) and the first copy 1.5 s later (cache miss), with round-robin
answers between two genuine servers: two different replies, no censor. An
on-path injector races a forged address 300 ms ahead of the genuine answer
to one transmission: that is injection, and the evidence names both.
"""

from __future__ import annotations

import pytest

from probe.config.model import Timeouts
from probe.testbed.resolver import Inject, SlowRoundRobin
from probe.testbed.scenarios import FORGED_IP, FakeService
from probe.vocab import Method, Status
from tests.e2e.harness import by_service, run


@pytest.fixture(scope="module")
def cycle() -> dict[str, object]:
    # The probe's defaults: copies at 0, 1.33 and 2.67 s within 4 s, and OONI's 500 ms window.
    return by_service(
        run(
            [
                FakeService("slow-rotating", dns=SlowRoundRobin(), addresses=2),
                FakeService("injected", dns=Inject()),
                FakeService("clean-messenger"),
            ],
            timeouts=Timeouts(dns=4.0, connect=1.0, tls=1.5, http=2.0, cycle=60.0),
            injection_window=0.5,
        )
    )


def test_a_slow_resolver_answering_two_copies_differently_is_not_injection(cycle: dict[str, object]) -> None:
    result = cycle["slow-rotating"]
    v = result.verdict  # type: ignore[attr-defined]
    assert v.status is Status.OK, v.evidence
    (a,) = [o for o in result.observations.dns if o.role == "probe" and o.qtype == "A"]  # type: ignore[attr-defined]
    # The scenario really happened: a reply after the second copy, then a different one.
    assert a.transmissions == 2 and a.extra_replies
    assert set(a.extra_replies[0].addresses) != set(a.addresses)


def test_a_forged_answer_racing_the_genuine_one_is_dns_injected(cycle: dict[str, object]) -> None:
    v = cycle["injected"].verdict  # type: ignore[attr-defined]
    assert (v.status, v.method) == (Status.BLOCKED, Method.DNS_INJECTED), v.evidence
    genuine = next(iter(cycle["injected"].observations.dns[0].extra_replies)).addresses  # type: ignore[attr-defined]
    assert FORGED_IP in v.evidence and all(a in v.evidence for a in genuine)
    assert "one transmission" in v.evidence and v.witnesses


def test_a_clean_name_with_the_long_window_is_ok(cycle: dict[str, object]) -> None:
    assert cycle["clean-messenger"].verdict.status is Status.OK  # type: ignore[attr-defined]
