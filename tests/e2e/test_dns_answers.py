"""DNS answers judged against what the later steps and the control show.

A forged answer where nothing listens fails at TCP, before TLS can say the
name is wrong: the control's address, measured then, is the witness.
"""

from __future__ import annotations

import pytest

from probe.testbed.resolver import Answer
from probe.testbed.scenarios import FakeService
from probe.vocab import Method, Purpose, Status
from tests.e2e.harness import by_service, run

NOBODY = "127.0.0.254"  # a loopback address where nothing listens: the kernel answers RST


@pytest.fixture(scope="module")
def cycle() -> dict[str, object]:
    return by_service(
        run(
            [
                FakeService("forged-nothing-there", dns=Answer([NOBODY])),
                FakeService("forged-and-down", dns=Answer([NOBODY]), tcp="closed"),
                FakeService("clean-messenger"),
            ]
        )
    )


def test_forged_answer_where_nothing_listens_is_dns_inconsistent(cycle: dict[str, object]) -> None:
    result = cycle["forged-nothing-there"]
    v = result.verdict  # type: ignore[attr-defined]
    assert (v.status, v.method) == (Status.BLOCKED, Method.DNS_INCONSISTENT), v.evidence
    assert NOBODY in v.evidence and "control's address" in v.evidence
    assert [w.kind for w in v.witnesses] == ["control"]
    measured = [o for o in result.observations.tcp if o.purpose is Purpose.CONTROL_ADDRESS]  # type: ignore[attr-defined]
    assert measured and measured[0].failure is None


def test_forged_answer_while_the_service_is_down_too_is_not_a_block(cycle: dict[str, object]) -> None:
    v = cycle["forged-and-down"].verdict  # type: ignore[attr-defined]
    assert v.status is Status.UNREACHABLE and v.method is None, v.evidence


def test_a_healthy_answer_measures_no_control_address(cycle: dict[str, object]) -> None:
    result = cycle["clean-messenger"]
    assert result.verdict.status is Status.OK  # type: ignore[attr-defined]
    assert all(o.purpose is Purpose.CHECK for o in result.observations.tcp)  # type: ignore[attr-defined]
