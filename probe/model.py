"""Observations: plain facts recorded by ``probe.measure``, read by ``probe.analysis``.

Times are seconds relative to the start of the endpoint's measurement, as in
OONI's data format, so a recorded observation replays the same anywhere.
Nothing here holds the vantage's own address: we never record local socket
names, and free text is redacted by ``probe.privacy`` before it lands here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.vocab import Failure, Method, Status


@dataclass(frozen=True, slots=True)
class DnsReply:
    """One DNS response as it arrived (a query may get more than one)."""

    rcode: str
    addresses: tuple[str, ...]
    t: float


@dataclass(frozen=True, slots=True)
class DnsObservation:
    hostname: str
    qtype: str  # "A" | "AAAA"
    resolver: str  # exactly as configured: "system", "127.0.0.1:53", "https://…"
    transport: str  # "udp" | "tcp" | "doh"
    role: str  # "probe" | "control" | "canary"
    started: float
    duration: float
    failure: Failure | None
    error: str | None = None
    rcode: str | None = None
    addresses: tuple[str, ...] = ()
    # Further replies to the same query inside the injection window: an
    # on-path injector answers first and the genuine resolver answers later.
    extra_replies: tuple[DnsReply, ...] = ()


@dataclass(frozen=True, slots=True)
class TcpObservation:
    address: str
    port: int
    started: float
    duration: float
    failure: Failure | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Certificate:
    subject: str
    issuer: str
    not_before: str
    not_after: str
    names: tuple[str, ...]  # subjectAltName DNS/IP entries
    sha256: str


@dataclass(frozen=True, slots=True)
class TlsObservation:
    address: str
    port: int
    sni: str
    decoy: bool  # handshake with the harmless decoy SNI, certificate not verified
    started: float
    duration: float
    failure: Failure | None
    error: str | None = None
    version: str | None = None
    cipher: str | None = None
    certificate: Certificate | None = None


@dataclass(frozen=True, slots=True)
class HttpHop:
    url: str
    status: int
    location: str | None


@dataclass(frozen=True, slots=True)
class HttpObservation:
    url: str
    method: str  # "GET" | "POST"
    address: str
    host: str  # the Host we asked for (the decoy one on decoy requests)
    decoy: bool
    started: float
    duration: float
    failure: Failure | None
    error: str | None = None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # lower-case names, final response
    body: bytes = b""  # capped; kept in memory for analysis, never exported whole
    body_length: int = 0
    body_truncated: bool = False
    title: str | None = None
    redirects: tuple[HttpHop, ...] = ()
    redirect_limit_reached: bool = False


@dataclass(frozen=True, slots=True)
class EndpointObservations:
    """Everything measured for one endpoint in one attempt."""

    service: str
    endpoint: str
    dns: tuple[DnsObservation, ...] = ()
    tcp: tuple[TcpObservation, ...] = ()
    tls: tuple[TlsObservation, ...] = ()
    http: tuple[HttpObservation, ...] = ()
    # address -> origin ASN, from the local database when one is configured.
    asns: tuple[tuple[str, int], ...] = ()
    # Checks that could not run at all (e.g. a raw test without NET_RAW).
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    method: Method | None = None
    # The failure string or fingerprint that decided it, and a one-line
    # account a watchdog can quote.
    failure: str | None = None
    evidence: str = ""
    fingerprint: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of a result's checks: what ran, against which address, how it went."""

    check: str  # "dns", "tcp:443", "tls:443", "http:URL"
    ok: bool
    failure: str | None
    duration_s: float
    address: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EndpointResult:
    service: str
    endpoint: str
    verdict: Verdict
    checks: tuple[CheckResult, ...]
    observations: EndpointObservations
    attempts: int = 1
