"""A throwaway PKI for the loopback censor: a test CA and leaves it issues.

EC P-256 keys: issuing a leaf takes under a millisecond and loading it into
a server context about 3 ms (measured: 50 leaves with their contexts in
~0.2 s), so nothing is cached on disk and a demo start issues what it
needs. A leaf's server context is built once and shared by every server
and connection using it.
``TestCA("msgprobe testbed interception CA")`` plays a national
interception root (its name is in the testbed's overlay, probe/testbed/fingerprints.yaml).

``TestCA.issue_malformed`` makes leaves that OpenSSL serves and hands to a
client that does not verify, but that ``cryptography`` refuses to parse
(``Flaw``): what a censor's box can present on a decoy or an inspection
handshake. cryptography will not build such a certificate, so a sound one is
built and its DER patched in place, same length, which breaks the signature:
OpenSSL checks it only when verifying, never when loading a server
certificate or completing an unverified handshake.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "msgprobe testbed"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# A private-enterprise arc reserved for documentation (RFC 5612, PEN 32473):
# the duplicated extension means nothing to anyone, so OpenSSL ignores it.
_DOC_OID_1 = x509.ObjectIdentifier("1.3.6.1.4.1.32473.1")
_DOC_OID_2 = x509.ObjectIdentifier("1.3.6.1.4.1.32473.2")
_DOC_OID_1_DER = bytes.fromhex("06092b0601040181fd5901")
_DOC_OID_2_DER = bytes.fromhex("06092b0601040181fd5902")
# The SAN entry patched into a name with a Latin-1 byte: an IDN written in
# Latin-1 instead of as its A-label ("xn--bcher-kva.test"). cryptography
# accepts UTF-8 in a dNSName but no other byte >= 0x80; OpenSSL accepts both.
_NON_ASCII_PLACEHOLDER = b"xxxxxx.test"
_NON_ASCII_NAME = b"b\xfccher.test"


class Flaw(StrEnum):
    """How a malformed leaf breaks ``cryptography``, which raises on ``cert.extensions``."""

    NON_ASCII_SAN = "non-ascii-san"  # ValueError: a dNSName with the byte 0xFC
    DUPLICATE_EXTENSION = "duplicate-extension"  # x509.DuplicateExtension (not a ValueError)


@dataclass(frozen=True)
class Leaf:
    cert_pem: bytes
    key_pem: bytes

    @property
    def cert_der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert_pem.decode())

    def server_context(self) -> ssl.SSLContext:
        """The TLS server context for this leaf, built on first use and then shared."""
        return self._server_context

    @functools.cached_property
    def _server_context(self) -> ssl.SSLContext:
        # A bare server context: create_default_context would also load the
        # system's CA store (to verify client certificates nobody sends),
        # which costs more than issuing the certificate.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # ssl loads keys from files only; the files live just long enough.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, name: str = "msgprobe testbed CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.name = _name(name)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.cert_pem)
        return path

    def issue(self, names: list[str], *, not_after_days: int = 30, expired: bool = False) -> Leaf:
        """A leaf for ``names`` (DNS names, wildcards or IP literals, all in the SAN;
        the first is also the CN). ``expired`` ended yesterday."""
        cert, key = self._build(names, not_after_days=not_after_days, expired=expired)
        return Leaf(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))

    def issue_malformed(self, names: list[str], flaw: Flaw) -> Leaf:
        """A leaf for ``names`` plus ``flaw``; its signature no longer verifies.

        ``NON_ASCII_SAN`` adds the dNSName ``b"b\\xfccher.test"`` to the SAN,
        ``DUPLICATE_EXTENSION`` a non-critical private extension twice."""
        if flaw is Flaw.NON_ASCII_SAN:
            cert, key = self._build(names, extra_names=[_NON_ASCII_PLACEHOLDER.decode()])
            old, new = _NON_ASCII_PLACEHOLDER, _NON_ASCII_NAME
        else:
            extra = [x509.UnrecognizedExtension(oid, b"\x05\x00") for oid in (_DOC_OID_1, _DOC_OID_2)]
            cert, key = self._build(names, extra_extensions=extra)
            old, new = _DOC_OID_2_DER, _DOC_OID_1_DER
        der = cert.public_bytes(serialization.Encoding.DER)
        # Exactly one occurrence, or the patch could land in a key or a signature.
        if der.count(old) != 1 or len(old) != len(new):
            raise RuntimeError(f"cannot patch {flaw}: {der.count(old)} occurrences")
        pem = ssl.DER_cert_to_PEM_cert(der.replace(old, new)).encode()
        return Leaf(pem, _pem_key(key))

    def _build(
        self,
        names: list[str],
        *,
        not_after_days: int = 30,
        expired: bool = False,
        extra_names: Sequence[str] = (),
        extra_extensions: Sequence[x509.UnrecognizedExtension] = (),
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if not names:
            raise ValueError("a leaf needs at least one name")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        start, end = (
            (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
            if expired
            else (now - dt.timedelta(days=1), now + dt.timedelta(days=not_after_days))
        )
        alt: list[x509.GeneralName] = []
        for n in [*names, *extra_names]:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        for extension in extra_extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(self.key, hashes.SHA256()), key
