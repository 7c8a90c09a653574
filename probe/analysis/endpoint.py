"""One endpoint's verdict from its findings, by one priority table.

Every step's analyzer emits findings (``Finding(step, verdict)``), each with
its witnesses; nothing is dropped by "first blocked wins" inside a step. The
table below then picks the endpoint's verdict:

1. the probe could not run (``error``);
2. the name itself is blocked (a DNS finding: NXDOMAIN, bogon, injection…);
3. an address is blocked by a per-address step (tcp, tls, http, later
   kinds), with the share of addresses it held for ("partial" blocks: a
   censor that blocks by address list can miss some);
4. every tested address fails some step, and nothing proves why;
5. a name-level finding that is not a block (down, unknown, unreachable);
6. otherwise ``ok``.

Addresses of a family the vantage cannot reach at all (no IPv6 route) are
set aside when another family got through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from probe.config.fingerprints import Fingerprints
from probe.config.model import Endpoint, IPNetwork, Service
from probe.model import EndpointObservations, Finding, Verdict
from probe.vocab import EndpointState, Failure, Purpose, Status

_ABSENT_FAMILY = {Failure.NETWORK_UNREACHABLE, Failure.HOST_UNREACHABLE}
NAME_STEP = "dns"


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    service: Service
    endpoint: Endpoint
    fingerprints: Fingerprints
    test_networks: tuple[IPNetwork, ...] = ()
    # Room for the next witness, packet evidence (peer controls' answers are
    # observations: EndpointObservations.controls).
    packets: tuple[object, ...] = field(default=())


def _family(address: str) -> int:
    return 6 if ":" in address else 4


def tested_addresses(obs: EndpointObservations) -> list[str]:
    """Addresses the configured checks ran against (follow-ups excluded)."""
    seen = dict.fromkeys(o.address for o in obs.tcp if o.purpose is Purpose.CHECK)
    seen.update(dict.fromkeys(o.address for o in obs.tls if o.purpose is Purpose.CHECK))
    seen.update(dict.fromkeys(o.address for o in obs.http if not o.decoy))
    return list(seen)


def _reachable_families(obs: EndpointObservations) -> set[int]:
    return {_family(o.address) for o in obs.tcp if o.failure is None and o.purpose is Purpose.CHECK}


def _per_address(findings: Sequence[Finding], obs: EndpointObservations) -> Verdict | None:
    by_address: dict[str, list[Verdict]] = {}
    for f in findings:
        if f.step != NAME_STEP and f.verdict.address is not None and f.verdict.status is not Status.OK:
            by_address.setdefault(f.verdict.address, []).append(f.verdict)
    families = _reachable_families(obs)
    relevant = {
        a: vs
        for a, vs in by_address.items()
        if not (families and _family(a) not in families and all(v.failure in _ABSENT_FAMILY for v in vs))
    }
    tested = [a for a in tested_addresses(obs) if a in relevant or a not in by_address]
    blocked = [v for vs in relevant.values() for v in vs if v.status is Status.BLOCKED]
    if blocked:
        first = blocked[0]
        if len(tested) > 1:
            share = len({v.address for v in blocked})
            evidence = f"{first.evidence} ({share} of {len(tested)} addresses)"
            return Verdict(
                first.status,
                first.method,
                first.failure,
                evidence,
                first.fingerprint,
                first.address,
                first.witnesses,
            )
        return first
    failing = [vs[0] for vs in relevant.values() if vs]
    if not failing or len(failing) < len(tested):
        return None  # another address works end to end: reachable, the rows show the rest
    return failing[0]


def decide(findings: Sequence[Finding], obs: EndpointObservations) -> Verdict:
    """The priority table of the module docstring."""
    if obs.errors:
        return Verdict(Status.ERROR, None, None, "; ".join(obs.errors))
    name = [f.verdict for f in findings if f.step == NAME_STEP]
    blocked_name = next((v for v in name if v.status is Status.BLOCKED), None)
    if blocked_name is not None:
        return blocked_name
    per_address = _per_address(findings, obs)
    if per_address is not None:
        return per_address
    other = next((v for v in name if v.status is not Status.OK), None)
    if other is not None:
        return other
    return Verdict(Status.OK, None, None, "every check succeeded")


def defunct_is_down(verdict: Verdict, endpoint: Endpoint) -> Verdict:
    """A shut-down service failing is the expected outcome, never a block."""
    if endpoint.state is EndpointState.DEFUNCT and verdict.status not in (Status.OK, Status.ERROR):
        return Verdict(Status.DOWN, None, verdict.failure, f"defunct endpoint: {verdict.evidence}")
    return verdict
