"""Closed vocabularies shared by every layer.

Failure strings follow OONI's df-007-errors so that msgprobe evidence reads
like OONI evidence. Anything the classifier cannot name becomes
``unknown_failure``; its raw text stays on the observation, never in a label.
"""

from enum import StrEnum


class Failure(StrEnum):
    DNS_NXDOMAIN = "dns_nxdomain_error"
    DNS_NO_ANSWER = "dns_no_answer"
    DNS_REFUSED = "dns_refused_error"
    DNS_SERVER_FAILURE = "dns_server_failure"
    TIMEOUT = "generic_timeout_error"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    EOF = "eof_error"
    SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
    SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
    SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
    SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"
    # ICMP port unreachable to a UDP datagram: nothing listens there (or a
    # censor forged it). Not connection_refused, which is TCP's RST to a SYN.
    PORT_UNREACHABLE = "port_unreachable"
    UNKNOWN = "unknown_failure"


CERTIFICATE_FAILURES = frozenset(
    {
        Failure.SSL_INVALID_HOSTNAME,
        Failure.SSL_UNKNOWN_AUTHORITY,
        Failure.SSL_INVALID_CERTIFICATE,
    }
)


_LABELS = frozenset(f.value for f in Failure)

# Failures after which a repeat with a harmless name (decoy SNI or Host) can
# tell a name-based block from a dead server.
DECOY_WORTHY = frozenset({Failure.CONNECTION_RESET, Failure.EOF, Failure.TIMEOUT})


def failure_string(failure: Failure | None, error: str | None) -> str | None:
    """OONI renders unknown failures with their detail; everything else is the bare string."""
    if failure is None:
        return None
    if failure is Failure.UNKNOWN and error:
        return f"unknown_failure: {error}"
    return failure.value


def failure_label(failure: str | None) -> str:
    """A failure string as a metric label: the closed vocabulary, or "none".

    "unknown_failure: <detail>" loses its detail, and anything outside the
    vocabulary becomes "unknown_failure", so label sets stay bounded.
    """
    if failure is None or failure == "none":
        return "none"
    head = failure.split(":", 1)[0]
    return head if head in _LABELS else Failure.UNKNOWN.value


class Status(StrEnum):
    OK = "ok"
    BLOCKED = "blocked"
    UNREACHABLE = "unreachable"
    DOWN = "down"
    UNKNOWN = "unknown"
    ERROR = "error"


class Method(StrEnum):
    DNS_NXDOMAIN = "dns.nxdomain"
    DNS_NO_ANSWER = "dns.no_answer"
    DNS_REFUSED = "dns.refused"
    DNS_TIMEOUT = "dns.timeout"
    DNS_BOGON = "dns.bogon"
    DNS_INCONSISTENT = "dns.inconsistent"
    DNS_INJECTED = "dns.injected"
    TCP_TIMEOUT = "tcp.timeout"
    TCP_REFUSED = "tcp.refused"
    TLS_RESET = "tls.reset"
    TLS_TIMEOUT = "tls.timeout"
    TLS_MITM = "tls.mitm"
    HTTP_RESET = "http.reset"
    HTTP_TIMEOUT = "http.timeout"
    HTTP_BLOCKPAGE = "http.blockpage"
    HTTP_REDIRECT = "http.redirect"
    HTTP_DIFF = "http.diff"
    THROTTLED = "throttled"
    TCP_FREEZE = "tcp.freeze"
    UDP_BLOCKED = "udp.blocked"
    WHITELIST = "whitelist"


class Operation(StrEnum):
    """What the probe was doing when a record was made (OONI's closed operation names)."""

    DNS_QUERY = "dns_query"  # one query: every transmission until the first reply
    DNS_SEND = "dns_send"  # one transmission of a query (UDP retransmissions each get one)
    DNS_REPLY = "dns_reply"  # one reply as it arrived, late ones included
    CONNECT = "connect"
    TLS_HANDSHAKE = "tls_handshake"
    HTTP_ROUND_TRIP = "http_round_trip"
    TRANSFER = "transfer"  # a bounded upload/download over an open connection (freeze, throttle)
    UDP_SEND = "udp_send"  # one datagram sent (STUN Binding, random payload, a paced flow)
    UDP_RECEIVE = "udp_receive"  # one datagram (or ICMP error) received
    RAW_DNS = "raw_dns"  # the raw DNS witness: the suspect query, the canary, no-resolver addresses, captured


class Purpose(StrEnum):
    """Why a connection or handshake was made: the configured check or a follow-up."""

    CHECK = "check"
    DECOY = "decoy"  # the same step with a harmless name
    INSPECT = "inspect"  # an unverified handshake to read a rejected certificate
    HTTP = "http"  # a connection of the HTTP check's own (no tcp/tls check on its port)
    REDIRECT = "redirect"  # a hop of a redirect chain, on a new measured connection
    CONTROL_ADDRESS = "control_address"  # the control resolver's address, measured to compare
    CANARY = "canary"
    PAIR = "pair"  # a throttling A/B pair: real SNI and decoy SNI, interleaved, to one address
    CONTROL_TRANSFER = "control_transfer"  # the same transfer at a control peer (the witness)
    NEUTRAL = "neutral"  # a neutral server of the same protocol, the control (STUN)
    RANDOM_PAYLOAD = "random_payload"  # a datagram of the same size that is not the protocol


class CheckKind(StrEnum):
    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    HTTP_POST = "http_post"
    THROTTLE = "throttle"
    FREEZE = "freeze"
    STUN = "stun"


class EndpointState(StrEnum):
    """Lifecycle of an endpoint in the catalog (research confidence, not a verdict)."""

    ACTIVE = "active"
    LEGACY = "legacy"
    DEFUNCT = "defunct"


class Confidence(StrEnum):
    """How well the research sources a catalog endpoint: metadata for curators, never a verdict input."""

    HIGH = "high"  # first-party or vendor documentation, or OONI's own code
    MEDIUM = "medium"  # consistent third-party code or a single good secondary source
    LOW = "low"  # a single weak or old source, or inferred


class Regime(StrEnum):
    """What kind of network the vantage is in this cycle (DESIGN.md "Vantage regime")."""

    ONLINE = "online"
    OFFLINE = "offline"  # nothing answers, the controls included: every endpoint unknown
    WHITELIST = "whitelist"  # only the domestic canaries answer: the rest is blocked whitelist
