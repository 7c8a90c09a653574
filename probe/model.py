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
    # The server's flight as the kernel counted it (TCP_INFO; None off Linux).
    bytes_received: int | None = None

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
    # T0 throttling data: every byte of the round trip (head and body), its
    # goodput, the request's own handshake time (when it made one), and
    # ``slow``: it timed out after the status line and some body arrived.
    bytes_received: int = 0
    goodput: float | None = None  # bytes a second from the first byte to the last
    handshake_time: float | None = None
    slow: bool = False


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


@dataclass(frozen=True, slots=True)
class PairArm:
    """One arm of a throttling A/B pair: a new connection and handshake with
    the real SNI (``decoy`` False) or the decoy SNI, then a bounded read."""

    sni: str
    decoy: bool
    started: float
    connect: float | None = None  # connect time (the RTT, as near as a connect shows it)
    handshake: float | None = None  # ClientHello to handshake done
    handshake_bytes: int | None = None  # the server flight (kernel count; None off Linux)
    transfer_bytes: int = 0  # after the handshake (the reply to one GET, bounded)
    transfer_duration: float = 0.0
    goodput: float | None = None  # bytes a second of the transfer past its first bytes (None: too few)
    rates: tuple[float, ...] = ()  # per-interval rates of that part: is it a steady plateau?
    failure: Failure | None = None
    error: str | None = None
    failed_operation: Operation | None = None


@dataclass(frozen=True, slots=True)
class PairsObservation:
    """A throttle check (T1) at one address: interleaved real/decoy arms, or why none ran."""

    address: str
    port: int
    host: str
    decoy_sni: str
    reason: str  # why it ran (a T0 suspicion, the schedule) or why not
    arms: tuple[PairArm, ...] = ()
    skipped: str | None = None  # "byte budget spent", "not due", ...
    reserved: int = 0  # bytes reserved from the daily budget


@dataclass(frozen=True, slots=True)
class TransferObservation:
    """A bounded keep-alive transfer over one open connection (``freeze:PORT`` and its canary).

    ``sent`` and ``received`` are application bytes (plaintext over TLS) up
    to the moment it ended; ``stalled`` means no byte moved for
    ``stall_timeout`` seconds with no reset and no EOF (a reset or an EOF is
    a ``failure`` of its own, never a stall). ``ended`` says, content-free,
    why a transfer without failure stopped where it did.
    """

    address: str
    port: int
    host: str  # the Host asked for (a canary's name for a canary)
    sni: str | None  # None: plain TCP
    purpose: Purpose
    started: float
    duration: float
    failure: Failure | None
    error: str | None = None
    sent: int = 0
    received: int = 0
    responses: int = 0  # complete responses read
    stalled: bool = False
    stall_timeout: float = 0.0
    rtt: float | None = None  # the connect round trip the stall timeout was derived from
    target: int = 0  # bytes wanted per direction
    ended: str = ""  # "target reached", "server closed the connection", "byte budget spent", …
    transaction: int = 0
    charged: int = 0  # bytes taken from the daily budget for it

    @property
    def stall_after_sent(self) -> int | None:
        return self.sent if self.stalled else None

    @property
    def stall_after_received(self) -> int | None:
        return self.received if self.stalled else None


@dataclass(frozen=True, slots=True)
class UdpExchange:
    """Datagrams sent to one UDP server (a relay, a neutral STUN server) and
    what came back: the ``stun:`` kind's facts. Never a mapped address: a
    STUN answer is kept as its type, attribute types and size only."""

    address: str
    port: int
    purpose: Purpose  # CHECK (the relay), NEUTRAL (a control), RANDOM_PAYLOAD
    started: float
    duration: float
    failure: Failure | None  # None: answered (STUN: a valid Binding response with our transaction id)
    error: str | None = None
    host: str = ""  # the server as configured (neutral servers may be names)
    tries: int = 0  # datagrams sent
    rtt: float | None = None  # first counted answer, after the first datagram
    response_type: int | None = None
    attributes: tuple[int, ...] = ()  # attribute types of the answer, values never kept
    response_size: int = 0
    ignored: tuple[str, ...] = ()  # why other datagrams did not count ("wrong transaction id", ...)
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def answered(self) -> bool:
        return self.failure is None


@dataclass(frozen=True, slots=True)
class UdpFlow:
    """A paced run of Binding Requests (a call's packet rate) and which were answered."""

    address: str
    port: int
    purpose: Purpose
    started: float
    duration: float
    sent: int
    answered: int
    last_answered: int  # 1-based number of the last request answered; 0: none was
    per_second: tuple[tuple[int, int], ...]  # (sent, answered) for each second of sending
    stopped: str  # "time" | "bytes" | "failure"
    failure: Failure | None = None
    error: str | None = None
    host: str = ""
    ignored: int = 0  # datagrams that answered none of our requests
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass(frozen=True, slots=True)
class StunObservation:
    """One ``stun:`` check at one address: the relay's Binding exchange and its follow-ups."""

    host: str  # the endpoint's host, as the check names it
    address: str
    port: int
    relay: UdpExchange
    random: UdpExchange | None = None  # only when the relay gave no STUN answer
    neutral: tuple[UdpExchange, ...] = ()  # the controls, only when the relay gave no STUN answer
    neutral_unresolved: tuple[str, ...] = ()  # neutral servers whose name did not resolve here
    flow: UdpFlow | None = None  # calls.flow: the relay's paced flow
    neutral_flow: UdpFlow | None = None  # the same flow at a neutral server, the witness of a cut-off
    flow_skipped: str | None = None  # why no flow ran although configured (byte budget)


@dataclass(frozen=True, slots=True)
class ConfirmArm:
    """One arm of a T3 confirmation at a control peer: a download then an upload,
    each on a new connection whose TLS names ``sni`` (the peer accepts any)."""

    sni: str
    decoy: bool
    download_bytes: int = 0
    download_goodput: float | None = None  # past the first 32 KiB
    upload_bytes: int = 0
    upload_goodput: float | None = None
    failure: Failure | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmObservation:
    """T3 for one endpoint address: interleaved arms at a control peer, or why none ran."""

    address: str  # the endpoint's address whose pairs asked for it
    host: str
    decoy_sni: str
    peer: str  # the peer's label (host:port), never a URL with credentials
    arms: tuple[ConfirmArm, ...] = ()
    skipped: str | None = None
    reserved: int = 0
    port: int = 0  # the endpoint's port whose throttle check ran it
