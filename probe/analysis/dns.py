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
from probe.analysis.needs import unanswered_chain
from probe.config.fingerprints import Fingerprints
from probe.config.model import Expected, IPNetwork
from probe.model import DnsObservation, Verdict, Witness
from probe.vocab import Failure, Method, Status


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
    def failed(self) -> DnsObservation | None:
        """The probe resolver's failed query when it gave no address, A query first
        (AAAA is often legitimately empty)."""
        if self.addresses:
            return None
        ordered = sorted(self.probe, key=lambda o: o.qtype != "A")
        return next((o for o in ordered if o.failure is not None), None)

    @property
    def failure(self) -> Failure | None:
        failed = self.failed
        return failed.failure if failed else None

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
    method, control_is_witness_enough = rules[failure]
    if facts.failed is not None and unanswered_chain(facts.failed):
        control_is_witness_enough = False  # the canary must resolve too (needs_canary asked it)
    if not control_is_witness_enough and not facts.canary_answers:
        # The resolver answers nothing at all: a broken resolver or an
        # offline vantage, not a decision about this name.
        return Verdict(
            Status.UNKNOWN, None, failure, f"{name}: {failure} at {resolver}, which answers no other name"
        )
    if facts.control_resolves:
        witness = "" if control_is_witness_enough else f"; {resolver} answers other names"
        witnesses: tuple[Witness, ...] = (Witness("control", control),)
        if not control_is_witness_enough:
            witnesses += (Witness("canary", f"{resolver} answers other names"),)
        return Verdict(
            Status.BLOCKED,
            method,
            failure,
            f"{name}: {failure} at {resolver} while the control resolves it to {control}{witness}",
            witnesses=witnesses,
        )
    return Verdict(
        Status.UNREACHABLE, None, failure, f"{name}: {failure} at {resolver}; no control answer to compare"
    )


def _expected_match(address: str, expected: Expected, asns: dict[str, int]) -> bool:
    return in_prefixes(address, expected.prefixes) or asns.get(address) in expected.asns


@dataclass(frozen=True, slots=True)
class Reach:
    """What the later steps learnt about the answered addresses."""

    verified: frozenset[str] = frozenset()  # TLS (or HTTPS) verified the name there
    tls_failed: frozenset[str] = frozenset()  # the handshake for the name failed there
    unconnectable: frozenset[str] = frozenset()  # no TCP connection there
    control_works: str | None = None  # a control address that connected (and verified)


def _injected(
    facts: DnsFacts,
    expected: Expected,
    fingerprints: Fingerprints,
    asns: dict[str, int],
    ordinary: tuple[IPNetwork, ...],
    reach: Reach,
) -> Verdict | None:
    """Two different replies to one transmission, the first unfit, a later one genuine.

    Replies that may answer a retransmitted copy never count: a slow
    recursive resolver answers each copy, and round-robin makes them differ.
    """
    judgeable = bool(expected.prefixes) or (bool(expected.asns) and bool(asns))

    def unfit(address: str) -> str | None:
        if address in reach.verified:
            return None
        if is_bogon(address, ordinary):
            return "reserved space"
        if match_dns(fingerprints, address) is not None:
            return "a known blocking address"
        if judgeable and not _expected_match(address, expected, asns):
            return "outside the expected networks"
        if address in reach.tls_failed:
            return "TLS for the name fails there"
        return None

    def genuine(address: str) -> bool:
        if address in reach.verified or address in facts.control_addresses:
            return True
        return judgeable and _expected_match(address, expected, asns)

    for o in facts.probe:
        if o.transmissions > 1:
            continue
        for reply in o.extra_replies:
            if reply.transmissions > 1 or set(reply.addresses) == set(o.addresses) or not reply.addresses:
                continue
            reasons = [r for r in map(unfit, o.addresses) if r]
            if o.addresses and len(reasons) == len(o.addresses) and all(map(genuine, reply.addresses)):
                first, later = ", ".join(o.addresses), ", ".join(reply.addresses)
                return Verdict(
                    Status.BLOCKED,
                    Method.DNS_INJECTED,
                    None,
                    f"{o.hostname} {o.qtype}: two replies to one transmission: {first} ({reasons[0]}) "
                    f"then {later} {reply.t - o.started - o.duration:+.3f} s later",
                    address=o.addresses[0],
                    witnesses=(Witness("reply", f"later reply {later} is genuine"),),
                )
    return None


def dns_answer_verdict(
    facts: DnsFacts,
    expected: Expected,
    fingerprints: Fingerprints,
    *,
    asns: dict[str, int],
    test_networks: tuple[IPNetwork, ...] = (),
    reach: Reach = Reach(),
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
            witnesses=(Witness("fingerprint", known.name) if known else Witness("reserved", bogons[0]),),
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
                witnesses=(Witness("fingerprint", fingerprint.name),),
            )
    injected = _injected(facts, expected, fingerprints, asns, ordinary, reach)
    if injected is not None:
        return injected
    # A handshake that verified for the name proves the address genuine,
    # whatever the prefixes say (CDNs move faster than catalogs).
    # ASN expectations need the ASN database; without it only prefixes can judge.
    judgeable = bool(expected.prefixes) or (bool(expected.asns) and bool(asns))
    if reach.verified or not judgeable or not facts.control_resolves:
        return None
    outside = [a for a in addresses if not _expected_match(a, expected, asns)]
    if len(outside) < len(addresses) or set(addresses) & facts.control_addresses:
        return None
    control = ", ".join(sorted(facts.control_addresses)[:4])
    evidence = (
        f"{name} resolved to {', '.join(addresses)}: outside the expected networks, control says {control}"
    )
    if reach.tls_failed & set(addresses):
        return Verdict(
            Status.BLOCKED,
            Method.DNS_INCONSISTENT,
            None,
            evidence + ", and TLS for the name fails there",
            address=addresses[0],
            witnesses=(Witness("control", control),),
        )
    if set(addresses) <= reach.unconnectable:
        if reach.control_works:
            return Verdict(
                Status.BLOCKED,
                Method.DNS_INCONSISTENT,
                None,
                evidence
                + f"; nothing connects there while the control's address {reach.control_works} works",
                address=addresses[0],
                witnesses=(Witness("control", f"{reach.control_works} connects"),),
            )
        return None  # the transport findings say how it fails; the control's address did not help
    return Verdict(Status.UNKNOWN, None, None, evidence + "; no TLS check to confirm")
