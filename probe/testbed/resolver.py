"""A resolver that lies per name, over UDP and TCP, by the rules of
``probe.testbed.dns_rules`` (re-exported here, where the tests import them).

Delayed replies are timers on the loop, never a sleeping reader: a slow or
injected name holds up no other query, on UDP or on a shared TCP stream
(RFC 7766 lets replies come out of order). At most ``MAX_PENDING`` delayed
replies and remembered queries are held; beyond that new ones are dropped,
as an overloaded resolver drops them.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import dns.message
import dns.rcode

from probe.testbed.connections import Tasks, cancel_all, tracked
from probe.testbed.dns_rules import (
    REMEMBER,
    Answer,
    Cname,
    Drop,
    Inject,
    NoAnswer,
    NxDomain,
    Refused,
    Rule,
    ServFail,
    SlowRoundRobin,
    Unrelated,
    make_reply,
    parse,
    query_name,
    respond,
)

__all__ = [
    "Answer",
    "Cname",
    "DnsServer",
    "Drop",
    "Inject",
    "NoAnswer",
    "NxDomain",
    "Refused",
    "Rule",
    "ServFail",
    "SlowRoundRobin",
    "Unrelated",
    "parse",
    "query_name",
    "respond",
]

MAX_PENDING = 8192  # delayed replies plus remembered queries, per server


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
        return make_reply(query, rule.nth(self.sent - 1), dns.rcode.NOERROR)


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
