"""DNS step: one query, one resolver, every reply recorded.

We call ``dns.asyncquery`` rather than the high-level resolver because the
resolver retries, falls back and swallows per-attempt rcodes, and here the
rcode (or the silence) *is* the measurement. Over UDP the socket stays open
for ``window`` seconds after the first reply: an on-path injector answers
first and the genuine resolver a few milliseconds later, so a second reply
to one query is evidence of injection. That listening happens in the
background (``late``) while the endpoint's TCP/TLS/HTTP steps go on.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import aiohttp
import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from probe.config.model import ResolverSpec
from probe.measure.errors import classify
from probe.model import DnsObservation, DnsReply
from probe.vocab import Failure

Late = Awaitable[tuple[DnsReply, ...]] | None
UDP_TRANSMISSIONS = 3


@dataclass(frozen=True, slots=True)
class DnsTarget:
    """A resolver made concrete: ``system`` is read from /etc/resolv.conf once per cycle."""

    spec: ResolverSpec
    transport: str
    host: str
    port: int


def system_target(spec: ResolverSpec, resolv_conf: str = "/etc/resolv.conf") -> DnsTarget | None:
    try:
        nameservers = dns.resolver.Resolver(filename=resolv_conf, configure=True).nameservers
    except (OSError, dns.resolver.NoResolverConfiguration):
        return None
    first = next((str(n) for n in nameservers), None)
    return DnsTarget(spec, "udp", first, 53) if first else None


def concrete(spec: ResolverSpec) -> DnsTarget | None:
    if spec.transport == "system":
        return system_target(spec)
    return DnsTarget(spec, spec.transport, spec.host, spec.port)


def _addresses(message: dns.message.Message, qtype: str) -> tuple[str, ...]:
    wanted = dns.rdatatype.from_text(qtype)
    return tuple(rdata.to_text() for rrset in message.answer if rrset.rdtype == wanted for rdata in rrset)


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
    """Shared per-cycle pieces: the clock, the DoH session and its TLS context."""

    def __init__(
        self,
        *,
        timeout: float,
        window: float,
        doh_session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.window = window
        self.doh_session = doh_session
        self.clock = clock

    async def __call__(
        self, hostname: str, qtype: str, target: DnsTarget, role: str, t0: float
    ) -> tuple[DnsObservation, Late]:
        """The observation of the first reply, and (UDP) the pending late replies."""
        query = dns.message.make_query(hostname, qtype)
        started = self.clock()
        late: Late = None
        try:
            # A little slack over the per-transmission deadlines, which end the query themselves.
            async with asyncio.timeout(self.timeout + 0.25):
                if target.transport == "udp":
                    response, late = await self._udp(query, target, started)
                    if response.flags & dns.flags.TC:
                        response = await dns.asyncquery.tcp(query, target.host, port=target.port)
                elif target.transport == "tcp":
                    response = await dns.asyncquery.tcp(query, target.host, port=target.port)
                else:
                    response = await self._doh(query, target)
        except Exception as exc:
            failure, error = classify(exc, keep=(target.host,))
            return self._observation(hostname, qtype, target, role, t0, started, failure, error), late
        addresses = _addresses(response, qtype)
        observation = self._observation(
            hostname, qtype, target, role, t0, started, _failure_for(response, addresses), None
        )
        rcode = dns.rcode.to_text(response.rcode())
        return _with_answer(observation, rcode, addresses), late

    def _observation(
        self,
        hostname: str,
        qtype: str,
        target: DnsTarget,
        role: str,
        t0: float,
        started: float,
        failure: Failure | None,
        error: str | None,
    ) -> DnsObservation:
        return DnsObservation(
            hostname=hostname,
            qtype=qtype,
            resolver=target.spec.raw,
            transport=target.transport,
            role=role,
            started=started - t0,
            duration=self.clock() - started,
            failure=failure,
            error=error,
        )

    async def _udp(
        self, query: dns.message.Message, target: DnsTarget, started: float
    ) -> tuple[dns.message.Message, Late]:
        backend = dns.asyncbackend.get_backend("asyncio")
        family = dns.inet.af_for_address(target.host)
        sock = await backend.make_socket(family, socket.SOCK_DGRAM)  # type: ignore[no-untyped-call]
        destination = (target.host, target.port)
        try:
            response = await self._transmit(sock, query, destination)
        except BaseException:
            await sock.close()
            raise
        if self.window <= 0:
            await sock.close()
            return response, None
        listener = asyncio.ensure_future(self._listen(sock, destination, query, started))
        return response, listener

    async def _transmit(
        self, sock: Any, query: dns.message.Message, destination: tuple[str, int]
    ) -> dns.message.Message:
        """Send the query up to UDP_TRANSMISSIONS times within the timeout, as a
        stub resolver does: congestion loses a packet now and then, a censor
        that drops a name drops every copy. Any reply to any copy counts."""
        deadline = time.time() + self.timeout
        for attempt in range(UDP_TRANSMISSIONS):
            await dns.asyncquery.send_udp(sock, query, destination)
            last = attempt == UDP_TRANSMISSIONS - 1
            wait_until = deadline if last else min(deadline, time.time() + self.timeout / UDP_TRANSMISSIONS)
            try:
                # ignore_errors drops garbage and mismatched packets instead of
                # failing the query: a hostile network can send us anything.
                response, _, _ = await dns.asyncquery.receive_udp(
                    sock, destination, wait_until, ignore_unexpected=True, ignore_errors=True, query=query
                )
                return cast(dns.message.Message, response)
            except dns.exception.Timeout:
                if last:
                    raise
        raise dns.exception.Timeout

    async def _listen(
        self,
        sock: Any,
        destination: tuple[str, int],
        query: dns.message.Message,
        started: float,
    ) -> tuple[DnsReply, ...]:
        replies: list[DnsReply] = []
        expiration = time.time() + self.window
        try:
            while True:
                message, _, _ = await dns.asyncquery.receive_udp(
                    sock, destination, expiration, ignore_unexpected=True, ignore_errors=True, query=query
                )
                qtype = dns.rdatatype.to_text(query.question[0].rdtype)
                replies.append(
                    DnsReply(
                        dns.rcode.to_text(message.rcode()),
                        _addresses(message, qtype),
                        self.clock() - started,
                    )
                )
        except (dns.exception.Timeout, TimeoutError, OSError):
            pass
        finally:
            await sock.close()
        return tuple(replies)

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


class DohStatusError(Exception):
    pass


def _with_answer(observation: DnsObservation, rcode: str, addresses: tuple[str, ...]) -> DnsObservation:
    return replace(observation, rcode=rcode, addresses=addresses)
