"""The DoH control, asked over RFC 8484 by a plain aiohttp client that trusts the test CA."""

from __future__ import annotations

import base64
import time

import aiohttp
import dns.message
import dns.rcode
import pytest

from probe.testbed.doh import DohServer
from probe.testbed.pki import TestCA
from probe.testbed.resolver import Answer, Drop, Inject, NxDomain, Refused, SlowRoundRobin
from tests.testbed.loop import HOST, client_context, run

CA = TestCA()
LEAF = CA.issue([HOST])  # the URL names the IP literal, so the certificate must too
RULES = {
    "svc.test": Answer(["127.0.0.9", "::1"]),
    "refused.test": Refused(),
    "drop.test": Drop(),
    "inject.test": Inject(["10.10.34.35"], ["127.0.0.9"]),
    "cdn.test": SlowRoundRobin(["127.0.0.21", "127.0.0.22"]),
}

Reply = tuple[int, str, bytes]


async def doh(method: str, wire: bytes | None = None, *, dns_param: str | None = None) -> Reply:
    async with DohServer(dict(RULES), LEAF, default=NxDomain(), host=HOST) as server:
        assert server.url == f"https://{HOST}:{server.port}/dns-query"
        connector = aiohttp.TCPConnector(ssl=client_context(CA))
        async with aiohttp.ClientSession(connector=connector) as session:
            if method == "POST":
                headers = {"Content-Type": "application/dns-message", "Accept": "application/dns-message"}
                request = session.post(server.url, data=wire, headers=headers)
            else:
                if dns_param is None:
                    assert wire is not None
                    dns_param = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
                request = session.get(server.url, params={"dns": dns_param})
            async with request as response:
                return response.status, response.content_type, await response.read()


def ask(method: str, name: str, rdtype: str = "A") -> dns.message.Message:
    status, content_type, body = run(lambda: doh(method, dns.message.make_query(name, rdtype).to_wire()))
    assert (status, content_type) == (200, "application/dns-message")
    return dns.message.from_wire(body)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in response.answer for rdata in rrset)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_answers_by_rule_over_post_and_get(method: str) -> None:
    assert addresses(ask(method, "svc.test")) == ["127.0.0.9"]
    assert addresses(ask(method, "SVC.test", "AAAA")) == ["::1"]
    assert ask(method, "refused.test").rcode() == dns.rcode.REFUSED
    assert ask(method, "unknown.test").rcode() == dns.rcode.NXDOMAIN


def test_inject_gives_the_genuine_answer_and_drop_a_gateway_timeout() -> None:
    assert addresses(ask("POST", "inject.test")) == ["127.0.0.9"]
    wire = dns.message.make_query("drop.test", "A").to_wire()
    assert run(lambda: doh("POST", wire))[0] == 504


@pytest.mark.parametrize(
    ("method", "wire", "dns_param"),
    [
        ("POST", b"\x00\x01garbage", None),
        ("POST", b"", None),
        ("POST", dns.message.make_query("svc.test", "A").to_wire() + bytes(70_000), None),
        ("GET", None, "!!!not-base64"),
        ("GET", None, "AAEC"),  # valid base64 of a truncated message
        ("GET", None, ""),
    ],
)
def test_bad_messages_get_400(method: str, wire: bytes | None, dns_param: str | None) -> None:
    status, _, body = run(lambda: doh(method, wire, dns_param=dns_param))
    assert (status, body) == (400, b"bad DNS message")


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_slow_round_robin_answers_its_first_address_at_once(method: str) -> None:
    started = time.monotonic()
    assert addresses(ask(method, "cdn.test")) == ["127.0.0.21"]
    assert time.monotonic() - started < 1.0  # its delay (1.5 s) is the UDP resolver's
