"""Confirmation over cycles: one flaky cycle never raises or lifts a block."""

from __future__ import annotations

from probe.analysis.confirm import Track, advance, agree
from probe.model import Verdict
from probe.vocab import Method, Status

OK = Verdict(Status.OK)
BLOCKED = Verdict(Status.BLOCKED, Method.TLS_RESET)
OTHER_BLOCK = Verdict(Status.BLOCKED, Method.DNS_NXDOMAIN)


def _walk(verdicts: list[Verdict], confirm: int = 2) -> list[tuple[Status, Method | None]]:
    track = Track()
    out = []
    for i, v in enumerate(verdicts):
        track = advance(track, v, float(i), confirm)
        out.append((track.status, track.method))
    return out


def test_first_ok_is_taken_at_once_a_first_block_waits() -> None:
    assert _walk([OK])[-1] == (Status.OK, None)
    assert _walk([BLOCKED]) == [(Status.UNKNOWN, None)]
    assert _walk([BLOCKED, BLOCKED])[-1] == (Status.BLOCKED, Method.TLS_RESET)


def test_block_needs_confirm_consecutive_cycles() -> None:
    states = _walk([OK, BLOCKED, BLOCKED, BLOCKED], confirm=3)
    assert [s for s, _ in states] == [Status.OK, Status.OK, Status.OK, Status.BLOCKED]


def test_flapping_never_confirms() -> None:
    states = _walk([OK, BLOCKED, OK, BLOCKED, OK, BLOCKED, OK])
    assert {s for s, _ in states} == {Status.OK}


def test_lifting_a_block_also_needs_confirmation() -> None:
    states = _walk([BLOCKED, BLOCKED, OK, BLOCKED, OK, OK])
    assert [s for s, _ in states] == [
        Status.UNKNOWN,
        Status.BLOCKED,
        Status.BLOCKED,
        Status.BLOCKED,
        Status.BLOCKED,
        Status.OK,
    ]


def test_a_change_of_method_is_a_change() -> None:
    states = _walk([BLOCKED, BLOCKED, OTHER_BLOCK, OTHER_BLOCK])
    assert states[-2] == (Status.BLOCKED, Method.TLS_RESET)
    assert states[-1] == (Status.BLOCKED, Method.DNS_NXDOMAIN)


def test_since_is_the_time_of_the_confirmed_change() -> None:
    track = Track()
    for t, v in enumerate([OK, OK, BLOCKED, BLOCKED, BLOCKED]):
        track = advance(track, v, float(t), 2)
    assert track.since == 3.0


def test_once_retries_must_agree() -> None:
    assert agree([BLOCKED, BLOCKED]) == BLOCKED
    mixed = agree([BLOCKED, OK])
    assert mixed.status is Status.UNKNOWN and "inconclusive" in mixed.evidence
