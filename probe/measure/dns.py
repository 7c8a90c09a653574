"""DNS step: one query, one resolver, every reply recorded.

We call ``dns.asyncquery`` rather than the high-level resolver because the
resolver retries, falls back and swallows per-attempt rcodes, and here the
rcode (or the silence) *is* the measurement. Over UDP the socket stays open
for ``window`` seconds after the first reply: an on-path injector answers
first and the genuine resolver up to a few hundred milliseconds later
(OONI listens 500 ms), so a second reply to one query is a lead. That
listening happens in a task (``late``) while the endpoint's TCP/TLS/HTTP
steps go on; the endpoint awaits or cancels it, it never outlives the cycle.

Every transmission is recorded, and each reply says how many copies had
been sent when it arrived: a resolver whose first copy misses its cache and
whose retransmitted copy hits it answers twice, differently, with no
censor anywhere, so replies after a retransmission never prove injection.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

import aiohttp
import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from probe.config.model import ResolverSpec
from probe.measure.dns_udp import UdpQuery
from probe.measure.trace import Trace
from probe.model import DnsObservation, DnsReply
from probe.vocab import Failure, Operation, Purpose

Late = asyncio.Future[tuple[DnsReply, ...]] | None
MAX_CNAME_HOPS = 4  # queries after the first one to follow a chain the resolver left unanswered
MAX_IN_FLIGHT = 256


@dataclass(frozen=True, slots=True)
class DnsTarget:
    """A resolver made concrete: ``system`` is read from /etc/resolv.conf once per cycle."""

    spec: ResolverSpec
    transport: str
    host: str
    port: int


class SystemResolver:
    """The first nameserver of resolv.conf, parsed again only when the file changes
    (DHCP rewrites it; parsing it every cycle was measurable work for nothing)."""

    def __init__(self, resolv_conf: str = "/etc/resolv.conf") -> None:
        self.path = resolv_conf
        self._stamp: int | None = None
        self._host: str | None = None

    def host(self) -> str | None:
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            self._stamp = self._host = None
            return None
        if stamp != self._stamp:
            try:
                nameservers = dns.resolver.Resolver(filename=self.path, configure=True).nameservers
            except (OSError, dns.resolver.NoResolverConfiguration):
                nameservers = []
            self._stamp, self._host = stamp, next((str(n) for n in nameservers), None)
        return self._host


def concrete(spec: ResolverSpec, system: SystemResolver) -> DnsTarget | None:
    """None when ``system`` names no nameserver: the probe cannot measure DNS at all."""
    if spec.transport == "system":
        host = system.host()
        return DnsTarget(spec, "udp", host, 53) if host else None
    return DnsTarget(spec, spec.transport, spec.host, spec.port)


def _chain(message: dns.message.Message) -> list[dns.name.Name]:
    """The queried name and the CNAMEs it leads to inside this answer (bounded)."""
    if not message.question:
        return []
    names = [message.question[0].name]
    for _ in range(8):
        nxt = next(
            (
                rdata.target
                for rrset in message.answer
                if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == names[-1]
                for rdata in rrset
            ),
            None,
        )
        if nxt is None or nxt in names:
            break
        names.append(nxt)
    return names


def _addresses(message: dns.message.Message, qtype: str) -> tuple[str, ...]:
    """Only records owned by the queried name or its CNAME chain: an A record
    for an unrelated name in the answer section is not an answer."""
    wanted = dns.rdatatype.from_text(qtype)
    owners = set(_chain(message))
    return tuple(
        rdata.to_text()
        for rrset in message.answer
        if rrset.rdtype == wanted and rrset.name in owners
        for rdata in rrset
    )


def _cnames(message: dns.message.Message) -> tuple[str, ...]:
    return tuple(n.to_text(omit_final_dot=True) for n in _chain(message)[1:])


def _failure_for(message: dns.message.Message, addresses: tuple[str, ...]) -> Failure | None:
    rcode = message.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Failure.DNS_NXDOMAIN
    if rcode == dns.rcode.REFUSED:
        return Failure.DNS_REFUSED
    if rcode == dns.rcode.SERVFAIL:
        return Failure.DNS_SERVER_FAILURE
    if rcode != dns.rcode.NOERROR:
        return Failure.UNKNOWN
    return None if addresses else Failure.DNS_NO_ANSWER


class DnsQuery:
    """Shared per-cycle pieces: the timeouts and the DoH session."""

    def __init__(
        self,
        *,
        timeout: float,
        window: float,
        doh_session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.timeout = timeout
        self.window = window
        self.doh_session = doh_session
        # Every UDP socket still open (lingering for late replies): a cycle that is
        # cancelled, or a toolkit that closes, closes them all.
        self.open: set[UdpQuery] = set()
        # Queries awaiting their first reply, at most: a burst of 2,000 at once
        # overflows a resolver's socket buffer (a home router's first), and the
        # lost copies cost a retransmission timeout each.
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    def close(self) -> None:
        for query in list(self.open):
            query.close()

    async def __call__(
        self, trace: Trace, hostname: str, qtype: str, target: DnsTarget, role: str
    ) -> tuple[DnsObservation, Late]:
        """The observation of the first reply, and (UDP) the future of late replies."""
        async with self.in_flight:  # waiting for a slot is not part of the measured query
            observation, late = await self._query(trace, hostname, qtype, target, role)
        return await self._follow(trace, observation, target), late

    async def _follow(self, trace: Trace, observation: DnsObservation, target: DnsTarget) -> DnsObservation:
        """A CNAME with no address: ask for the chain's last name, a few links at most.

        Some resolvers answer only the first link of a chain; read alone, that
        answer is an empty NOERROR and would pass for a ``dns.no_answer``
        block. Each follow-up is its own recorded query; a chain that loops
        or runs past ``MAX_CNAME_HOPS`` stays the unanswered chain it is.
        """
        seen = {observation.hostname.lower()}
        for _ in range(MAX_CNAME_HOPS):
            if observation.addresses or observation.failure is not Failure.DNS_NO_ANSWER:
                break
            if not observation.cnames or observation.cnames[-1].lower() in seen:
                break
            name = observation.cnames[-1]
            seen.add(name.lower())
            async with self.in_flight:
                link, late = await self._query(trace, name, observation.qtype, target, observation.role)
            if late is not None:
                late.cancel()  # injection is judged on the first query of a name, not on its links
            observation = replace(
                observation,
                duration=link.started + link.duration - observation.started,
                failure=link.failure,
                error=link.error,
                rcode=link.rcode,
                addresses=link.addresses,
                cnames=observation.cnames + link.cnames,
            )
        return observation

    async def _query(
        self, trace: Trace, hostname: str, qtype: str, target: DnsTarget, role: str
    ) -> tuple[DnsObservation, Late]:
        transaction = trace.transaction()
        late: Late = None
        udp: UdpQuery | None = None
        response: dns.message.Message | None = None
        with trace.op(
            Operation.DNS_QUERY,
            transaction=transaction,
            address=target.host,
            port=target.port,
            purpose=_purpose(role),
            detail=f"{hostname} {qtype} via {target.spec.raw}",
        ) as op:
            # A little slack over the per-transmission deadlines, which end the query themselves.
            async with asyncio.timeout(self.timeout + 0.25):
                if target.transport == "udp":
                    udp = UdpQuery(
                        trace,
                        transaction,
                        (target.host, target.port),
                        hostname,
                        qtype,
                        _summary(qtype),
                        self.open,
                    )
                    try:
                        response = await udp.first(self.timeout)
                    finally:
                        if response is None:
                            udp.close()
                    late = udp.linger(self.window)
                    if response.flags & dns.flags.TC:
                        query = dns.message.make_query(hostname, qtype)
                        response = await dns.asyncquery.tcp(query, target.host, port=target.port)
                elif target.transport == "tcp":
                    query = dns.message.make_query(hostname, qtype)
                    response = await dns.asyncquery.tcp(query, target.host, port=target.port)
                else:
                    response = await self._doh(dns.message.make_query(hostname, qtype), target)
        observation = DnsObservation(
            hostname=hostname,
            qtype=qtype,
            resolver=target.spec.raw,
            transport=target.transport,
            role=role,
            started=op.started,
            duration=op.duration,
            failure=op.failure,
            error=op.error,
            transmissions=max(1, len(udp.sent)) if udp else 1,
        )
        if response is None:
            return observation, late
        addresses = _addresses(response, qtype)
        return replace(
            observation,
            failure=_failure_for(response, addresses),
            rcode=dns.rcode.to_text(response.rcode()),
            addresses=addresses,
            cnames=_cnames(response),
        ), late

    async def _doh(self, query: dns.message.Message, target: DnsTarget) -> dns.message.Message:
        # DoH over aiohttp (RFC 8484 POST) instead of dnspython's https(), which
        # would pull in httpx as a second HTTP stack next to aiohttp.
        if self.doh_session is None:
            raise RuntimeError("no DoH session")
        query.id = 0  # RFC 8484 §4.1: cache-friendly
        async with self.doh_session.post(
            target.spec.url,
            data=query.to_wire(),
            headers={"content-type": "application/dns-message", "accept": "application/dns-message"},
        ) as response:
            if response.status != 200:
                raise DohStatusError(f"DoH server answered HTTP {response.status}")
            body = await response.content.read(65536)
        return dns.message.from_wire(body)


class DohStatusError(aiohttp.ClientError):
    """A DoH server that answers, but not with a DNS message: a network fact."""


def _summary(qtype: str) -> Callable[[dns.message.Message], tuple[str, tuple[str, ...]]]:
    def summarize(message: dns.message.Message) -> tuple[str, tuple[str, ...]]:
        return dns.rcode.to_text(message.rcode()), _addresses(message, qtype)

    return summarize


def _purpose(role: str) -> Purpose:
    return Purpose.CANARY if role == "canary" else Purpose.CHECK
