"""A resolver that lies per name, over UDP and TCP, and the rule language
shared with the DoH control (``probe.testbed.doh``).

Rules are looked up by exact query name, case-insensitively (keys are
written lower-case, without the final dot); unknown names get the default
rule. ``Answer`` gives A queries its IPv4 addresses and AAAA queries its
IPv6 ones (an empty NOERROR when the family has none); any other type gets
an empty NOERROR. ``Drop`` never answers; ``Inject`` answers twice, as an
on-path injector racing the genuine resolver does; ``SlowRoundRobin`` is an
honest but slow recursive resolver in front of a name whose answer rotates.
Anything that is not a one-question query (garbage, a response, an update)
is ignored.

Delayed replies are timers on the loop, never a sleeping reader: a slow or
injected name holds up no other query, on UDP or on a shared TCP stream
(RFC 7766 lets replies come out of order). At most ``MAX_PENDING`` delayed
replies and remembered queries are held; beyond that new ones are dropped,
as an overloaded resolver drops them.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from probe.testbed.connections import Tasks, cancel_all, tracked

MAX_PENDING = 8192  # delayed replies plus remembered queries, per server
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
            (0.0, _reply(query, rule.forged, dns.rcode.NOERROR)),
            (rule.delay, _reply(query, rule.genuine, dns.rcode.NOERROR)),
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
        return [(rule.delay, _reply(query, rule.nth(0), dns.rcode.NOERROR))]
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


Write = Callable[[bytes], None]


class _Client:
    """Where one query's replies go (a UDP peer, a TCP stream), and how many are still due."""

    def __init__(self, peer: object, write: Write) -> None:
        self.peer = peer
        self.write = write
        self.due = 0
        self.idle = asyncio.Event()
        self.idle.set()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = parse(data)
        if query is not None:
            self.server.handle(query, _Client(addr, lambda wire: self._send(wire, addr)))

    def _send(self, wire: bytes, addr: tuple[str, int]) -> None:
        # A delayed reply may come due after the server closed: then it is dropped.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


@dataclass
class _Recursion:
    """A slow resolver's memory of one query: how many replies it has sent."""

    sent: int = 0

    def reply(self, rule: SlowRoundRobin, query: dns.message.Message) -> dns.message.Message:
        self.sent += 1
        return _reply(query, rule.nth(self.sent - 1), dns.rcode.NOERROR)


def _same(reply: dns.message.Message) -> dns.message.Message:
    return reply


@dataclass
class DnsServer:
    """The network's resolver, on UDP and TCP at the same (host, port).

    ``rules`` may be changed while it serves; ``queries`` counts the queries
    seen per name (lower-case, no final dot), over both transports, every
    retransmitted copy included; ``pending`` is how many delayed replies are
    still due."""

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

    @property
    def pending(self) -> int:
        return self._due

    def handle(self, query: dns.message.Message, client: _Client) -> None:
        """Reply to ``query`` now or later; never waits."""
        self.count(query)
        rule = self.rules.get(query_name(query), self.default)
        if isinstance(rule, SlowRoundRobin):
            self._recurse(rule, query, client)
            return
        for delay, reply in respond(query, self.rules, self.default):
            if delay:
                self._reply_later(delay, client, functools.partial(_same, reply))
            else:
                client.write(reply.to_wire())

    def _recurse(self, rule: SlowRoundRobin, query: dns.message.Message, client: _Client) -> None:
        key = (client.peer, query.id, query_name(query), query.question[0].rdtype)
        seen = self._recursions.get(key)
        if seen is not None:  # a retransmission: the cache now holds the answer
            client.write(seen.reply(rule, query).to_wire())
            return
        if len(self._timers) + 2 > MAX_PENDING:
            return
        recursion = self._recursions[key] = _Recursion()

        def forget() -> None:
            if self._recursions.get(key) is recursion:
                del self._recursions[key]

        self._reply_later(rule.delay, client, functools.partial(recursion.reply, rule, query))
        self._later(rule.delay + REMEMBER, forget)

    def _reply_later(self, delay: float, client: _Client, reply: Callable[[], dns.message.Message]) -> None:
        def send() -> None:
            self._due -= 1
            client.due -= 1
            if not client.due:
                client.idle.set()
            client.write(reply().to_wire())

        if self._later(delay, send):
            self._due += 1
            client.due += 1
            client.idle.clear()

    def _later(self, delay: float, callback: Callable[[], None]) -> bool:
        if len(self._timers) >= MAX_PENDING:
            return False

        def fire() -> None:
            self._timers.discard(handle)
            callback()

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)
        return True

    async def __aenter__(self) -> DnsServer:
        self._clients: Tasks = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._recursions: dict[object, _Recursion] = {}
        self._due = 0
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
            # A real resolver's buffer: a probe's burst of queries is served, not dropped.
            sock = self._udp.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            self._tcp.close()
            await self._tcp.wait_closed()
            raise
        self.port = port

    async def __aexit__(self, *exc: object) -> None:
        self._udp.close()
        self._tcp.close()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._recursions.clear()
        self._due = 0
        await cancel_all(self._clients)
        await self._tcp.wait_closed()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def write(wire: bytes) -> None:
            if not writer.is_closing():
                writer.write(struct.pack("!H", len(wire)) + wire)

        client = _Client(writer.get_extra_info("peername"), write)
        async with tracked(self._clients, writer):
            while True:  # RFC 7766: several queries may share one connection
                try:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                except asyncio.IncompleteReadError:
                    break  # the client has sent all it will: finish the replies still due
                query = parse(await reader.readexactly(size))
                if query is None:
                    return
                self.handle(query, client)
                await writer.drain()
            await client.idle.wait()
