"""Observations: plain facts recorded by ``probe.measure``, read by ``probe.analysis``.

Times are seconds relative to the start of the endpoint's measurement, as in
OONI's data format, so a recorded observation replays the same anywhere.
Nothing here holds the vantage's own address: we never record local socket
names, and free text is redacted by ``probe.privacy`` before it lands here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from probe.vocab import Failure, Method, Operation, Purpose, Status

if TYPE_CHECKING:  # probe.control.api reads observations; at run time annotations stay strings
    from probe.control.api import Answer


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative bytes over one operation at a moment (relative seconds): goodput data."""

    t: float
    sent: int
    received: int


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One network operation as the trace saw it (OONI's archival records).

    ``transaction`` links a TLS handshake and an HTTP round trip to the TCP
    connect they ran on; a DNS query's transmissions and replies share its id.
    """

    operation: Operation
    transaction: int
    started: float
    duration: float
    failure: Failure | None
    error: str | None = None
    address: str | None = None
    port: int | None = None
    purpose: Purpose = Purpose.CHECK
    detail: str = ""  # the name asked, the SNI, the request line: never a body
    bytes_sent: int = 0
    bytes_received: int = 0
    samples: tuple[Sample, ...] = ()


@dataclass(frozen=True, slots=True)
class DnsReply:
    """One DNS response as it arrived (a query may get more than one).

    ``transmissions`` is how many copies of the query had been sent when it
    arrived: a reply after a retransmission may answer either copy, so two
    different replies then prove nothing on their own.
    """

    rcode: str
    addresses: tuple[str, ...]
    t: float
    transmissions: int = 1


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
    transmissions: int = 1  # copies sent before the first reply (UDP retransmits)
    cnames: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TcpObservation:
    address: str
    port: int
    started: float
    duration: float
    failure: Failure | None
    error: str | None = None
    purpose: Purpose = Purpose.CHECK
    transaction: int = 0


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
    # The peer's certificate could not be parsed (a censor can serve DER that
    # OpenSSL accepts and cryptography rejects): a fact, never a crash.
    certificate_error: str | None = None
    purpose: Purpose = Purpose.CHECK
    transaction: int = 0

    def __post_init__(self) -> None:
        if self.decoy and self.purpose is Purpose.CHECK:  # recorded before purposes existed
            object.__setattr__(self, "purpose", Purpose.DECOY)


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
    # Which operation failed (connect, tls_handshake, http_round_trip): a reset
    # during an HTTPS request's own handshake is not a reset "after the request".
    failed_operation: Operation | None = None
    transaction: int = 0
    time_to_first_byte: float | None = None
    reused_connection: bool = False  # rode the TCP/TLS check's own connection


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
    # What stopped the probe itself from measuring (no resolver configured, an
    # internal error contained to this endpoint): these make the status ``error``.
    errors: tuple[str, ...] = ()
    # Every operation in the order it started, follow-ups included.
    trace: tuple[TraceEvent, ...] = ()
    other: tuple[object, ...] = ()  # observations of kinds that have no field of their own
    unmeasured_addresses: int = 0  # answered addresses beyond the per-family bound
    # What each control peer saw of the same endpoint, when one was asked.
    controls: tuple[Answer, ...] = ()


@dataclass(frozen=True, slots=True)
class Witness:
    """What proves a finding: a decoy that survived, a control that disagreed,
    a fingerprint, a canary that resolved, a certificate that verified."""

    kind: str  # "decoy" | "control" | "fingerprint" | "canary" | "tls" | "expected" | "reply"
    detail: str


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
    witnesses: tuple[Witness, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """One step's conclusion about one address (or the name): analysis emits
    every finding, and one priority table picks the endpoint's verdict."""

    step: str  # a CheckKind value
    verdict: Verdict


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
    findings: tuple[Finding, ...] = ()
