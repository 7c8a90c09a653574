"""TLS step: a handshake with the real SNI on the measured connection.

Two follow-ups turn a bare failure into evidence, like OONI's step-by-step
design (dd-003) and its SNI-blocking experiment (the predicates that decide
when they run live in ``probe.analysis.needs``):

* **decoy SNI**: when the handshake is reset or stalls, we repeat it to the
  same address with a harmless SNI. If that completes, the address and
  server are fine and something on the path reacted to the name.
* **certificate inspection**: when verification fails, we fetch the
  certificate without verifying it, so evidence can name the issuer (an
  interception CA has a recognisable one).

Certificates of verified peers are read from ``ssl`` (already parsed by
OpenSSL); only unverified ones are parsed with ``cryptography``, and a
certificate it rejects is recorded as ``certificate_error``: a censor serving
malformed DER must not be able to stop the measurement.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from probe.measure import tcpinfo
from probe.measure.tcp import Connection
from probe.measure.trace import Trace
from probe.model import Certificate, TlsObservation
from probe.vocab import Operation, Purpose


@dataclass(frozen=True, slots=True)
class TlsContexts:
    """Built once per config: creating a context loads the CA store (tens of ms)."""

    verify: ssl.SSLContext
    inspect: ssl.SSLContext

    @classmethod
    def create(cls, ca_bundle: str | None = None) -> TlsContexts:
        verify = ssl.create_default_context()
        if ca_bundle:
            verify.load_verify_locations(cafile=ca_bundle)
        inspect = ssl.create_default_context()
        inspect.check_hostname = False
        inspect.verify_mode = ssl.CERT_NONE
        return cls(verify, inspect)


def parse_certificate(der: bytes) -> Certificate:
    """An unverified certificate, parsed with cryptography (raises on malformed DER)."""
    # Imported here: cryptography is ~14 MB of RSS that only a failed or decoy
    # handshake needs; a healthy catalog never loads it.
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(v) for v in san.get_values_for_type(x509.DNSName)) + tuple(
            str(v) for v in san.get_values_for_type(x509.IPAddress)
        )
    except x509.ExtensionNotFound:
        names = ()
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        names=names,
        sha256=hashlib.sha256(der).hexdigest(),
    )


def _rdn(name: Any) -> str:
    # ssl's getpeercert() form: ((("commonName", "x"),), ...), most specific last.
    parts = [f"{_SHORT.get(k, k)}={v}" for rdn in reversed(name or ()) for k, v in rdn]
    return ",".join(parts)


_SHORT = {"commonName": "CN", "organizationName": "O", "countryName": "C", "organizationalUnitName": "OU"}


_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


def _iso(text: object) -> str:
    """OpenSSL's ``Jan  1 00:00:00 2026 GMT`` as ISO 8601; parsed by hand because
    strptime costs more than the rest of reading a verified certificate."""
    if not isinstance(text, str):
        return ""
    try:
        month, day, clock, year, _ = text.split()
        hour, minute, second = (int(x) for x in clock.split(":"))
        moment = datetime(int(year), _MONTHS[month], int(day), hour, minute, second, tzinfo=UTC)
    except (KeyError, ValueError):
        return text
    return moment.isoformat()


def verified_certificate(peer: dict[str, Any], der: bytes) -> Certificate:
    """A verified certificate as OpenSSL already parsed it: no second parse."""
    return Certificate(
        subject=_rdn(peer.get("subject")),
        issuer=_rdn(peer.get("issuer")),
        not_before=_iso(peer.get("notBefore")),
        not_after=_iso(peer.get("notAfter")),
        names=tuple(str(v) for k, v in peer.get("subjectAltName", ()) if k in ("DNS", "IP Address")),
        sha256=hashlib.sha256(der).hexdigest(),
    )


def _certificate(conn: Connection, verified: bool) -> tuple[Certificate | None, str | None]:
    ssl_object = conn.ssl_object()
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    if ssl_object is None or not der:
        return None, None
    if verified:
        return verified_certificate(ssl_object.getpeercert() or {}, der), None
    try:
        return parse_certificate(der), None
    except Exception as exc:  # cryptography's DuplicateExtension & co subclass Exception directly
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"


async def handshake(
    trace: Trace,
    conn: Connection,
    context: ssl.SSLContext,
    sni: str,
    *,
    timeout: float,
    purpose: Purpose = Purpose.CHECK,
) -> TlsObservation:
    """Handshake on an open connection; on failure the connection is aborted."""
    with trace.op(
        Operation.TLS_HANDSHAKE,
        transaction=conn.transaction,
        address=conn.address,
        port=conn.port,
        purpose=purpose,
        detail=sni,
    ) as op:
        async with asyncio.timeout(timeout):
            await conn.start_tls(context, sni)
    version = cipher = None
    certificate, certificate_error = None, None
    ssl_object = conn.ssl_object() if op.failure is None else None
    if op.failure is not None:
        conn.abort()
    elif ssl_object is not None:
        version, suite = ssl_object.version(), ssl_object.cipher()
        cipher = suite[0] if suite else None
        certificate, certificate_error = _certificate(conn, context.verify_mode != ssl.CERT_NONE)
    # The server's flight (T0 throttling data): TLS runs right after connect, so
    # everything the kernel received so far is the handshake's.
    flight = tcpinfo.bytes_received(conn.sock) if op.failure is None else None
    return TlsObservation(
        conn.address,
        conn.port,
        sni,
        purpose is Purpose.DECOY,
        op.started,
        op.duration,
        op.failure,
        op.error,
        version,
        cipher,
        certificate,
        certificate_error,
        purpose,
        conn.transaction,
        flight,
    )
