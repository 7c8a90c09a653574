"""TLS step: a handshake with the real SNI on the measured connection.

Two follow-ups turn a bare failure into evidence, like OONI's step-by-step
design (dd-003) and its SNI-blocking experiment:

* **decoy SNI**: when the handshake is reset or stalls, we repeat it to the
  same address with a harmless SNI. If that completes, the address and
  server are fine and something on the path reacted to the name.
* **certificate inspection**: when verification fails, we fetch the
  certificate without verifying it, so evidence can name the issuer (an
  interception CA has a recognisable one).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from probe.measure import tcp
from probe.measure.errors import classify
from probe.model import Certificate, TlsObservation

# Failures after which a decoy handshake can tell a name-based block from a dead server.
DECOY_WORTHY = {"connection_reset", "eof_error", "generic_timeout_error"}


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


class TlsHandshake:
    def __init__(
        self,
        contexts: TlsContexts,
        *,
        connect_timeout: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.contexts = contexts
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.clock = clock

    async def on(self, stream: tcp.Stream, address: str, port: int, sni: str, t0: float) -> TlsObservation:
        """Handshake on an open connection (consumed: closed on return)."""
        return await self._handshake(stream, address, port, sni, t0, decoy=False)

    async def fresh(
        self, address: str, port: int, sni: str, t0: float, *, decoy: bool
    ) -> TlsObservation | None:
        """A new connection for a follow-up; None when TCP itself fails now."""
        stream = await self._connect(address, port, t0)
        if stream is None:
            return None
        return await self._handshake(stream, address, port, sni, t0, decoy=decoy)

    async def _connect(self, address: str, port: int, t0: float) -> tcp.Stream | None:
        _, stream = await tcp.connect(address, port, timeout=self.connect_timeout, t0=t0, clock=self.clock)
        return stream

    async def inspect_certificate(self, address: str, port: int, sni: str, t0: float) -> Certificate | None:
        stream = await self._connect(address, port, t0)
        if stream is None:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                await stream[1].start_tls(self.contexts.inspect, server_hostname=sni)
            ssl_object = stream[1].get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            return parse_certificate(der) if der else None
        except (OSError, TimeoutError, ssl.SSLError, ValueError):
            return None
        finally:
            await tcp.close(stream)

    async def _handshake(
        self, stream: tcp.Stream, address: str, port: int, sni: str, t0: float, *, decoy: bool
    ) -> TlsObservation:
        context = self.contexts.inspect if decoy else self.contexts.verify
        started = self.clock()
        writer = stream[1]
        try:
            async with asyncio.timeout(self.timeout):
                await writer.start_tls(context, server_hostname=sni, ssl_handshake_timeout=self.timeout + 1)
        except Exception as exc:
            duration = self.clock() - started  # the handshake's time, not the close's
            failure, error = classify(exc, keep=(address,))
            tcp.abort(stream)
            return TlsObservation(address, port, sni, decoy, started - t0, duration, failure, error)
        duration = self.clock() - started
        ssl_object = writer.get_extra_info("ssl_object")
        certificate = None
        version = cipher = None
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            certificate = parse_certificate(der) if der else None
            version = ssl_object.version()
            cipher_info = ssl_object.cipher()
            cipher = cipher_info[0] if cipher_info else None
        await tcp.close(stream)
        return TlsObservation(
            address, port, sni, decoy, started - t0, duration, None, None, version, cipher, certificate
        )
