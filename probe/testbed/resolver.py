"""A resolver that lies per name, over UDP and TCP, and the rule language
shared with the DoH control (``probe.testbed.doh``).

Rules are looked up by exact query name, case-insensitively (keys are
written lower-case, without the final dot); unknown names get the default
rule. ``Answer`` gives A queries its IPv4 addresses and AAAA queries its
IPv6 ones (an empty NOERROR when the family has none); any other type gets
an empty NOERROR. ``Drop`` never answers; ``Inject`` answers twice, as an
on-path injector racing the genuine resolver does. Anything that is not a
one-question query (garbage, a response, an update) is ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import struct
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from probe.testbed.connections import Tasks, cancel_all, tracked


def _check_addresses(addresses: list[str]) -> None:
    for address in addresses:
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
class Inject:
    """The injector's reply (``first``) at once, the genuine one (``second``) ``delay`` s later.

    Over TCP, where no injector can race the resolver, both arrive on the
    stream in that order."""

    first: list[str]
    second: list[str]
    delay: float = 0.02

    def __post_init__(self) -> None:
        _check_addresses(self.first + self.second)


Rule = Answer | NxDomain | NoAnswer | Refused | ServFail | Drop | Inject


def _reply(
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
        return [(0.0, _reply(query, rule.addresses, dns.rcode.NOERROR))]
    if isinstance(rule, Inject):
        return [
            (0.0, _reply(query, rule.first, dns.rcode.NOERROR)),
            (rule.delay, _reply(query, rule.second, dns.rcode.NOERROR)),
        ]
    codes = {
        NxDomain: dns.rcode.NXDOMAIN,
        NoAnswer: dns.rcode.NOERROR,
        Refused: dns.rcode.REFUSED,
        ServFail: dns.rcode.SERVFAIL,
    }
    for kind, code in codes.items():
        if isinstance(rule, kind):
            return [(0.0, _reply(query, None, code))]
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


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = parse(data)
        if query is None:
            return
        self.server.count(query)
        loop = asyncio.get_running_loop()
        for delay, reply in respond(query, self.server.rules, self.server.default):
            wire = reply.to_wire()
            if delay:
                loop.call_later(delay, self._send, wire, addr)
            else:
                self._send(wire, addr)

    def _send(self, wire: bytes, addr: tuple[str, int]) -> None:
        # A delayed reply may come due after the server closed: then it is dropped.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


@dataclass
class DnsServer:
    """The network's resolver, on UDP and TCP at the same (host, port).

    ``rules`` may be changed while it serves; ``queries`` counts the queries
    seen per name (lower-case, no final dot), over both transports."""

    rules: dict[str, Rule]
    default: Rule = field(default_factory=NxDomain)
    host: str = "127.0.0.1"
    port: int = 0
    queries: dict[str, int] = field(default_factory=dict)

    def count(self, query: dns.message.Message) -> None:
        name = query_name(query)
        self.queries[name] = self.queries.get(name, 0) + 1

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def __aenter__(self) -> DnsServer:
        self._clients: Tasks = set()
        # Port 0 picks a port free for TCP, which some UDP socket may hold: pick again.
        for attempt in itertools.count(1):
            try:
                await self._bind()
                return self
            except OSError:
                if self.port or attempt == 20:
                    raise
        raise AssertionError("unreachable")

    async def _bind(self) -> None:
        self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port, backlog=1024)
        port = self._tcp.sockets[0].getsockname()[1]
        try:
            self._udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, port)
            )
        except OSError:
            self._tcp.close()
            await self._tcp.wait_closed()
            raise
        self.port = port

    async def __aexit__(self, *exc: object) -> None:
        self._udp.close()
        self._tcp.close()
        await cancel_all(self._clients)
        await self._tcp.wait_closed()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with tracked(self._clients, writer):
            while True:  # RFC 7766: several queries may share one connection
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                query = parse(await reader.readexactly(size))
                if query is None:
                    break
                self.count(query)
                for delay, reply in respond(query, self.rules, self.default):
                    await asyncio.sleep(delay)
                    wire = reply.to_wire()
                    writer.write(struct.pack("!H", len(wire)) + wire)
                    await writer.drain()
