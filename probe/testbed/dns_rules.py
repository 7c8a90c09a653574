"""The rule language of the testbed's resolvers: what a lying (or honest)
resolver answers for a name, shared by the UDP/TCP resolver
(``probe.testbed.resolver``) and the DoH control (``probe.testbed.doh``).

Rules are looked up by exact query name, case-insensitively (keys are
written lower-case, without the final dot); unknown names get the default
rule. ``Answer`` gives A queries its IPv4 addresses and AAAA queries its
IPv6 ones (an empty NOERROR when the family has none); any other type gets
an empty NOERROR. ``Drop`` never answers; ``Inject`` answers twice, as an
on-path injector racing the genuine resolver does; ``SlowRoundRobin`` is an
honest but slow recursive resolver in front of a name whose answer rotates;
``Cname`` answers only the first link of a chain; ``Unrelated`` answers
with records owned by another name. Anything that is not a one-question
query (garbage, a response, an update) is ignored.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

REMEMBER = 10.0  # s a slow resolver keeps a query id after answering: longer than any stub retries


def _check_addresses(addresses: list[str] | None) -> None:
    for address in addresses or ():
        ipaddress.ip_address(address)  # a typo fails when the rule is written, not mid-query


@dataclass(frozen=True)
class Answer:
    addresses: list[str]

    def __post_init__(self) -> None:
        _check_addresses(self.addresses)


@dataclass(frozen=True)
class NxDomain:
    pass


@dataclass(frozen=True)
class NoAnswer:
    pass


@dataclass(frozen=True)
class Refused:
    pass


@dataclass(frozen=True)
class ServFail:
    pass


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Unrelated:
    """Answer with A records owned by another name (``owner``) and nothing for
    the name asked: a record a careless stub would adopt and connect to."""

    owner: str
    addresses: list[str]


@dataclass(frozen=True)
class Cname:
    """Answer with a CNAME to ``target`` and nothing else: the addresses, if
    any, come from asking for ``target`` (a resolver that answers only the
    first link of a chain, or every name with one)."""

    target: str


@dataclass(frozen=True)
class Inject:
    """An on-path injector: its ``forged`` reply at once, the genuine one ``delay`` s later.

    Both answer the same transmission (every copy of a query gets both). An
    injector sits near the client and the resolver far away, so the forgery
    wins the race by a round trip: 300 ms by default. ``None`` (the default
    for both lists) is filled in by ``probe.testbed.scenarios``: a forged
    address where nothing listens, and the fake service's own addresses; a
    ``DnsServer`` given ``None`` answers it with an empty NOERROR.

    Over TCP, where no injector can race the resolver, both arrive on the
    stream in that order."""

    forged: list[str] | None = None
    genuine: list[str] | None = None
    delay: float = 0.3

    def __post_init__(self) -> None:
        _check_addresses(self.forged)
        _check_addresses(self.genuine)


@dataclass(frozen=True)
class SlowRoundRobin:
    """A slow recursive resolver in front of a round-robin name (a CDN's).

    The first copy of a query (same client, id, name and type) is a cache
    miss: answered only ``delay`` s later. Every later copy, a stub's
    retransmission, is a cache hit: answered at once. Each reply carries one
    address, the next in ``addresses`` in the order the replies are *sent*,
    per query. So a stub that retransmits after 1.33 s gets ``addresses[0]``
    at once to the copy, then ``addresses[1]`` at 1.5 s to the original: two
    different replies to one query, both genuine. A single copy gets exactly
    one reply, ``addresses[0]`` after ``delay``. A copy seen ``REMEMBER`` s
    after its answer is a new query again.

    ``None`` is filled in by ``probe.testbed.scenarios`` with the fake
    service's own addresses (it needs two: ``FakeService(addresses=2)``).
    Over DoH the first address comes at once: the front end's cache is warm."""

    addresses: list[str] | None = None
    delay: float = 1.5

    def __post_init__(self) -> None:
        _check_addresses(self.addresses)

    def nth(self, index: int) -> list[str]:
        """The address list of the ``index``-th reply to one query (0-based)."""
        return [self.addresses[index % len(self.addresses)]] if self.addresses else []


Rule = Answer | NxDomain | NoAnswer | Refused | ServFail | Drop | Inject | SlowRoundRobin | Cname | Unrelated


def make_reply(
    query: dns.message.Message, addresses: list[str] | None, rcode: dns.rcode.Rcode
) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    question = query.question[0]
    family = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
    if addresses and family is not None:
        matching = [a for a in addresses if ipaddress.ip_address(a).version == family]
        if matching:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, matching)
            )
    return response


def respond(
    query: dns.message.Message, rules: dict[str, Rule], default: Rule
) -> list[tuple[float, dns.message.Message]]:
    """The replies to send to a query from ``parse``, each with its delay; empty for a dropped query."""
    rule = rules.get(query_name(query), default)
    if isinstance(rule, Answer):
        return [(0.0, make_reply(query, rule.addresses, dns.rcode.NOERROR))]
    if isinstance(rule, Inject):
        return [
            (0.0, make_reply(query, rule.forged, dns.rcode.NOERROR)),
            (rule.delay, make_reply(query, rule.genuine, dns.rcode.NOERROR)),
        ]
    if isinstance(rule, Unrelated):
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NOERROR)
        if query.question[0].rdtype == dns.rdatatype.A:
            owner = dns.name.from_text(rule.owner)
            response.answer.append(
                dns.rrset.from_text_list(owner, 60, dns.rdataclass.IN, dns.rdatatype.A, rule.addresses)
            )
        return [(0.0, response)]
    if isinstance(rule, Cname):
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NOERROR)
        response.answer.append(
            dns.rrset.from_text_list(
                query.question[0].name, 60, dns.rdataclass.IN, dns.rdatatype.CNAME, [f"{rule.target}."]
            )
        )
        return [(0.0, response)]
    if isinstance(rule, SlowRoundRobin):  # seen once: a cache miss (DnsServer remembers more)
        return [(rule.delay, make_reply(query, rule.nth(0), dns.rcode.NOERROR))]
    codes = {
        NxDomain: dns.rcode.NXDOMAIN,
        NoAnswer: dns.rcode.NOERROR,
        Refused: dns.rcode.REFUSED,
        ServFail: dns.rcode.SERVFAIL,
    }
    for kind, code in codes.items():
        if isinstance(rule, kind):
            return [(0.0, make_reply(query, None, code))]
    return []  # Drop


def parse(wire: bytes) -> dns.message.Message | None:
    """A standard query with one question, or None for anything a server should ignore."""
    try:
        message = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, struct.error):
        return None
    if message.flags & dns.flags.QR or message.opcode() != dns.opcode.QUERY or len(message.question) != 1:
        return None
    return message


def query_name(query: dns.message.Message) -> str:
    return query.question[0].name.to_text(omit_final_dot=True).lower()
