"""Throttling verdicts from recorded observations (pure): T0 slow, T1 pairs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from probe.analysis.goodput import after, best_goodput, cv
from probe.analysis.http import http_verdict
from probe.analysis.throttle import pairs_verdict, suspicion
from probe.model import (
    EndpointObservations,
    HttpObservation,
    PairArm,
    PairsObservation,
    Sample,
    TlsObservation,
)
from probe.vocab import Failure, Method, Operation, Status
from tests.analysis.observations import FINGERPRINTS

ADDRESS = "192.0.2.10"
POLICED = (16_100.0, 15_900.0, 16_000.0, 16_050.0)  # a policer's plateau, B/s per quarter second


def arm(
    decoy: bool, goodput: float | None, *, handshake: float = 0.05, connect: float = 0.02, **kw: object
) -> PairArm:
    rates = kw.pop("rates", POLICED if not decoy else ())
    return PairArm(
        "example.org" if decoy else "chat.example",
        decoy,
        0.0,
        connect=connect,
        handshake=handshake,
        handshake_bytes=4000,
        transfer_bytes=49_152,
        transfer_duration=kw.pop("transfer_duration", 2.0 if not decoy else 0.05),  # type: ignore[arg-type]
        goodput=goodput,
        rates=rates,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def observed(*arms: PairArm) -> PairsObservation:
    return PairsObservation(ADDRESS, 443, "chat.example", "example.org", "slow transfer", arms)


def interleaved(real: list[PairArm], decoy: list[PairArm]) -> PairsObservation:
    return observed(*(a for pair in zip(real, decoy, strict=True) for a in pair))


POLICED_PAIRS = interleaved([arm(False, 16_000.0)] * 3, [arm(True, 1_200_000.0)] * 3)


def test_a_steady_tenfold_slower_real_name_is_throttled_with_the_decoy_as_witness() -> None:
    v = pairs_verdict(POLICED_PAIRS)
    assert v is not None and (v.status, v.method) == (Status.BLOCKED, Method.THROTTLED)
    assert v.address == ADDRESS
    assert "16.0 kB/s" in v.evidence and "1,200.0 kB/s" in v.evidence  # both rates
    assert [w.kind for w in v.witnesses] == ["decoy"] and "example.org" in v.witnesses[0].detail


def test_slow_handshakes_alone_are_throttling_when_steady_and_long() -> None:
    o = interleaved([arm(False, None, handshake=2.5)] * 3, [arm(True, None, handshake=0.08)] * 3)
    v = pairs_verdict(o)
    assert v is not None and v.method is Method.THROTTLED and "2.500 s" in v.evidence
    # Ten times 5 ms is still fast: no verdict from noise.
    quick = interleaved([arm(False, None, handshake=0.06)] * 3, [arm(True, None, handshake=0.005)] * 3)
    assert pairs_verdict(quick) is None


@pytest.mark.parametrize(
    ("why", "o"),
    [
        (
            "one outlier pair",
            interleaved(
                [arm(False, 16_000.0), arm(False, 900_000.0), arm(False, 950_000.0)],
                [arm(True, 1_200_000.0)] * 3,
            ),
        ),
        ("only 5x slower", interleaved([arm(False, 240_000.0)] * 3, [arm(True, 1_200_000.0)] * 3)),
        (
            "no steady rate (congestion, not a policer)",
            interleaved(
                [arm(False, 16_000.0), arm(False, 90_000.0), arm(False, 6_000.0)],
                [arm(True, 1_200_000.0)] * 3,
            ),
        ),
        ("one pair only", interleaved([arm(False, 16_000.0)], [arm(True, 1_200_000.0)])),
        (
            "a fast read on a busy machine",
            interleaved([arm(False, 16_000.0, transfer_duration=0.05)] * 3, [arm(True, 1_200_000.0)] * 3),
        ),
        (
            "the decoy took another route",
            interleaved([arm(False, 16_000.0, connect=0.02)] * 3, [arm(True, 1_200_000.0, connect=0.2)] * 3),
        ),
        (
            "a handshake failed",
            interleaved(
                [
                    arm(False, 16_000.0),
                    arm(False, None, failure=Failure.CONNECTION_RESET),
                    arm(False, 16_000.0),
                ],
                [arm(True, 1_200_000.0)] * 3,
            ),
        ),
        ("no decoy arm", observed(arm(False, 16_000.0))),
    ],
)
def test_no_throttling_without_all_of_its_conditions(why: str, o: PairsObservation) -> None:
    assert pairs_verdict(o) is None, why


def test_budget_refusal_is_no_finding() -> None:
    o = PairsObservation(
        ADDRESS, 443, "chat.example", "example.org", "scheduled", skipped="byte budget spent"
    )
    assert pairs_verdict(o) is None


def _slow_http() -> HttpObservation:
    return HttpObservation(
        "https://chat.example/media",
        "GET",
        ADDRESS,
        "chat.example",
        False,
        0.1,
        10.0,
        Failure.TIMEOUT,
        status=200,
        body_length=6144,
        failed_operation=Operation.HTTP_ROUND_TRIP,
        bytes_received=6400,
        slow=True,
    )


def test_a_timeout_after_progress_is_slow_never_http_timeout() -> None:
    slow = _slow_http()
    decoy = replace(slow, decoy=True, host="example.org", failure=None, slow=False, status=200)
    for attempts in ([slow], [slow, decoy]):  # even a decoy that completed proves nothing here
        v = http_verdict(attempts, ("chat.example",), FINGERPRINTS)
        assert v is not None and v.status is Status.UNREACHABLE and v.method is None
        assert v.evidence.endswith("slow: 6,144 bytes in 10.0 s (614 B/s)"), v.evidence
    # The same timeout with no body at all is still silence: the decoy rule applies.
    silent = replace(slow, slow=False, status=None, body_length=0)
    v = http_verdict([silent, decoy], ("chat.example",), FINGERPRINTS)
    assert v is not None and v.method is Method.HTTP_TIMEOUT


def test_suspicion_from_t0() -> None:
    tls = TlsObservation(ADDRESS, 443, "chat.example", False, 0.0, 1.4, None)
    assert suspicion([tls], [], ADDRESS, 443) == "TLS handshake took 1.4 s"
    assert suspicion([replace(tls, duration=0.2)], [], ADDRESS, 443) is None
    assert suspicion([tls], [], "192.0.2.11", 443) is None
    assert suspicion([], [_slow_http()], ADDRESS, 443) == "slow transfer: 6,144 bytes in 10.0 s"


def test_goodput_arithmetic() -> None:
    samples = tuple(Sample(t / 4, 0, 16_384 + int(t * 4000)) for t in range(9))  # 16 kB/s after 16 KiB
    rate, steps = after(samples, 16_384)
    assert rate == pytest.approx(16_000, rel=0.01) and len(steps) == 8
    assert cv(steps) == pytest.approx(0.0, abs=0.01)
    assert after(samples[:1], 0) == (None, ())
    obs = EndpointObservations("chat", "chat.example", http=(replace(_slow_http(), goodput=640.0),))
    assert best_goodput(obs) == 640.0
    assert best_goodput(EndpointObservations("chat", "chat.example")) == 0.0


def test_confirmation_at_a_control_peer() -> None:
    from probe.analysis.throttle import confirm_verdict
    from probe.model import ConfirmArm, ConfirmObservation

    def confirm(real: float, decoy: float) -> ConfirmObservation:
        arms = []
        for _ in range(3):
            arms += [
                ConfirmArm("chat.example", False, 131_072, real, 65_536, real),
                ConfirmArm("example.org", True, 131_072, decoy, 65_536, decoy),
            ]
        return ConfirmObservation(ADDRESS, "chat.example", "example.org", "peer.example:9491", tuple(arms))

    v = confirm_verdict(confirm(16_000.0, 2_000_000.0))
    assert v is not None and v.method is Method.THROTTLED and v.witnesses[0].kind == "control"
    assert "16.0 kB/s" in v.evidence and "2,000.0 kB/s" in v.evidence
    assert confirm_verdict(confirm(400_000.0, 2_000_000.0)) is None  # 5x: not extreme
    skipped = ConfirmObservation(ADDRESS, "chat.example", "example.org", "p", skipped="byte budget spent")
    assert confirm_verdict(skipped) is None
