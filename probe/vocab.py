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
    UNKNOWN = "unknown_failure"


# Failures that say nothing reached us at all: the signature of an offline
# vantage when every endpoint and every control shows one of them.
NETWORK_LEVEL_FAILURES = frozenset(
    {
        Failure.TIMEOUT,
        Failure.HOST_UNREACHABLE,
        Failure.NETWORK_UNREACHABLE,
        Failure.CONNECTION_REFUSED,
    }
)

CERTIFICATE_FAILURES = frozenset(
    {
        Failure.SSL_INVALID_HOSTNAME,
        Failure.SSL_UNKNOWN_AUTHORITY,
        Failure.SSL_INVALID_CERTIFICATE,
    }
)


_LABELS = frozenset(f.value for f in Failure)


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
    THROTTLED = "throttled"


class CheckKind(StrEnum):
    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    HTTP_POST = "http_post"


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
