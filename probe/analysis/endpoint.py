"""One endpoint's verdict from its observations, step by step.

Each step is interpreted on its own (OONI dd-003) and the first step that
proves interference decides. Per-address results are kept apart: one of two
addresses reset on the SNI is a block ("partial"), even if the other one
works, because a censor that blocks by address list can miss some.
Addresses of a family the vantage cannot reach at all (no IPv6 route) are
set aside when another family got through.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

from probe.analysis.checks import check_rows
from probe.analysis.dns import DnsFacts, dns_answer_verdict, dns_failure_verdict
from probe.analysis.http import http_verdict
from probe.analysis.transport import tcp_verdict, tls_verdict
from probe.config.fingerprints import Fingerprints
from probe.config.model import Endpoint, IPNetwork, Service
from probe.model import EndpointObservations, EndpointResult, HttpObservation, TlsObservation, Verdict
from probe.vocab import EndpointState, Failure, Status

_ABSENT_FAMILY = {Failure.NETWORK_UNREACHABLE, Failure.HOST_UNREACHABLE}


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    service: Service
    endpoint: Endpoint
    fingerprints: Fingerprints
    test_networks: tuple[IPNetwork, ...] = ()


def _address_verdicts(obs: EndpointObservations, inp: AnalysisInput) -> dict[str, list[Verdict]]:
    """Every non-ok verdict per address, in step order (tcp, tls, http)."""
    found: dict[str, list[Verdict]] = defaultdict(list)
    for o in obs.tcp:
        verdict = tcp_verdict(o)
        if verdict is not None:
            found[o.address].append(verdict)
    tls_groups: dict[tuple[str, int], list[TlsObservation]] = defaultdict(list)
    for t in obs.tls:
        tls_groups[(t.address, t.port)].append(t)
    for (address, _), group in tls_groups.items():
        verdict = tls_verdict(group, inp.fingerprints)
        if verdict is not None:
            found[address].append(verdict)
    http_groups: dict[tuple[str, str, str], list[HttpObservation]] = defaultdict(list)
    for h in obs.http:
        # The decoy request has another host in its URL: group by what stays the same.
        parts = urlsplit(h.url)
        http_groups[(h.address, h.method, f"{parts.scheme}:{parts.port}{parts.path}")].append(h)
    for (address, _, _), requests in http_groups.items():
        verdict = http_verdict(requests, inp.service.domains, inp.fingerprints)
        if verdict is not None:
            found[address].append(verdict)
    return found


def _tested_addresses(obs: EndpointObservations) -> list[str]:
    seen = dict.fromkeys(o.address for o in obs.tcp)
    seen.update(dict.fromkeys(o.address for o in obs.tls))
    seen.update(dict.fromkeys(o.address for o in obs.http))
    return list(seen)


def _reachable_families(obs: EndpointObservations) -> set[int]:
    return {6 if ":" in o.address else 4 for o in obs.tcp if o.failure is None}


def _transport_verdict(obs: EndpointObservations, inp: AnalysisInput) -> Verdict | None:
    per_address = _address_verdicts(obs, inp)
    families = _reachable_families(obs)
    relevant = {
        a: vs
        for a, vs in per_address.items()
        if not (
            families
            and (6 if ":" in a else 4) not in families
            and all(v.failure in _ABSENT_FAMILY for v in vs)
        )
    }
    tested = [a for a in _tested_addresses(obs) if a in relevant or a not in per_address]
    blocked = [v for vs in relevant.values() for v in vs if v.status is Status.BLOCKED]
    if blocked:
        first = blocked[0]
        share = len({v.address for v in blocked})
        if len(tested) > 1:
            return Verdict(
                first.status,
                first.method,
                first.failure,
                f"{first.evidence} ({share} of {len(tested)} addresses)",
                first.fingerprint,
                first.address,
            )
        return first
    failing = [vs[0] for vs in relevant.values() if vs]
    if not failing:
        return None
    if len(failing) < len(tested):
        return None  # another address works end to end: reachable, the rows show the rest
    return failing[0]


def _vantage_independent(verdict: Verdict, endpoint: Endpoint) -> Verdict:
    if endpoint.state is EndpointState.DEFUNCT and verdict.status is not Status.OK:
        # A shut-down service failing is the expected outcome, never a block.
        return Verdict(Status.DOWN, None, verdict.failure, f"defunct endpoint: {verdict.evidence}")
    return verdict


def analyze_endpoint(obs: EndpointObservations, inp: AnalysisInput) -> EndpointResult:
    verdict = _decide(obs, inp)
    verdict = _vantage_independent(verdict, inp.endpoint)
    return EndpointResult(
        inp.service.name, inp.endpoint.host, verdict, check_rows(obs, inp.endpoint, verdict), obs
    )


def _decide(obs: EndpointObservations, inp: AnalysisInput) -> Verdict:
    if obs.errors:
        return Verdict(Status.ERROR, None, None, "; ".join(obs.errors))
    endpoint = inp.endpoint
    if not endpoint.is_ip:
        facts = DnsFacts.of(obs.dns)
        if not facts.addresses:
            return dns_failure_verdict(facts)
        genuine = {t.address for t in obs.tls if not t.decoy and t.failure is None}
        genuine |= {
            h.address for h in obs.http if not h.decoy and h.failure is None and h.url.startswith("https")
        }
        failed = any(not t.decoy and t.failure is not None for t in obs.tls)
        dns_verdict = dns_answer_verdict(
            facts,
            endpoint.expected,
            inp.fingerprints,
            asns=dict(obs.asns),
            test_networks=inp.test_networks,
            tls_valid=bool(genuine),
            tls_failed=failed,
        )
        if dns_verdict is not None and dns_verdict.status is Status.BLOCKED:
            return dns_verdict
        transport = _transport_verdict(obs, inp)
        if transport is not None:
            return transport
        if dns_verdict is not None:
            return dns_verdict
    else:
        transport = _transport_verdict(obs, inp)
        if transport is not None:
            return transport
    return Verdict(Status.OK, None, None, "every check succeeded")
