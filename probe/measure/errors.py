"""The one place where library exceptions become failure strings.

Exception tree we see, and what it means on the wire:

    TimeoutError (asyncio.timeout, dns.exception.Timeout) -> generic_timeout_error
    OSError
      ConnectionRefusedError (RST to SYN)                -> connection_refused
      PortUnreachable (ICMP port unreachable to a UDP
        datagram, ECONNREFUSED on a connected socket)    -> port_unreachable
      ConnectionResetError (RST mid-stream)              -> connection_reset
      errno EHOSTUNREACH / ENETUNREACH                   -> host_/network_unreachable
    ssl.SSLCertVerificationError (by verify_code)        -> ssl_invalid_hostname /
                                                            ssl_unknown_authority /
                                                            ssl_invalid_certificate
    ssl.SSLEOFError, EOFError (a close before or inside
      the response), aiohttp.ServerDisconnectedError      -> eof_error
    ssl.SSLError (anything else in the handshake)        -> ssl_failed_handshake
    aiohttp.ClientConnectorError & co wrap an OSError    -> classified by that OSError
    h11.RemoteProtocolError, ProtocolViolation (the peer
      broke HTTP: garbage, a 100 MB header line)          -> unknown_failure, with detail

Whatever is left is ``unknown_failure``; its raw text goes to the
observation's ``error`` (scrubbed), never into a metric label.

``is_network_fact`` draws the other line: which exceptions are something the
network did (recorded as a failure) and which are the probe's own bug
(recorded, then raised so the endpoint's status becomes ``error``).
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Collection

import aiohttp
import dns.exception
import h11

from probe.privacy import redact
from probe.vocab import Failure

# OpenSSL X509_V_ERR_* codes (include/openssl/x509_vfy.h).
_HOSTNAME_MISMATCH = {62, 64}  # hostname / IP address mismatch
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}  # no issuer, self-signed, unable to get local issuer
_ERRNO = {
    errno.ECONNREFUSED: Failure.CONNECTION_REFUSED,
    errno.ECONNRESET: Failure.CONNECTION_RESET,
    errno.EPIPE: Failure.CONNECTION_RESET,
    errno.EHOSTUNREACH: Failure.HOST_UNREACHABLE,
    errno.ENETUNREACH: Failure.NETWORK_UNREACHABLE,
    errno.ETIMEDOUT: Failure.TIMEOUT,
    errno.EADDRNOTAVAIL: Failure.NETWORK_UNREACHABLE,
}


class ProtocolViolation(Exception):
    """The peer sent something no conforming server sends (a bound was exceeded)."""


class PortUnreachable(OSError):
    """ICMP port unreachable to a datagram: the kernel reports it on a connected
    UDP socket as ECONNREFUSED, which for TCP means a RST to the SYN. UDP code
    raises this instead, so the two never share ``connection_refused``."""


# What a hostile or broken network can make a library raise. UnicodeError
# belongs here: a DNS name or header a server sent may not decode.
_NETWORK_FACTS = (
    OSError,
    TimeoutError,
    EOFError,
    asyncio.LimitOverrunError,
    h11.ProtocolError,
    dns.exception.DNSException,
    aiohttp.ClientError,
    UnicodeError,
    ProtocolViolation,
)


def is_network_fact(exc: BaseException) -> bool:
    return isinstance(exc, _NETWORK_FACTS)


def _classify(exc: BaseException) -> Failure:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _HOSTNAME_MISMATCH:
            return Failure.SSL_INVALID_HOSTNAME
        if code in _UNKNOWN_AUTHORITY:
            return Failure.SSL_UNKNOWN_AUTHORITY
        return Failure.SSL_INVALID_CERTIFICATE
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return _classify(exc.certificate_error)
    if isinstance(exc, (TimeoutError, dns.exception.Timeout, aiohttp.ServerTimeoutError)):
        return Failure.TIMEOUT
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, EOFError)):
        return Failure.EOF
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure.EOF
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _classify(exc.os_error)
    if isinstance(exc, PortUnreachable):
        return Failure.PORT_UNREACHABLE
    if isinstance(exc, ConnectionRefusedError):
        return Failure.CONNECTION_REFUSED
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return Failure.CONNECTION_RESET
    if isinstance(exc, ssl.SSLError):
        if "EOF" in str(exc) or "UNEXPECTED_EOF" in str(exc):
            return Failure.EOF
        return Failure.SSL_FAILED_HANDSHAKE
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure.EOF
    return Failure.UNKNOWN


def classify(exc: BaseException, keep: Collection[str] = ()) -> tuple[Failure, str]:
    """Map an exception (or the first meaningful one in its cause chain) to a failure.

    ``keep`` lists the target addresses that may stay in the error text.
    """
    seen: BaseException | None = exc
    failure = Failure.UNKNOWN
    while seen is not None:
        failure = _classify(seen)
        if failure is not Failure.UNKNOWN:
            break
        seen = seen.__cause__ or seen.__context__
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return failure, redact(text[:300], keep)
