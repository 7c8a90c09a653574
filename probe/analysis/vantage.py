"""Is the vantage itself online? A cycle where nothing at all got through is
not evidence against any service: every verdict becomes ``unknown``.

"Something got through" means a TCP handshake completed anywhere, or a
control resolver answered. The probe's own resolver answering is not
enough: it is often the home router, which answers from its cache while the
uplink is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from probe.model import EndpointObservations, EndpointResult, Verdict
from probe.vocab import Failure, Status

OFFLINE_EVIDENCE = "vantage offline: no endpoint and no control resolver could be reached"


def vantage_online(observations: Sequence[EndpointObservations]) -> bool:
    for obs in observations:
        if any(o.failure is None for o in obs.tcp):
            return True
        if any(o.role == "control" and o.rcode is not None for o in obs.dns):
            return True
        if any(o.failure is None for o in obs.http):
            return True
    return False


def apply_vantage(results: Sequence[EndpointResult], online: bool) -> list[EndpointResult]:
    if online:
        return list(results)
    return [
        replace(r, verdict=Verdict(Status.UNKNOWN, None, r.verdict.failure, OFFLINE_EVIDENCE))
        if r.verdict.status is not Status.ERROR
        else r
        for r in results
    ]


# Lag beyond this share of the step timeout makes that step's timeouts the probe's own.
OVERLOAD_SHARE = 0.25


def apply_overload(results: Sequence[EndpointResult], max_lag: float, timeout: float) -> list[EndpointResult]:
    """Timeouts measured while the probe's own loop lagged prove nothing about the network."""
    if max_lag <= OVERLOAD_SHARE * timeout:
        return list(results)
    note = f"probe overloaded (event loop {max_lag:.2f} s late): timeouts here are not evidence"
    return [
        replace(r, verdict=Verdict(Status.UNKNOWN, None, r.verdict.failure, f"{note}; {r.verdict.evidence}"))
        if r.verdict.status is Status.BLOCKED and r.verdict.failure is Failure.TIMEOUT
        else r
        for r in results
    ]
