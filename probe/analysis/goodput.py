"""Goodput arithmetic for T0 (every TLS/HTTP step) and T1/T3 (pairs), pure.

Goodput is counted from the first byte received to the last, so connect and
server think time (time to first byte, reported apart) do not dilute it.
Fewer than MIN_BYTES carry no rate at all (a small page says nothing about
a path's speed), and a span shorter than MIN_SPAN counts as MIN_SPAN: the
rate is then a lower bound ("at least"), never a division by microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.model import EndpointObservations, Sample, TlsObservation
from probe.vocab import Purpose

MIN_SPAN = 0.01  # seconds
MIN_BYTES = 16 * 1024
INTERVAL = 0.25  # seconds per plateau step: single reads (and a dropping policer's retransmits) are bursty


def rate(received: int, span: float) -> float | None:
    """Bytes a second over ``span`` seconds (at least MIN_SPAN); None below MIN_BYTES."""
    if received < MIN_BYTES:
        return None
    return received / max(span, MIN_SPAN)


def after(samples: Sequence[Sample], skip: int) -> tuple[float | None, tuple[float, ...]]:
    """Goodput of the part of a transfer past its first ``skip`` bytes (slow start
    and a policer's burst), and the rates between successive samples there
    (a policer's plateau is steady; congestion is not)."""
    kept = [s for s in samples if s.received >= skip]
    if len(kept) < 2:
        return None, ()
    total = rate(kept[-1].received - kept[0].received, kept[-1].t - kept[0].t)
    steps: list[float] = []
    base = kept[0]
    for s in kept[1:]:
        if s.t - base.t >= INTERVAL:
            steps.append((s.received - base.received) / (s.t - base.t))
            base = s
    return total, tuple(steps)


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (population); None with fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    if mean <= 0:
        return None
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return float(var**0.5 / mean)


def best_goodput(obs: EndpointObservations) -> float:
    """The best goodput of this attempt's own TLS/HTTP steps (0 when none has one):
    ``msgprobe_endpoint_goodput_bytes_per_second``."""
    best = 0.0
    for h in obs.http:
        if not h.decoy and h.goodput is not None:
            best = max(best, h.goodput)
    for t in obs.tls:
        if t.purpose is Purpose.CHECK and t.failure is None and t.bytes_received:
            best = max(best, rate(t.bytes_received, t.duration) or 0.0)
    return best


def handshake_timing(t: TlsObservation) -> dict[str, object]:
    """T0 detail of a handshake: its time, the server's flight and its goodput."""
    out: dict[str, object] = {"handshake_s": round(t.duration, 4)}
    if t.bytes_received is not None and t.failure is None:
        out["bytes_received"] = t.bytes_received
        per_second = rate(t.bytes_received, t.duration)
        if per_second is not None:
            out["goodput_Bps"] = round(per_second, 1)
    return out
