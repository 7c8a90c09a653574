"""What kind of network is the vantage in this cycle (DESIGN.md "Vantage regime")?

- ``online``: something foreign got through. A cycle's failures are then
  judged one endpoint at a time, each with its own witness.
- ``offline``: nothing got through at all, the controls included. That is no
  evidence against any service: every verdict becomes ``unknown``.
- ``whitelist``: nothing foreign got through, yet a domestic canary (a
  service every regional white list carries, ``Config.canaries``) completed
  a verified TLS handshake. This is the mobile "white list" regime of
  2025–2026 in Russia: only listed SNI and CIDR pass, everything else hangs,
  and to a probe without a domestic positive control it reads as an outage.
  A verified canary handshake is the witness that the uplink works, so every
  foreign endpoint that failed is ``blocked`` with method ``whitelist``.

What counts as "foreign got through", and why:

- a control resolver answered (any rcode: it is reachable), or a control
  peer answered (a summary, or an HTTP refusal: its server was reached).
  Controls are foreign by design; a control resolver inside the country's
  white list (a domestic DoH) would hide the regime, so use foreign ones;
- any connection-level success (TCP connect, TLS handshake, an HTTP
  response, a transfer, a datagram received) to an endpoint that is not on
  the canaries' domains, decoys and follow-ups included. An endpoint that
  works is evidence, whether or not it is a messenger: in a real white list
  it would have failed. The one exception is an endpoint whose host is a
  canary or under a canary's domain: it is known to be on the white list,
  so a domestic messenger listed there (``max.ru``'s API hosts under
  ``max.ru``) working while every foreign one fails still reads
  ``whitelist``. A domestic service the canaries do not name counts as
  foreign: the regime then stays ``online`` and the failures ``unreachable``
  (a missed regime, never a false block).

The probe's own resolver answering is never enough on its own: it is often
the home router, which answers from its cache while the uplink is down.
Canaries that resolve and connect but do not verify are no witness either.

Limitation: a cut of every international link while domestic routes still
work looks the same from one vantage. The fleet (``MessengerUnreachableOnlyHere``
compares vantages) and the canary list are what tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from probe.model import EndpointObservations, EndpointResult, Verdict, Witness
from probe.vocab import Failure, Method, Operation, Purpose, Regime, Status

OFFLINE_EVIDENCE = "vantage offline: no endpoint and no control resolver could be reached"
# Operations whose success means packets went both ways beyond the vantage.
_THROUGH = frozenset(
    {
        Operation.CONNECT,
        Operation.TLS_HANDSHAKE,
        Operation.HTTP_ROUND_TRIP,
        Operation.TRANSFER,
        Operation.UDP_RECEIVE,
    }
)
# What a whitelist regime turns into ``blocked whitelist``: the failures
# nothing here could explain. A block proven by its own witness keeps its
# method (more precise), ok and error stay, and down (a defunct endpoint, or
# controls that agree) is no block.
_REPLACED = frozenset({Status.UNREACHABLE, Status.UNKNOWN})


def _control_answered(obs: EndpointObservations) -> bool:
    if any(o.role == "control" and o.rcode is not None for o in obs.dns):
        return True
    # An HTTP refusal still came from the peer's own server: the route to it is open.
    return any(a.reachable or (a.error or "").startswith("HTTP ") for a in obs.controls)


def got_through(obs: EndpointObservations) -> bool:
    """Did any connection of this endpoint's attempt succeed (its checks and follow-ups)?"""
    if any(o.failure is None for o in obs.tcp) or any(o.failure is None for o in obs.tls):
        return True
    if any(o.failure is None for o in obs.http):
        return True
    return any(e.failure is None and e.operation in _THROUGH for e in obs.trace)


def vantage_online(observations: Sequence[EndpointObservations]) -> bool:
    """Anything at all got through: a connection, or a control resolver's answer."""
    return any(got_through(obs) or _control_answered(obs) for obs in observations)


def on_whitelist(host: str, canaries: Sequence[str]) -> bool:
    """The host is a canary or under a canary's domain (``api.max.ru`` for ``max.ru``)."""
    host = host.lower().rstrip(".")
    return any(host == c or host.endswith("." + c) for c in (n.lower().rstrip(".") for n in canaries))


def canary_verified(obs: EndpointObservations) -> bool:
    """The canary's own TLS check completed with its certificate verified for its name."""
    return any(o.failure is None and o.purpose is Purpose.CHECK and not o.decoy for o in obs.tls)


def regime(
    observations: Sequence[EndpointObservations], canary_observations: Sequence[EndpointObservations] = ()
) -> Regime:
    """The cycle's regime from every endpoint's observations and the canaries' (see the module doc)."""
    canaries = [c.endpoint for c in canary_observations]
    if any(_control_answered(obs) for obs in (*observations, *canary_observations)):
        return Regime.ONLINE
    if any(got_through(obs) for obs in observations if not on_whitelist(obs.endpoint, canaries)):
        return Regime.ONLINE
    if any(canary_verified(obs) for obs in canary_observations):
        return Regime.WHITELIST
    # A listed domestic endpoint that works while its canaries fail: the network
    # is not dead, and nothing proves a white list either.
    if any(got_through(obs) for obs in observations):
        return Regime.ONLINE
    return Regime.OFFLINE


def whitelist_witnesses(canary_observations: Sequence[EndpointObservations]) -> tuple[Witness, ...]:
    witnesses = []
    for obs in canary_observations:
        verified = [o for o in obs.tls if o.failure is None and o.purpose is Purpose.CHECK and not o.decoy]
        if verified:
            o = verified[0]
            witnesses.append(Witness("canary", f"{obs.endpoint}: TLS verified at {o.address}:{o.port}"))
    return tuple(witnesses)


def whitelist_evidence(canary_observations: Sequence[EndpointObservations]) -> str:
    up = ", ".join(o.endpoint for o in canary_observations if canary_verified(o))
    return (
        f"whitelist regime: only domestic canaries answered ({up}); "
        "foreign controls and every foreign endpoint failed"
    )


def _measured(r: EndpointResult) -> bool:
    obs = r.observations
    return bool(obs.trace or obs.dns or obs.tcp or obs.tls or obs.http or obs.other)


def _whitelisted(r: EndpointResult, evidence: str, witnesses: tuple[Witness, ...]) -> EndpointResult:
    v = r.verdict
    here = f"; here: {v.evidence}" if v.evidence else ""
    verdict = Verdict(
        Status.BLOCKED, Method.WHITELIST, v.failure, evidence + here, v.fingerprint, v.address, witnesses
    )
    return replace(r, verdict=verdict)


def apply_regime(
    results: Sequence[EndpointResult],
    current: Regime,
    canary_observations: Sequence[EndpointObservations] = (),
) -> list[EndpointResult]:
    """The verdicts as the regime reads them.

    Offline: every verdict but ``error`` becomes ``unknown``. Whitelist: every
    measured endpoint off the canaries' domains whose failure
    nothing here explains (``unreachable``, ``unknown``) becomes ``blocked
    whitelist`` with the canaries as witnesses; an endpoint the cycle's
    deadline left unmeasured stays ``unknown``.
    """
    if current is Regime.OFFLINE:
        return apply_vantage(results, False)
    if current is not Regime.WHITELIST:
        return list(results)
    canaries = [c.endpoint for c in canary_observations]
    evidence = whitelist_evidence(canary_observations)
    witnesses = whitelist_witnesses(canary_observations)
    return [
        _whitelisted(r, evidence, witnesses)
        if r.verdict.status in _REPLACED and _measured(r) and not on_whitelist(r.endpoint, canaries)
        else r
        for r in results
    ]


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
