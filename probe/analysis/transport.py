"""TCP and TLS verdicts for one address.

TCP failures alone never prove a block here: a dropped SYN or a reset looks
the same whether a censor or an outage caused it, so they are
``unreachable`` until a peer control (another vantage, a control server)
says the address is up. TLS failures are different: the decoy handshake to
the very same address is the control. If the decoy completes where the real
name was reset or stalled, the path reacted to the name.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.analysis.fingerprints import match_interception_ca
from probe.analysis.needs import needs_decoy
from probe.analysis.witness import decoy_witness
from probe.config.fingerprints import Fingerprints
from probe.model import TcpObservation, TlsObservation, Verdict, Witness
from probe.vocab import CERTIFICATE_FAILURES, Method, Purpose, Status


def tcp_verdict(o: TcpObservation) -> Verdict | None:
    if o.failure is None:
        return None
    return Verdict(
        Status.UNREACHABLE, None, o.failure, f"tcp {o.address}:{o.port}: {o.failure}", address=o.address
    )


def tls_verdict(attempts: Sequence[TlsObservation], fingerprints: Fingerprints) -> Verdict | None:
    """``attempts`` are one port's handshakes: the real one, then any decoy or inspection."""
    real = next((o for o in attempts if o.purpose is Purpose.CHECK), None)
    if real is None or real.failure is None:
        return None
    where = f"{real.address}:{real.port}"
    if needs_decoy(real.failure):
        decoy = next((o for o in attempts if o.purpose is Purpose.DECOY), None)
        return decoy_witness(
            real.failure,
            decoy_ok=decoy is not None and decoy.failure is None,
            reset=Method.TLS_RESET,
            timeout=Method.TLS_TIMEOUT,
            address=real.address,
            seen=f"tls {where}: {real.failure} after ClientHello with SNI {real.sni}",
            survived=f"the same handshake with SNI {decoy.sni if decoy else '-'} completes",
            failed=f"decoy SNI also fails ({decoy.failure})" if decoy else "decoy SNI could not connect",
        )
    if real.failure in CERTIFICATE_FAILURES:
        inspected = next((o for o in attempts if o.purpose is Purpose.INSPECT), None)
        certificate = real.certificate or (inspected.certificate if inspected else None)
        issuer = certificate.issuer if certificate else "unknown issuer"
        ca = match_interception_ca(fingerprints, issuer) if certificate else None
        if ca is not None:
            return Verdict(
                Status.BLOCKED,
                Method.TLS_MITM,
                real.failure,
                f"tls {where}: certificate for {real.sni} issued by {issuer}, "
                f"a known interception CA ({ca.name})",
                fingerprint=ca.name,
                address=real.address,
                witnesses=(Witness("fingerprint", ca.name),),
            )
        unreadable = inspected.certificate_error if inspected and inspected.certificate_error else None
        note = f"certificate unreadable: {unreadable}" if unreadable else f"issuer: {issuer}"
        return Verdict(
            Status.UNREACHABLE,
            None,
            real.failure,
            f"tls {where}: {real.failure} ({note})",
            address=real.address,
        )
    return Verdict(
        Status.UNREACHABLE, None, real.failure, f"tls {where}: {real.failure}", address=real.address
    )
