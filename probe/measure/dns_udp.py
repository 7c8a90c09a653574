"""One DNS query over UDP on a socket of its own: every copy sent, every reply kept.

The socket is connected to the resolver, so the kernel drops datagrams from
anyone else (an on-path injector spoofs the resolver's address, and those
we want). It is driven by the event loop's reader callback rather than
dnspython's asyncio backend, which builds a datagram transport and a
``wait_for`` per receive: more CPU than the query itself when a cycle asks
2,000 of them. dnspython still parses every reply (``from_wire``), because
a hostile network decides what those bytes are.

After the first reply the socket stays open for ``window`` seconds and later
replies are collected without a task: a timer closes it and resolves the
``late`` future.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rdatatype

from probe.measure.trace import Trace
from probe.model import DnsReply, TraceEvent
from probe.vocab import Operation

UDP_TRANSMISSIONS = 3
MAX_LATE_REPLIES = 16  # a flood of forged replies is evidence enough after a few
_RD = 0x0100


def query_wire(qid: int, hostname: str, rdtype: int) -> bytes:
    """The query dnspython's make_query would send (RD set, no EDNS), without building a Message."""
    labels = hostname.rstrip(".").split(".")
    qname = b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\0"
    return struct.pack("!HHHHHH", qid, _RD, 1, 0, 0, 0) + qname + struct.pack("!HH", rdtype, 1)


class UdpQuery:
    def __init__(
        self,
        trace: Trace,
        transaction: int,
        destination: tuple[str, int],
        hostname: str,
        qtype: str,
        summarize: Callable[[dns.message.Message], tuple[str, tuple[str, ...]]],
        registry: set[UdpQuery],
    ) -> None:
        self.trace = trace
        self.transaction = transaction
        self.destination = destination
        self.rdtype = dns.rdatatype.from_text(qtype)
        self.qid = random.getrandbits(16)
        self.wire = query_wire(self.qid, hostname, self.rdtype)
        # A reply repeats our question section: compared as bytes (case-blind, for
        # resolvers that randomise case), before anything is parsed.
        self.question = self.wire[12:].lower()
        self.summarize = summarize  # reply -> (rcode, addresses), for late replies
        self.sent: list[float] = []
        self.reply: dns.message.Message | None = None
        self.late_replies: list[DnsReply] = []
        self._error: OSError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in destination[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self._open = True
        self._registry = registry
        registry.add(self)
        try:
            self.sock.connect(destination)
        except OSError:
            self.close()
            raise
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def _event(self, operation: Operation, t: float, detail: str) -> None:
        host, port = self.destination
        self.trace.append(
            TraceEvent(operation, self.transaction, t, 0.0, None, None, host, port, detail=detail)
        )

    def _parse(self, data: bytes) -> dns.message.Message | None:
        end = 12 + len(self.question)
        if data[:2] != self.wire[:2] or data[4:6] != b"\x00\x01" or data[12:end].lower() != self.question:
            return None  # not a reply to this query: another id, another question
        try:
            message = dns.message.from_wire(data)
        except Exception:  # garbage from a hostile network is dropped, as a stub resolver drops it
            return None
        return message if message.flags & dns.flags.QR else None

    def _readable(self) -> None:
        while self._open:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error for an earlier copy, reported on this socket
                self._error = exc
                self._wake()
                return
            message = self._parse(data)
            if message is None:
                continue
            t = self.trace.now()
            if self.reply is None:
                self._event(Operation.DNS_REPLY, t, "first")
                self.reply = message
                self._wake()
            elif len(self.late_replies) < MAX_LATE_REPLIES:
                self._event(Operation.DNS_REPLY, t, "late")
                rcode, addresses = self.summarize(message)
                self.late_replies.append(DnsReply(rcode, addresses, t, len(self.sent)))

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def first(self, timeout: float) -> dns.message.Message:
        """Send up to UDP_TRANSMISSIONS copies within ``timeout``, as a stub resolver
        does: congestion loses a packet now and then, a censor that drops a name
        drops every copy. Any reply to any copy counts."""
        deadline = self._loop.time() + timeout
        for attempt in range(UDP_TRANSMISSIONS):
            self.sock.send(self.wire)
            self.sent.append(self.trace.now())
            self._event(Operation.DNS_SEND, self.sent[-1], f"copy {len(self.sent)}")
            last = attempt == UDP_TRANSMISSIONS - 1
            now = self._loop.time()
            wait = deadline - now if last else min(deadline - now, timeout / UDP_TRANSMISSIONS)
            self._waiter = self._loop.create_future()
            timer = self._loop.call_later(max(0.0, wait), self._wake)
            try:
                await self._waiter
            finally:
                timer.cancel()
            if self.reply is not None:
                return self.reply
            if self._error is not None:
                raise self._error
        raise dns.exception.Timeout

    def linger(self, window: float) -> asyncio.Future[tuple[DnsReply, ...]] | None:
        """Keep listening for ``window`` seconds; the future holds the late replies."""
        if window <= 0:
            self.close()
            return None
        late: asyncio.Future[tuple[DnsReply, ...]] = self._loop.create_future()

        def done() -> None:
            self.close()
            if not late.done():
                late.set_result(tuple(self.late_replies))

        timer = self._loop.call_later(window, done)

        def cancelled(_: asyncio.Future[tuple[DnsReply, ...]]) -> None:
            timer.cancel()
            self.close()

        late.add_done_callback(cancelled)
        return late

    def close(self) -> None:
        if self._open:
            self._open = False
            self._registry.discard(self)
            if self.sock.fileno() >= 0:
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
