"""The test PKI: leaves verify for exactly their names, under exactly their CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from probe.testbed.pki import Flaw, Leaf, TestCA
from tests.testbed.loop import HOST, client_context, run

CA = TestCA()


async def _handshake(leaf: Leaf, client: ssl.SSLContext, server_hostname: str) -> bytes:
    """One TLS handshake to a server presenting ``leaf``: the certificate the
    client got (DER), or what the client saw raised."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, HOST, 0, ssl=leaf.server_context())
    async with server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection(HOST, port, ssl=client, server_hostname=server_hostname)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        await writer.wait_closed()
    assert isinstance(der, bytes)
    return der


def handshake(leaf: Leaf, server_hostname: str, ca: TestCA = CA) -> bytes:
    return run(lambda: _handshake(leaf, client_context(ca), server_hostname))


def test_leaf_verifies_for_its_dns_names_wildcards_and_ip_literals() -> None:
    leaf = CA.issue(["svc.msgprobe.test", "*.cdn.msgprobe.test", HOST])
    for name in ("svc.msgprobe.test", "edge1.cdn.msgprobe.test", HOST):
        handshake(leaf, name)


@pytest.mark.parametrize(
    ("names", "server_hostname", "expected"),
    [
        (["svc.msgprobe.test"], "other.msgprobe.test", "Hostname mismatch"),
        (["svc.msgprobe.test"], HOST, "IP address mismatch"),
        (["*.cdn.msgprobe.test"], "a.b.cdn.msgprobe.test", "Hostname mismatch"),
    ],
)
def test_leaf_fails_verification_for_other_names(
    names: list[str], server_hostname: str, expected: str
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=expected):
        handshake(CA.issue(names), server_hostname)


def test_expired_leaf_fails_verification_as_expired() -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
        handshake(CA.issue(["svc.msgprobe.test"], expired=True), "svc.msgprobe.test")


def test_leaf_of_another_ca_fails_as_unknown_authority() -> None:
    interception = TestCA("msgprobe testbed interception CA")
    leaf = interception.issue(["svc.msgprobe.test"])
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        handshake(leaf, "svc.msgprobe.test")
    handshake(leaf, "svc.msgprobe.test", ca=interception)  # its own CA vouches for it


def test_leaf_names_its_issuer_and_validity() -> None:
    interception = TestCA("msgprobe testbed interception CA")
    cert = x509.load_pem_x509_certificate(interception.issue(["a.test", "::1"], not_after_days=3).cert_pem)
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert issuer == "msgprobe testbed interception CA"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a.test"
    days = (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    assert 2.9 < days <= 3
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.test"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["::1"]


def test_bundle_file_is_the_ca_a_client_can_trust(tmp_path: Path) -> None:
    bundle = CA.write_bundle(tmp_path / "ca.pem")
    context = ssl.create_default_context(cafile=bundle)
    leaf = CA.issue(["svc.msgprobe.test"])
    run(lambda: _handshake(leaf, context, "svc.msgprobe.test"))


def test_a_leaf_needs_a_name() -> None:
    with pytest.raises(ValueError, match="at least one name"):
        CA.issue([])


def test_server_context_is_built_once_per_leaf() -> None:
    leaf = CA.issue(["svc.msgprobe.test"])
    assert leaf.server_context() is leaf.server_context()


def test_fifty_leaves_with_server_contexts_are_cheap() -> None:
    # A demo start issues its certificates synchronously; the budget is 0.5 s
    # for 50 (measured ~0.2 s). Twice that leaves room for a loaded CI host.
    start = time.perf_counter()
    ca = TestCA()
    for i in range(50):
        ca.issue([f"svc{i}.msgprobe.test", HOST]).server_context()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"50 leaves took {elapsed:.2f} s"


def unverified() -> ssl.SSLContext:
    """A client like the probe's decoy and inspection handshakes: nothing verified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.mark.parametrize(
    ("flaw", "error", "message"),
    [
        (Flaw.NON_ASCII_SAN, ValueError, "GeneralName::DNSName"),
        (Flaw.DUPLICATE_EXTENSION, x509.DuplicateExtension, "Duplicate 1.3.6.1.4.1.32473.1 extension"),
    ],
)
def test_malformed_leaf_is_served_by_openssl_and_refused_by_cryptography(
    flaw: Flaw, error: type[Exception], message: str
) -> None:
    leaf = CA.issue_malformed(["svc.msgprobe.test"], flaw)
    der = run(lambda: _handshake(leaf, unverified(), "decoy.example"))
    assert der == leaf.cert_der
    cert = x509.load_der_x509_certificate(der)  # loads: cryptography parses extensions lazily
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc.msgprobe.test"
    with pytest.raises(error, match=message):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    with pytest.raises(error):
        _ = cert.extensions


def test_duplicate_extension_is_not_a_value_error() -> None:
    # What makes this flaw worth its own backend: `except ValueError` misses it.
    assert not issubclass(x509.DuplicateExtension, ValueError)


@pytest.mark.parametrize("flaw", list(Flaw))
def test_malformed_leaf_fails_verification_on_its_broken_signature(flaw: Flaw) -> None:
    leaf = CA.issue_malformed(["svc.msgprobe.test"], flaw)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate signature failure"):
        handshake(leaf, "svc.msgprobe.test")


def test_non_ascii_san_is_the_only_change_to_the_der() -> None:
    leaf = CA.issue_malformed(["svc.msgprobe.test"], Flaw.NON_ASCII_SAN)
    der = leaf.cert_der
    assert der.count(b"b\xfccher.test") == 1
    assert b"svc.msgprobe.test" in der  # the names asked for are still there
