"""Scenarios of the loopback censor, seen by plain clients (dnspython, ssl
sockets), never by the probe: what each FakeService option puts on the wire."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import dns.exception
import pytest
from cryptography import x509

from probe.config.model import Service
from probe.testbed.middlebox import Reset
from probe.testbed.resolver import Answer, Inject, SlowRoundRobin
from probe.testbed.scenarios import FORGED_IP, FakeService, LoopbackCensor
from tests.testbed.loop import client_context, run
from tests.testbed.stub import Reply, stub

T = TypeVar("T")
DECOY_SNI = "example.com"  # the probe's default decoy: no rule names it, so the box passes it


def with_censor(
    tmp_path: Path, fakes: list[FakeService], use: Callable[[LoopbackCensor, list[Service]], Awaitable[T]]
) -> T:
    async def body() -> T:
        async with LoopbackCensor(tmp_path, max_services=4) as bed:
            return await use(bed, [await bed.add(fake) for fake in fakes])

    return run(body)


def ips(service: Service) -> list[str]:
    return [str(p.network_address) for p in service.endpoints[0].expected.prefixes]


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def tls_certificate(ip: str, port: int, sni: str, context: ssl.SSLContext) -> bytes:
    """The certificate (DER) a handshake to ip:port with ``sni`` got; raises what the client saw."""
    async with asyncio.timeout(3.0):
        _, writer = await asyncio.open_connection(ip, port, ssl=context, server_hostname=sni)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    assert isinstance(der, bytes)
    return der


@pytest.mark.parametrize(
    ("backend", "error"),
    [("bad-der", ValueError), ("bad-der-duplicate", x509.DuplicateExtension)],
)
def test_bad_der_on_the_decoy_path(tmp_path: Path, backend: str, error: type[Exception]) -> None:
    fake = FakeService("tls-bad-der", tls=Reset(), backend=backend)

    async def use(bed: LoopbackCensor, services: list[Service]) -> bytes:
        (ip,) = ips(services[0])
        with pytest.raises(ConnectionResetError):  # the real SNI: the middlebox resets
            await tls_certificate(ip, bed.tls_port, fake.host, client_context(bed.ca))
        return await tls_certificate(ip, bed.tls_port, DECOY_SNI, unverified())

    cert = x509.load_der_x509_certificate(with_censor(tmp_path, [fake], use))  # the decoy completes...
    with pytest.raises(error):
        _ = cert.extensions  # ...with a certificate cryptography cannot parse


@pytest.mark.parametrize(
    ("backend", "error"),
    [("bad-der", ValueError), ("bad-der-duplicate", x509.DuplicateExtension)],
)
def test_bad_der_on_the_inspection_path(tmp_path: Path, backend: str, error: type[Exception]) -> None:
    fake = FakeService("tls-bad-der", backend=backend)

    async def use(bed: LoopbackCensor, services: list[Service]) -> bytes:
        (ip,) = ips(services[0])
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate signature failure"):
            await tls_certificate(ip, bed.tls_port, fake.host, client_context(bed.ca))
        return await tls_certificate(ip, bed.tls_port, fake.host, unverified())

    cert = x509.load_der_x509_certificate(with_censor(tmp_path, [fake], use))
    with pytest.raises(error):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_slow_round_robin_rotates_between_two_genuine_servers(tmp_path: Path) -> None:
    # A shorter delay than the default: the resolver's own tests measure 1.5 s.
    fake = FakeService("cdn", dns=SlowRoundRobin(delay=0.5), addresses=2)

    async def use(bed: LoopbackCensor, services: list[Service]) -> tuple[list[str], Reply, Reply]:
        own = ips(services[0])
        assert bed.resolver.rules[fake.host] == SlowRoundRobin(own, delay=0.5)
        assert bed.control.rules[fake.host] == Answer(own)  # the control knows both
        async with stub(bed.resolver, fake.host) as client:
            await client.send()
            with pytest.raises(dns.exception.Timeout):
                await client.reply(within=0.25)
            await client.send()  # the retransmission
            hit, late = await client.reply(within=0.2), await client.reply(within=1.0)
        for ip in own:  # both answers are genuine: TLS verifies the name at each
            await tls_certificate(ip, bed.tls_port, fake.host, client_context(bed.ca))
        return own, hit, late

    own, hit, late = with_censor(tmp_path, [fake], use)
    assert [hit.addresses, late.addresses] == [[own[0]], [own[1]]]
    assert hit.at < 0.45 <= 0.5 <= late.at


def test_inject_forges_an_address_where_nothing_listens_then_the_genuine_one(tmp_path: Path) -> None:
    fake = FakeService("dns-injected", dns=Inject())

    async def use(bed: LoopbackCensor, services: list[Service]) -> tuple[list[str], Reply, Reply]:
        own = ips(services[0])
        assert bed.control.rules[fake.host] == Answer(own)
        async with stub(bed.resolver, fake.host) as client:
            await client.send()
            forged, genuine = await client.reply(), await client.reply()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(FORGED_IP, bed.tls_port)
        await tls_certificate(own[0], bed.tls_port, fake.host, client_context(bed.ca))
        return own, forged, genuine

    own, forged, genuine = with_censor(tmp_path, [fake], use)
    assert (forged.addresses, genuine.addresses) == ([FORGED_IP], own)
    assert forged.at < 0.1
    assert 0.3 <= genuine.at < 0.8


def test_inject_keeps_the_addresses_it_is_given(tmp_path: Path) -> None:
    fake = FakeService("dns-injected", dns=Inject(["198.51.100.7"], delay=0.05))

    async def use(bed: LoopbackCensor, services: list[Service]) -> None:
        assert bed.resolver.rules[fake.host] == Inject(["198.51.100.7"], ips(services[0]), delay=0.05)

    with_censor(tmp_path, [fake], use)


def test_refused_scenarios_take_no_address(tmp_path: Path) -> None:
    async def use(bed: LoopbackCensor, services: list[Service]) -> None:
        with pytest.raises(ValueError, match="addresses=2"):
            await bed.add(FakeService("cdn", dns=SlowRoundRobin()))
        with pytest.raises(ValueError, match="unknown backend 'bad-pem'"):
            await bed.add(FakeService("typo", backend="bad-pem"))
        after = await bed.add(FakeService("next"))
        assert ips(after) == [f"127.0.0.{bed.first_ip + 1}"]  # right after "first": none was used

    with_censor(tmp_path, [FakeService("first")], use)
