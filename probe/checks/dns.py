"""Check kind ``dns``: what the network's resolver answers for the name,
against the control resolver, a canary name and the catalog.

Resolution itself is the flow's first step for every host name (TCP needs
addresses whether or not ``dns`` is configured); this kind decides whether
the control is asked and whether the answer is judged.
"""

from __future__ import annotations

from probe.analysis.dns import DnsFacts, Reach, dns_answer_verdict, dns_failure_verdict
from probe.analysis.endpoint import AnalysisInput
from probe.checks.spec import CheckSpec
from probe.config.model import Check, Endpoint
from probe.model import CheckResult, DnsObservation, EndpointObservations, Finding, Verdict
from probe.vocab import CheckKind, Failure, Method, Purpose, failure_string

_METHODS = tuple(m for m in Method if m.value.startswith("dns."))


def _parse(arg: str, host: str) -> Check:
    if arg:
        raise ValueError(f"check 'dns' takes no argument, got 'dns:{arg}'")
    return Check(CheckKind.DNS)


def reach(obs: EndpointObservations) -> Reach:
    """What TCP, TLS and HTTPS learnt about the answered addresses and the control's."""
    verified = {t.address for t in obs.tls if t.purpose is Purpose.CHECK and t.failure is None}
    verified |= {
        h.address for h in obs.http if not h.decoy and h.failure is None and h.url.startswith("https")
    }
    tls_failed = {t.address for t in obs.tls if t.purpose is Purpose.CHECK and t.failure is not None}
    unconnectable = {o.address for o in obs.tcp if o.purpose is Purpose.CHECK and o.failure is not None}
    control_tls = {t.address: t.failure is None for t in obs.tls if t.purpose is Purpose.CONTROL_ADDRESS}
    works = next(
        (
            o.address
            for o in obs.tcp
            if o.purpose is Purpose.CONTROL_ADDRESS and o.failure is None and control_tls.get(o.address, True)
        ),
        None,
    )
    return Reach(frozenset(verified), frozenset(tls_failed), frozenset(unconnectable), works)


def _peer_views(obs: EndpointObservations, host: str) -> tuple[DnsObservation, ...]:
    """Each control peer's resolver answer, as one more control resolver: its
    witness counts where the probe's own control resolvers said nothing."""
    views = []
    for answer in obs.controls:
        if answer.summary is None or answer.summary.dns is None:
            continue
        seen = answer.summary.dns
        head = (seen.failure or "").split(":", 1)[0]
        failure = Failure(head) if head in Failure._value2member_map_ else (Failure.UNKNOWN if head else None)
        views.append(
            DnsObservation(
                host, "A", f"control peer {answer.peer}", "peer", "control", 0.0, 0.0, failure,
                rcode="NOERROR" if seen.addresses else None, addresses=seen.addresses,
            )
        )  # fmt: skip
    return tuple(views)


def _findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    if inp.endpoint.is_ip:
        return []
    facts = DnsFacts.of(obs.dns + _peer_views(obs, inp.endpoint.host))
    if not facts.addresses:
        return [Finding(CheckKind.DNS, dns_failure_verdict(facts))]
    verdict = dns_answer_verdict(
        facts,
        inp.endpoint.expected,
        inp.fingerprints,
        asns=dict(obs.asns),
        test_networks=inp.test_networks,
        reach=reach(obs),
    )
    return [Finding(CheckKind.DNS, verdict)] if verdict is not None else []


def _rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    facts = DnsFacts.of(obs.dns)
    probe = facts.probe
    if not probe:
        return []
    addresses = sorted(facts.addresses)
    failed = facts.failed
    dns_blocked = verdict.method is not None and verdict.method.value.startswith("dns.")
    control = sorted({a for o in obs.dns if o.role == "control" for a in o.addresses})
    return [
        CheckResult(
            check="dns",
            ok=bool(addresses) and not dns_blocked,
            failure=failure_string(failed.failure, failed.error) if failed else None,
            duration_s=max(o.duration for o in probe),
            detail={"resolver": probe[0].resolver, "addresses": addresses, "control_addresses": control},
        )
    ]


SPEC = CheckSpec(
    kind=CheckKind.DNS,
    usage="dns",
    parse=_parse,
    methods=_METHODS,
    findings=_findings,
    rows=_rows,
    needs_name=True,
)
