"""A stub resolver's view of the testbed's resolver: one UDP socket and one
query id, copies sent when the test says, every reply with its arrival time."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import dns.asyncbackend
import dns.asyncquery
import dns.message

from probe.testbed.resolver import DnsServer


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in response.answer for rdata in rrset)


@dataclass(frozen=True)
class Reply:
    at: float  # seconds after the first copy was sent
    addresses: list[str]
    message: dns.message.Message


class Stub:
    """``send()`` transmits a copy of the query (the same id every time), as
    the probe retransmits; ``reply(within)`` is the next reply to it, or
    dns.exception.Timeout when none comes ``within`` seconds."""

    def __init__(self, sock: Any, server: DnsServer, query: dns.message.Message) -> None:
        self.sock, self.server, self.query = sock, server, query
        self.first_sent: float | None = None

    async def send(self) -> None:
        await dns.asyncquery.send_udp(self.sock, self.query, self.server.address)
        if self.first_sent is None:
            self.first_sent = time.time()

    async def reply(self, within: float = 1.0) -> Reply:
        assert self.first_sent is not None, "send first"
        expiration = time.time() + within
        message, at, _ = await dns.asyncquery.receive_udp(
            self.sock, self.server.address, expiration, query=self.query
        )
        assert message.id == self.query.id
        return Reply(at - self.first_sent, addresses(message), message)


@contextlib.asynccontextmanager
async def stub(server: DnsServer, name: str, rdtype: str = "A") -> AsyncIterator[Stub]:
    sock = await dns.asyncbackend.get_backend("asyncio").make_socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        yield Stub(sock, server, dns.message.make_query(name, rdtype))
    finally:
        await sock.close()
