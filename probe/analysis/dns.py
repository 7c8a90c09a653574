"""DNS verdicts: what the probe's resolver said, against the control and the catalog.

Each rule needs a second witness before it says "blocked": NXDOMAIN or an
empty answer counts only when the control resolver has addresses; REFUSED or
silence only when the same resolver answers a canary name; a strange answer
only when it is reserved space, a known block address, or outside the
service's expected networks while disagreeing with the control and failing
TLS for the name. Without the witness the honest answer is ``unreachable``
(or ``down`` when the control agrees the name is gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probe.addresses import in_prefixes, is_bogon
from probe.analysis.fingerprints import match_dns
from probe.config.fingerprints import Fingerprints
from probe.config.model import Expected, IPNetwork
from probe.model import DnsObservation, Verdict
from probe.vocab import Failure, Method, Status

_NETWORK = {
    Failure.TIMEOUT,
    Failure.HOST_UNREACHABLE,
    Failure.NETWORK_UNREACHABLE,
    Failure.CONNECTION_REFUSED,
}


@dataclass(frozen=True, slots=True)
class DnsFacts:
    """The DNS observations of one endpoint, summarised for the rules below."""

    probe: tuple[DnsObservation, ...]
    control: tuple[DnsObservation, ...]
    canary: tuple[DnsObservation, ...]

    @classmethod
    def of(cls, observations: Sequence[DnsObservation]) -> DnsFacts:
        return cls(
            tuple(o for o in observations if o.role == "probe"),
            tuple(o for o in observations if o.role == "control"),
            tuple(o for o in observations if o.role == "canary"),
        )

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for o in self.probe for a in o.addresses))

    @property
    def control_addresses(self) -> frozenset[str]:
        return frozenset(a for o in self.control for a in o.addresses)

    @property
    def failure(self) -> Failure | None:
        """The probe resolver's failure, A query first (AAAA often legitimately empty)."""
        if self.addresses:
            return None
        ordered = sorted(self.probe, key=lambda o: o.qtype != "A")
        return next((o.failure for o in ordered if o.failure is not None), None)

    @property
    def control_resolves(self) -> bool:
        return bool(self.control_addresses)

    @property
    def control_says_gone(self) -> bool:
        a = [o for o in self.control if o.qtype == "A"]
        return bool(a) and all(o.failure in (Failure.DNS_NXDOMAIN, Failure.DNS_NO_ANSWER) for o in a)

    @property
    def canary_answers(self) -> bool:
        # Resolving the canary, not merely replying: a resolver that REFUSEs
        # everything says nothing about this name.
        return any(o.addresses for o in self.canary)


def _first_reply_differs(o: DnsObservation) -> tuple[str, ...] | None:
    for reply in o.extra_replies:
        if set(reply.addresses) != set(o.addresses):
            return reply.addresses
    return None


def dns_failure_verdict(facts: DnsFacts) -> Verdict:
    """The probe resolver gave no address: blocked, down or unreachable?"""
    failure = facts.failure or Failure.UNKNOWN
    resolver = facts.probe[0].resolver if facts.probe else "resolver"
    name = facts.probe[0].hostname if facts.probe else "name"
    control = ", ".join(sorted(facts.control_addresses)[:4])
    if facts.control_says_gone and failure in (Failure.DNS_NXDOMAIN, Failure.DNS_NO_ANSWER):
        return Verdict(Status.DOWN, None, failure, f"{name}: {failure} at {resolver} and at the control")
    rules = {
        Failure.DNS_NXDOMAIN: (Method.DNS_NXDOMAIN, True),
        Failure.DNS_NO_ANSWER: (Method.DNS_NO_ANSWER, True),
        Failure.DNS_REFUSED: (Method.DNS_REFUSED, False),
        Failure.DNS_SERVER_FAILURE: (Method.DNS_REFUSED, False),
        Failure.TIMEOUT: (Method.DNS_TIMEOUT, False),
    }
    if failure not in rules:
        return Verdict(Status.UNREACHABLE, None, failure, f"{name}: {failure} at {resolver}")
    method, needs_control_only = rules[failure]
    if not needs_control_only and not facts.canary_answers:
        # The resolver answers nothing at all: a broken resolver or an
        # offline vantage, not a decision about this name.
        return Verdict(
            Status.UNKNOWN, None, failure, f"{name}: {failure} at {resolver}, which answers no other name"
        )
    if facts.control_resolves:
        witness = "" if needs_control_only else f"; {resolver} answers other names"
        return Verdict(
            Status.BLOCKED,
            method,
            failure,
            f"{name}: {failure} at {resolver} while the control resolves it to {control}{witness}",
        )
    return Verdict(
        Status.UNREACHABLE, None, failure, f"{name}: {failure} at {resolver}; no control answer to compare"
    )


def _expected_match(address: str, expected: Expected, asns: dict[str, int]) -> bool:
    return in_prefixes(address, expected.prefixes) or asns.get(address) in expected.asns


def dns_answer_verdict(
    facts: DnsFacts,
    expected: Expected,
    fingerprints: Fingerprints,
    *,
    asns: dict[str, int],
    test_networks: tuple[IPNetwork, ...] = (),
    tls_valid: bool,
    tls_failed: bool,
) -> Verdict | None:
    """The resolver gave addresses: is the answer itself the block? None when it looks genuine."""
    addresses = facts.addresses
    name = facts.probe[0].hostname if facts.probe else "name"
    ordinary = expected.prefixes + test_networks
    bogons = [a for a in addresses if is_bogon(a, ordinary) and a not in facts.control_addresses]
    if bogons:
        known = match_dns(fingerprints, bogons[0])
        cite = f" (known blocking address {known.name})" if known else ""
        return Verdict(
            Status.BLOCKED,
            Method.DNS_BOGON,
            None,
            f"{name} resolved to reserved address {', '.join(bogons)}{cite}",
            fingerprint=known.name if known else None,
            address=bogons[0],
        )
    for address in addresses:
        fingerprint = match_dns(fingerprints, address)
        if fingerprint is not None:
            return Verdict(
                Status.BLOCKED,
                Method.DNS_INCONSISTENT,
                None,
                f"{name} resolved to {address}, a known blocking address ({fingerprint.name})",
                fingerprint=fingerprint.name,
                address=address,
            )
    for o in facts.probe:
        other = _first_reply_differs(o)
        if other is not None:
            return Verdict(
                Status.BLOCKED,
                Method.DNS_INJECTED,
                None,
                f"{name} {o.qtype}: two replies to one query: {', '.join(o.addresses) or o.rcode} "
                f"then {', '.join(other) or 'empty'}",
            )
    # A handshake that verified for the name proves the address genuine,
    # whatever the prefixes say (CDNs move faster than catalogs).
    # ASN expectations need the ASN database; without it only prefixes can judge.
    judgeable = bool(expected.prefixes) or (bool(expected.asns) and bool(asns))
    if tls_valid or not judgeable or not facts.control_resolves:
        return None
    outside = [a for a in addresses if not _expected_match(a, expected, asns)]
    if len(outside) < len(addresses) or set(addresses) & facts.control_addresses:
        return None
    evidence = (
        f"{name} resolved to {', '.join(addresses)}: outside the expected networks, "
        f"control says {', '.join(sorted(facts.control_addresses)[:4])}"
    )
    if tls_failed:
        return Verdict(
            Status.BLOCKED,
            Method.DNS_INCONSISTENT,
            None,
            evidence + ", and TLS for the name fails there",
            address=addresses[0],
        )
    return Verdict(Status.UNKNOWN, None, None, evidence + "; no TLS check to confirm")
