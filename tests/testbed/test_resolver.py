"""The lying resolver, asked by dnspython's plain query functions and raw sockets."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from probe.testbed.resolver import (
    Answer,
    DnsServer,
    Drop,
    Inject,
    NoAnswer,
    NxDomain,
    Refused,
    Rule,
    ServFail,
)
from tests.testbed.loop import HOST, OTHER_HOST, run

Query = Callable[..., Awaitable[dns.message.Message]]
TRANSPORTS: dict[str, Query] = {"udp": dns.asyncquery.udp, "tcp": dns.asyncquery.tcp}


async def ask(
    server: DnsServer, name: str, rdtype: str = "A", transport: str = "udp", timeout: float = 1.0
) -> dns.message.Message:
    host, port = server.address
    query = dns.message.make_query(name, rdtype)
    return await TRANSPORTS[transport](query, host, port=port, timeout=timeout)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in response.answer for rdata in rrset)


RULES: dict[str, Rule] = {
    "dual.test": Answer(["127.0.0.9", "10.0.0.1", "::1"]),
    "v4only.test": Answer(["127.0.0.9"]),
    "nx.test": NxDomain(),
    "empty.test": NoAnswer(),
    "refused.test": Refused(),
    "servfail.test": ServFail(),
    "drop.test": Drop(),
    "inject.test": Inject(["10.10.34.35"], ["127.0.0.9"], delay=0.05),
}


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "expected"),
    [
        ("dual.test", "A", dns.rcode.NOERROR, ["10.0.0.1", "127.0.0.9"]),
        ("dual.test", "AAAA", dns.rcode.NOERROR, ["::1"]),
        ("v4only.test", "AAAA", dns.rcode.NOERROR, []),
        ("dual.test", "MX", dns.rcode.NOERROR, []),
        ("dual.test", "HTTPS", dns.rcode.NOERROR, []),
        ("nx.test", "A", dns.rcode.NXDOMAIN, []),
        ("empty.test", "A", dns.rcode.NOERROR, []),
        ("refused.test", "A", dns.rcode.REFUSED, []),
        ("servfail.test", "A", dns.rcode.SERVFAIL, []),
        ("unknown.test", "A", dns.rcode.NXDOMAIN, []),
        ("DuAl.TeSt", "A", dns.rcode.NOERROR, ["10.0.0.1", "127.0.0.9"]),
    ],
)
def test_rules_answer_as_written(
    transport: str, name: str, rdtype: str, rcode: dns.rcode.Rcode, expected: list[str]
) -> None:
    async def body() -> dns.message.Message:
        async with DnsServer(dict(RULES), host=HOST) as server:
            return await ask(server, name, rdtype, transport)

    response = run(body)
    assert response.rcode() == rcode
    assert addresses(response) == expected
    if expected:
        assert response.answer[0].rdtype == dns.rdatatype.from_text(rdtype)


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_drop_never_answers(transport: str) -> None:
    async def body() -> None:
        async with DnsServer(dict(RULES), host=HOST) as server:
            with pytest.raises(dns.exception.Timeout):
                await ask(server, "drop.test", transport=transport, timeout=0.3)
            assert server.queries["drop.test"] == 1  # it was asked, it chose silence
            # ...while the same server answers other names at once.
            assert addresses(await ask(server, "v4only.test", transport=transport)) == ["127.0.0.9"]

    run(body)


def test_inject_sends_two_replies_to_one_udp_query() -> None:
    class Collect(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.replies: list[tuple[float, dns.message.Message]] = []

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.replies.append((time.monotonic(), dns.message.from_wire(data)))

    async def body() -> list[tuple[float, dns.message.Message]]:
        async with DnsServer(dict(RULES), host=HOST) as server:
            transport, client = await asyncio.get_running_loop().create_datagram_endpoint(
                Collect, remote_addr=server.address
            )
            query = dns.message.make_query("inject.test", "A")
            sent = time.monotonic()
            transport.sendto(query.to_wire())
            await asyncio.sleep(0.3)
            transport.close()
            return [(at - sent, reply) for at, reply in client.replies]

    replies = run(body)
    assert [addresses(r) for _, r in replies] == [["10.10.34.35"], ["127.0.0.9"]]
    assert replies[0][0] < 0.05 <= replies[1][0]
    assert all(r.id == replies[0][1].id for _, r in replies)


def test_inject_over_tcp_gives_both_answers_in_order() -> None:
    async def body() -> list[list[str]]:
        async with DnsServer(dict(RULES), host=HOST) as server:
            reader, writer = await asyncio.open_connection(*server.address)
            wire = dns.message.make_query("inject.test", "A").to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            out = []
            for _ in range(2):
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                out.append(addresses(dns.message.from_wire(await reader.readexactly(size))))
            writer.close()
            await writer.wait_closed()
            return out

    assert run(body) == [["10.10.34.35"], ["127.0.0.9"]]


def test_default_rule_rules_swapped_at_runtime_and_query_counts() -> None:
    async def body() -> None:
        async with DnsServer({}, default=Refused(), host=HOST) as server:
            assert (await ask(server, "anything.test")).rcode() == dns.rcode.REFUSED
            server.rules["anything.test"] = Answer(["127.0.0.7"])
            assert addresses(await ask(server, "Anything.test.", transport="tcp")) == ["127.0.0.7"]
            server.default = NxDomain()
            assert (await ask(server, "other.test")).rcode() == dns.rcode.NXDOMAIN
            assert server.queries == {"anything.test": 2, "other.test": 1}

    run(body)


def test_garbage_is_ignored_and_the_server_keeps_answering() -> None:
    rng = random.Random(8484)
    response = dns.message.make_response(dns.message.make_query("dual.test", "A")).to_wire()
    no_question = dns.message.Message().to_wire()
    garbage = [b"", b"\x00", rng.randbytes(11), rng.randbytes(600), response, no_question]

    async def body() -> None:
        async with DnsServer(dict(RULES), host=HOST) as server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for packet in garbage:
                    udp.sendto(packet, server.address)
                udp.settimeout(0.2)
                with pytest.raises(TimeoutError):
                    udp.recv(4096)  # nothing deserved an answer
            for packet in garbage[1:]:
                reader, writer = await asyncio.open_connection(*server.address)
                writer.write(struct.pack("!H", len(packet)) + packet)
                assert await reader.read() == b""  # hung up, no reply
                writer.close()
                await writer.wait_closed()
            # A length prefix promising more than ever comes, then a hang-up.
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(b"\x01\x00abc")
            writer.close()
            await writer.wait_closed()
            for transport in TRANSPORTS:
                assert addresses(await ask(server, "v4only.test", transport=transport)) == ["127.0.0.9"]
            assert server.queries == {"v4only.test": 2}

    run(body)


def test_two_servers_side_by_side_on_ephemeral_ports() -> None:
    async def body() -> None:
        async with (
            DnsServer({"x.test": Answer(["127.0.0.1"])}, host=HOST) as one,
            DnsServer({"x.test": Answer(["127.0.0.2"])}, host=OTHER_HOST) as two,
            DnsServer({"x.test": Answer(["127.0.0.3"])}, host=HOST) as three,
        ):
            assert len({one.address, two.address, three.address}) == 3
            got = [addresses(await ask(s, "x.test")) for s in (one, two, three)]
            assert got == [["127.0.0.1"], ["127.0.0.2"], ["127.0.0.3"]]

    run(body)


def test_closing_with_a_client_connected_and_a_reply_pending() -> None:
    async def body() -> None:
        async with DnsServer(dict(RULES), host=HOST) as server:
            reader, writer = await asyncio.open_connection(*server.address)
            wire = dns.message.make_query("inject.test", "A").to_wire()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(wire, server.address)  # its second reply is due after the close
        assert await reader.read() == b""  # the server hung up on its client
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.1)

    run(body)


def test_rules_reject_what_is_not_an_address() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        Answer(["127.0.0.300"])
    with pytest.raises(ValueError):
        Inject(["10.0.0.1"], ["genuine.test"])
