"""Recorded observations for pure verdict tests: what the probe saw, as data."""

from __future__ import annotations

import ipaddress

from probe.config.fingerprints import Fingerprints, load_fingerprints
from probe.config.model import Check, Endpoint, EndpointState, Expected, Service
from probe.model import (
    Certificate,
    DnsObservation,
    DnsReply,
    HttpHop,
    HttpObservation,
    TcpObservation,
    TlsObservation,
)
from probe.testbed.fingerprints import BLOCKPAGES
from probe.vocab import CheckKind, Failure

HOST = "chat.example"
ADDR = "203.0.113.10"
ADDR2 = "203.0.113.11"
URL = f"https://{HOST}/"
EXPECTED = Expected(prefixes=(ipaddress.ip_network("203.0.113.0/24"),))
# With the testbed's overlay: MITM's issuer is the testbed's interception CA.
FINGERPRINTS: Fingerprints = load_fingerprints(BLOCKPAGES)


def endpoint(
    *checks: str, state: EndpointState = EndpointState.ACTIVE, host: str = HOST, expected: Expected = EXPECTED
) -> Endpoint:
    parsed = []
    for c in checks:
        kind, _, arg = c.partition(":")
        k = CheckKind(kind)
        parsed.append(Check(k, port=int(arg)) if k in (CheckKind.TCP, CheckKind.TLS) else Check(k, url=arg))
    return Endpoint(host, tuple(parsed), state, expected)


def service(*endpoints: Endpoint) -> Service:
    return Service("chat", "Chat", endpoints, ("example",), EXPECTED)


def dns(
    role: str = "probe",
    qtype: str = "A",
    *,
    addresses: tuple[str, ...] = (),
    failure: Failure | None = None,
    rcode: str | None = "NOERROR",
    extra: tuple[DnsReply, ...] = (),
    name: str = HOST,
) -> DnsObservation:
    if failure is Failure.DNS_NXDOMAIN:
        rcode = "NXDOMAIN"
    elif failure is Failure.DNS_REFUSED:
        rcode = "REFUSED"
    elif failure is Failure.TIMEOUT:
        rcode = None
    resolver = "127.0.0.1:53" if role != "control" else "https://127.0.0.2/dns-query"
    return DnsObservation(
        name,
        qtype,
        resolver,
        "udp" if role != "control" else "doh",
        role,
        0.0,
        0.01,
        failure,
        None,
        rcode,
        addresses,
        extra,
    )


def resolved(*addresses: str, control: tuple[str, ...] | None = None) -> tuple[DnsObservation, ...]:
    control = addresses if control is None else control
    return (
        dns(addresses=addresses),
        dns(qtype="AAAA", failure=Failure.DNS_NO_ANSWER),
        dns("control", addresses=control, failure=None if control else Failure.DNS_NO_ANSWER),
        dns("control", "AAAA", failure=Failure.DNS_NO_ANSWER),
    )


def tcp(address: str = ADDR, port: int = 443, failure: Failure | None = None) -> TcpObservation:
    return TcpObservation(address, port, 0.0, 0.01, failure)


CERT = Certificate(f"CN={HOST}", "CN=msgprobe testbed CA", "2026-01-01", "2027-01-01", (HOST,), "00")
MITM = Certificate(
    f"CN={HOST}", "CN=msgprobe testbed interception CA", "2026-01-01", "2027-01-01", (HOST,), "11"
)


def tls(
    address: str = ADDR,
    failure: Failure | None = None,
    *,
    decoy: bool = False,
    certificate: Certificate | None = CERT,
) -> TlsObservation:
    sni = "example.com" if decoy else HOST
    return TlsObservation(
        address,
        443,
        sni,
        decoy,
        0.0,
        0.01,
        failure,
        None,
        None if failure else "TLSv1.3",
        None,
        None if failure and not certificate else certificate,
    )


def http(
    address: str = ADDR,
    failure: Failure | None = None,
    *,
    status: int | None = 200,
    body: bytes = b"<title>ok</title>",
    headers: tuple[tuple[str, str], ...] = (),
    redirects: tuple[HttpHop, ...] = (),
    decoy: bool = False,
    url: str = URL,
    method: str = "GET",
) -> HttpObservation:
    host = "example.com" if decoy else HOST
    return HttpObservation(
        url.replace(HOST, host),
        method,
        address,
        host,
        decoy,
        0.0,
        0.01,
        failure,
        None,
        None if failure else status,
        headers,
        b"" if failure else body,
        len(body),
        False,
        None,
        redirects,
    )
