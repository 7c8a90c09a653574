"""A resolver that lies per name, over UDP and TCP, and the rule language
shared with the DoH control (``probe.testbed.doh``).

Rules are looked up by exact (lower-case) query name; unknown names get the
default rule. ``Drop`` never answers; ``Inject`` answers twice, as an
on-path injector racing the genuine resolver does. Garbage is ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from probe.testbed.connections import Tasks, cancel_all, tracked


@dataclass(frozen=True)
class Answer:
    addresses: list[str]


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
    first: list[str]
    second: list[str]
    delay: float = 0.02


Rule = Answer | NxDomain | NoAnswer | Refused | ServFail | Drop | Inject


def _reply(
    query: dns.message.Message, addresses: list[str] | None, rcode: dns.rcode.Rcode
) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    question = query.question[0]
    if addresses:
        family = 4 if question.rdtype == dns.rdatatype.A else 6
        matching = [a for a in addresses if ipaddress.ip_address(a).version == family]
        if matching:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, matching)
            )
    return response


def respond(
    query: dns.message.Message, rules: dict[str, Rule], default: Rule
) -> list[tuple[float, dns.message.Message]]:
    """The replies to send, each with its delay; empty for a dropped query."""
    if not query.question:
        return []
    name = query.question[0].name.to_text(omit_final_dot=True).lower()
    rule = rules.get(name, default)
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
    try:
        return dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, struct.error):
        return None


@dataclass
class _Udp(asyncio.DatagramProtocol):
    server: DnsServer
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = parse(data)
        if query is None or self.transport is None:
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
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


@dataclass
class DnsServer:
    rules: dict[str, Rule]
    default: Rule = field(default_factory=NxDomain)
    host: str = "127.0.0.1"
    port: int = 0
    queries: dict[str, int] = field(default_factory=dict)

    def count(self, query: dns.message.Message) -> None:
        if query.question:
            name = query.question[0].name.to_text(omit_final_dot=True).lower()
            self.queries[name] = self.queries.get(name, 0) + 1

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def __aenter__(self) -> DnsServer:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=(self.host, self.port)
        )
        self._clients: Tasks = set()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._udp.close()
        self._tcp.close()
        await cancel_all(self._clients)
        await self._tcp.wait_closed()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with tracked(self._clients, writer):
            while True:
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
