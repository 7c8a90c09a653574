"""Throttling: when to run the pairs (T0 suspicion) and what they prove (T1).

OONI defines "extreme" throttling as ten times slower than typical and
judges it over many samples (dd-007), and Russia's SNI policers converge to
a fixed rate (~128 kbit/s, IMC'21), where congestion varies. So a verdict
needs all of:

* **10x**: the real SNI's median handshake time is at least ten times the
  decoy's (and at least ``MIN_SLOW_HANDSHAKE``: ten times 3 ms is noise),
  or its median goodput past the first 16 KiB is at most a tenth of the
  decoy's;
* **steady**: at least two pairs, the ratio holding in two thirds of them,
  not in one outlier; and a goodput verdict needs the real name's rate to be
  the same rate every time (coefficient of variation < 0.3 across its arms):
  a policer delivers its rate, congestion does not. Within one arm a
  dropping policer delivers in clumps (a burst, drops, a retransmission), so
  the plateau is judged across arms, not across quarter seconds; and the
  real arms must have taken ``MIN_SLOW_TRANSFER`` (a fast read timed on a
  busy machine is no rate to divide by);
* **same path**: every handshake completed, and the connect times of both
  names are alike (the least of each within 30 %, or 10 ms apart: loopback
  jitter is not a route change), so the decoy went where the real name did.

The witness is the decoy: the same server at the same address, reached
with another name, is fast. Anything less is no finding: T0's "slow" stays
``unreachable`` at most, never ``blocked``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from probe.analysis.goodput import cv
from probe.model import (
    ConfirmObservation,
    HttpObservation,
    PairArm,
    PairsObservation,
    TlsObservation,
    Verdict,
    Witness,
)
from probe.vocab import Method, Purpose, Status

RATIO = 10.0
SUSPECT_HANDSHAKE = 1.0  # seconds: a TLS handshake this slow makes T0 suspicious (OONI KZ: > 2 s)
MIN_SLOW_HANDSHAKE = 1.0  # seconds: the real name's median handshake for a handshake verdict
STEADY_SHARE = 2 / 3
MAX_CV = 0.3
MIN_SLOW_TRANSFER = 0.5  # seconds
MIN_PAIRS = 2
RTT_TOLERANCE = 0.3
RTT_SLACK = 0.01  # seconds


class _Arm(Protocol):
    @property
    def decoy(self) -> bool: ...


_A = TypeVar("_A", bound=_Arm)


def _split(arms: Sequence[_A]) -> tuple[list[_A], list[_A]]:
    """The real name's arms and the decoy's, each in the order they ran."""
    return [a for a in arms if not a.decoy], [a for a in arms if a.decoy]


def suspicion(
    tls: Iterable[TlsObservation], http: Iterable[HttpObservation], address: str, port: int
) -> str | None:
    """What in this attempt's T0 data, at this address and port, looks like throttling."""
    for t in tls:
        here = t.address == address and t.port == port and t.purpose is Purpose.CHECK
        if here and t.failure is None and t.duration >= SUSPECT_HANDSHAKE:
            return f"TLS handshake took {t.duration:.1f} s"
    for h in http:
        parts = urlsplit(h.url)
        on_port = (parts.port or (443 if parts.scheme == "https" else 80)) == port
        if h.address != address or h.decoy or not on_port:
            continue
        if h.slow:
            return f"slow transfer: {h.body_length:,} bytes in {h.duration:.1f} s"
        if h.handshake_time is not None and h.handshake_time >= SUSPECT_HANDSHAKE:
            return f"HTTPS handshake took {h.handshake_time:.1f} s"
    return None


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _similar_rtt(real: Sequence[PairArm], decoy: Sequence[PairArm]) -> bool:
    # The least connect time of each name estimates the RTT: a busy moment
    # only ever adds to a connect, never takes away.
    a = min([x.connect for x in real if x.connect is not None] or [0.0])
    b = min([x.connect for x in decoy if x.connect is not None] or [0.0])
    return abs(a - b) <= max(RTT_TOLERANCE * max(a, b), RTT_SLACK)


def _rate(bps: float) -> str:
    return f"{bps / 1000:,.1f} kB/s"


def _steady(ratios: Sequence[bool]) -> bool:
    return bool(ratios) and sum(ratios) >= STEADY_SHARE * len(ratios)


def pairs_verdict(o: PairsObservation) -> Verdict | None:
    """``blocked throttled`` with the decoy as witness, or nothing."""
    real, decoy = _split(o.arms)
    if len(real) < MIN_PAIRS or len(real) != len(decoy):
        return None
    if any(a.failure is not None or a.handshake is None for a in o.arms):
        return None  # a failing handshake is the TLS check's finding, not a rate
    if not _similar_rtt(real, decoy):
        return None
    pairs = list(zip(real, decoy, strict=True))
    label = f"throttle {o.address}:{o.port}"
    hs_a = _median([a.handshake or 0.0 for a in real])
    hs_b = _median([a.handshake or 0.0 for a in decoy])
    handshakes = f"handshakes {hs_a:.3f} s with SNI {o.host} vs {hs_b:.3f} s with SNI {o.decoy_sni}"
    slow_handshake = (
        hs_a >= MIN_SLOW_HANDSHAKE
        and hs_a >= RATIO * hs_b
        and _steady([(a.handshake or 0.0) >= RATIO * (b.handshake or 0.0) for a, b in pairs])
    )
    goodputs = [(a.goodput, b.goodput) for a, b in pairs if a.goodput is not None and b.goodput is not None]
    gp_a = _median([a for a, _ in goodputs]) if goodputs else None
    gp_b = _median([b for _, b in goodputs]) if goodputs else None
    spread = cv([a for a, _ in goodputs])
    slow_transfer = (
        gp_a is not None
        and gp_b is not None
        and spread is not None
        and len(goodputs) == len(pairs)
        and gp_a * RATIO <= gp_b
        and _steady([a * RATIO <= b for a, b in goodputs])
        and spread < MAX_CV
        and all(a.transfer_duration >= MIN_SLOW_TRANSFER for a in real)
    )
    if not (slow_handshake or slow_transfer):
        return None
    n = len(pairs)
    if slow_transfer and gp_a is not None and gp_b is not None and spread is not None:
        seen = (
            f"{label}: SNI {o.host} {_rate(gp_a)} vs decoy SNI {o.decoy_sni} {_rate(gp_b)} "
            f"(median of {n} pairs, {gp_b / max(gp_a, 1e-9):,.0f}x slower, "
            f"its rate's CV across pairs {spread:.2f}); "
            f"{handshakes}"
        )
        survived = f"decoy SNI {o.decoy_sni} to {o.address} carries {_rate(gp_b)}"
    else:
        seen = f"{label}: {handshakes} (median of {n} pairs, {hs_a / max(hs_b, 1e-9):,.0f}x slower)"
        survived = f"decoy SNI {o.decoy_sni} to {o.address} completes its handshake in {hs_b:.3f} s"
    return Verdict(
        Status.BLOCKED,
        Method.THROTTLED,
        None,
        seen,
        address=o.address,
        witnesses=(Witness("decoy", survived),),
    )


def pairs_summary(o: PairsObservation) -> dict[str, object]:
    """The row's detail: both names' medians, so a reader sees the rates either way."""
    out: dict[str, object] = {"reason": o.reason, "decoy_sni": o.decoy_sni}
    if o.skipped:
        out["skipped"] = o.skipped
        return out
    out["reserved_bytes"] = o.reserved
    for name, arms in zip(("real", "decoy"), _split(o.arms), strict=True):
        shakes = [a.handshake for a in arms if a.handshake is not None]
        rates = [a.goodput for a in arms if a.goodput is not None]
        out[f"{name}_handshake_s"] = round(_median(shakes), 4) if shakes else None
        out[f"{name}_goodput_Bps"] = round(_median(rates), 1) if rates else None
        out[f"{name}_bytes"] = sum(a.transfer_bytes for a in arms)
        failures = [str(a.failure) for a in arms if a.failure is not None]
        if failures:
            out[f"{name}_failures"] = failures
    out["pairs"] = len(_split(o.arms)[0])
    return out


def confirm_verdict(o: ConfirmObservation) -> Verdict | None:
    """T3: the real name's download or upload at the control peer at most a tenth of
    the decoy's, in two thirds of the pairs, at a steady rate; the peer is the witness."""
    real, decoy = _split(o.arms)
    if len(real) < MIN_PAIRS or len(real) != len(decoy) or any(a.failure for a in o.arms):
        return None
    for way in ("download", "upload"):
        pairs = [
            (getattr(a, f"{way}_goodput"), getattr(b, f"{way}_goodput"))
            for a, b in zip(real, decoy, strict=True)
        ]
        rates = [(a, b) for a, b in pairs if a is not None and b is not None]
        if len(rates) != len(pairs):
            continue
        spread = cv([a for a, _ in rates])
        gp_a, gp_b = _median([a for a, _ in rates]), _median([b for _, b in rates])
        if spread is None or spread >= MAX_CV or gp_a * RATIO > gp_b:
            continue
        if not _steady([a * RATIO <= b for a, b in rates]):
            continue
        survived = f"control peer {o.peer} with decoy SNI {o.decoy_sni}: {way} {_rate(gp_b)}"
        return Verdict(
            Status.BLOCKED,
            Method.THROTTLED,
            None,
            f"confirm at control peer {o.peer}: {way} with SNI {o.host} {_rate(gp_a)} vs decoy SNI "
            f"{o.decoy_sni} {_rate(gp_b)} "
            f"(median of {len(rates)} pairs, {gp_b / max(gp_a, 1e-9):,.0f}x slower)",
            address=o.address,
            witnesses=(Witness("control", survived),),
        )
    return None


def confirm_summary(o: ConfirmObservation) -> dict[str, object]:
    out: dict[str, object] = {"peer": o.peer, "decoy_sni": o.decoy_sni}
    if o.skipped:
        out["skipped"] = o.skipped
        return out
    out["reserved_bytes"] = o.reserved
    for name, arms in zip(("real", "decoy"), _split(o.arms), strict=True):
        for way in ("download", "upload"):
            rates = [r for a in arms if (r := getattr(a, f"{way}_goodput")) is not None]
            out[f"{name}_{way}_Bps"] = round(_median(rates), 1) if rates else None
        failures = [str(a.failure) for a in arms if a.failure is not None]
        if failures:
            out[f"{name}_failures"] = failures
    return out
