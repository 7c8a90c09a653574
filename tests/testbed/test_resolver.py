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

from probe.testbed import resolver
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
    SlowRoundRobin,
)
from tests.testbed.loop import HOST, OTHER_HOST, run
from tests.testbed.stub import Reply, addresses, stub

Query = Callable[..., Awaitable[dns.message.Message]]
TRANSPORTS: dict[str, Query] = {"udp": dns.asyncquery.udp, "tcp": dns.asyncquery.tcp}


async def ask(
    server: DnsServer, name: str, rdtype: str = "A", transport: str = "udp", timeout: float = 1.0
) -> dns.message.Message:
    host, port = server.address
    query = dns.message.make_query(name, rdtype)
    return await TRANSPORTS[transport](query, host, port=port, timeout=timeout)


RULES: dict[str, Rule] = {
    "dual.test": Answer(["127.0.0.9", "10.0.0.1", "::1"]),
    "v4only.test": Answer(["127.0.0.9"]),
    "nx.test": NxDomain(),
    "empty.test": NoAnswer(),
    "refused.test": Refused(),
    "servfail.test": ServFail(),
    "drop.test": Drop(),
    "inject.test": Inject(["10.10.34.35"], ["127.0.0.9"], delay=0.05),
    "onpath.test": Inject(["198.51.100.7"], ["127.0.0.9"]),  # the default 300 ms race
    "cdn.test": SlowRoundRobin(["127.0.0.21", "127.0.0.22"]),
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
    async def body() -> tuple[Reply, Reply]:
        async with DnsServer(dict(RULES), host=HOST) as server, stub(server, "inject.test") as client:
            await client.send()
            return await client.reply(), await client.reply()

    forged, genuine = run(body)
    assert (forged.addresses, genuine.addresses) == (["10.10.34.35"], ["127.0.0.9"])
    assert forged.at < 0.05 <= genuine.at < 0.5


def test_on_path_injector_races_the_genuine_reply_by_300_ms() -> None:
    async def body() -> tuple[Reply, Reply, int]:
        async with DnsServer(dict(RULES), host=HOST) as server, stub(server, "onpath.test") as client:
            await client.send()
            forged, genuine = await client.reply(), await client.reply(within=2.0)
            return forged, genuine, server.queries["onpath.test"]

    forged, genuine, transmissions = run(body)
    assert transmissions == 1  # both replies answer the one transmission
    assert forged.addresses == ["198.51.100.7"]
    assert genuine.addresses == ["127.0.0.9"]
    assert forged.at < 0.1
    assert 0.3 <= genuine.at < 0.8


def test_slow_round_robin_answers_a_retransmission_at_once_and_the_original_late() -> None:
    # The probe's schedule: a copy every timeout/3 (4 s: 1.33 s) on one socket, same id.
    async def body() -> tuple[Reply, Reply, int, int]:
        async with DnsServer(dict(RULES), host=HOST) as server, stub(server, "cdn.test") as client:
            await client.send()
            with pytest.raises(dns.exception.Timeout):
                await client.reply(within=1.3)  # the cache miss: silence until the retransmission
            await client.send()
            hit = await client.reply(within=0.5)  # the copy: the answer is cached now
            late = await client.reply(within=1.0)  # the original's answer, due at 1.5 s
            return hit, late, server.queries["cdn.test"], server.pending

    hit, late, transmissions, pending = run(body)
    assert (hit.addresses, late.addresses) == (["127.0.0.21"], ["127.0.0.22"])  # both genuine
    assert 1.3 <= hit.at < 1.45
    assert 1.5 <= late.at < 2.0
    assert (transmissions, pending) == (2, 0)  # nothing more will come


def test_slow_round_robin_gives_a_single_copy_exactly_one_late_reply() -> None:
    async def body() -> tuple[Reply, int]:
        async with DnsServer(dict(RULES), host=HOST) as server, stub(server, "cdn.test") as client:
            await client.send()
            return await client.reply(within=3.0), server.pending

    reply, pending = run(body)
    assert reply.addresses == ["127.0.0.21"]
    assert 1.5 <= reply.at < 2.2
    assert pending == 0  # no other reply is due: exactly one


def test_slow_and_injected_names_hold_up_no_other_query() -> None:
    async def body() -> None:
        async with DnsServer(dict(RULES), host=HOST) as server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for name in ("cdn.test", "onpath.test"):
                    udp.sendto(dns.message.make_query(name, "A").to_wire(), server.address)
                # Over TCP too, on one stream: the slow query first, then a quick one.
                reader, writer = await asyncio.open_connection(*server.address)
                for name in ("cdn.test", "v4only.test"):
                    wire = dns.message.make_query(name, "A").to_wire()
                    writer.write(struct.pack("!H", len(wire)) + wire)
                started = time.monotonic()
                for transport in TRANSPORTS:
                    assert addresses(await ask(server, "v4only.test", transport=transport)) == ["127.0.0.9"]
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                first_on_stream = dns.message.from_wire(await reader.readexactly(size))
                assert time.monotonic() - started < 0.5
                assert addresses(first_on_stream) == ["127.0.0.9"]  # out of order, as RFC 7766 allows
                assert server.pending == 3  # the two slow ones and the injector's genuine reply
                writer.close()
                await writer.wait_closed()

    run(body)


def test_slow_round_robin_over_tcp_answers_once_late() -> None:
    async def body() -> tuple[float, list[str]]:
        async with DnsServer(dict(RULES), host=HOST) as server:
            started = time.monotonic()
            reply = await ask(server, "cdn.test", transport="tcp", timeout=3.0)
            return time.monotonic() - started, addresses(reply)

    at, got = run(body)
    assert got == ["127.0.0.21"]
    assert 1.5 <= at < 2.2


def test_delayed_replies_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolver, "MAX_PENDING", 4)  # a slow query holds two timers: its reply, its memory

    async def body() -> None:
        async with DnsServer(dict(RULES), host=HOST) as server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for query_id in range(5):  # five distinct queries, not copies of one
                    query = dns.message.make_query("cdn.test", "A", id=query_id)
                    udp.sendto(query.to_wire(), server.address)
            async with stub(server, "onpath.test") as client:
                await client.send()
                forged = await client.reply()  # the injector still races...
            assert forged.addresses == ["198.51.100.7"]
            assert server.queries == {"cdn.test": 5, "onpath.test": 1}
            assert server.pending == 2  # ...but only two slow queries and no genuine reply wait
            # Full, it still answers at once what needs no timer.
            assert addresses(await ask(server, "v4only.test")) == ["127.0.0.9"]
        # Closing with replies due cancels them: run() checks nothing is left behind.

    run(body)


def test_tcp_client_that_half_closes_still_gets_the_replies_due() -> None:
    async def body() -> list[list[str]]:
        async with DnsServer(dict(RULES), host=HOST) as server:
            reader, writer = await asyncio.open_connection(*server.address)
            wire = dns.message.make_query("inject.test", "A").to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            writer.write_eof()
            out = []
            while size_bytes := await reader.read(2):
                size = struct.unpack("!H", size_bytes)[0]
                out.append(addresses(dns.message.from_wire(await reader.readexactly(size))))
            writer.close()
            await writer.wait_closed()
            return out

    assert run(body) == [["10.10.34.35"], ["127.0.0.9"]]


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
    with pytest.raises(ValueError):
        SlowRoundRobin(["127.0.0.21", "cdn.test"])
