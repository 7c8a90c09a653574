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
from probe.config.fingerprints import Fingerprints
from probe.model import TcpObservation, TlsObservation, Verdict
from probe.vocab import CERTIFICATE_FAILURES, Failure, Method, Status

_RESET = {Failure.CONNECTION_RESET, Failure.EOF}


def tcp_verdict(o: TcpObservation) -> Verdict | None:
    if o.failure is None:
        return None
    return Verdict(
        Status.UNREACHABLE, None, o.failure, f"tcp {o.address}:{o.port}: {o.failure}", address=o.address
    )


def tls_verdict(attempts: Sequence[TlsObservation], fingerprints: Fingerprints) -> Verdict | None:
    """``attempts`` are one port's handshakes: the real one, then any decoy."""
    real = next((o for o in attempts if not o.decoy), None)
    if real is None or real.failure is None:
        return None
    where = f"{real.address}:{real.port}"
    decoy = next((o for o in attempts if o.decoy), None)
    if real.failure in _RESET or real.failure is Failure.TIMEOUT:
        method = Method.TLS_TIMEOUT if real.failure is Failure.TIMEOUT else Method.TLS_RESET
        if decoy is not None and decoy.failure is None:
            return Verdict(
                Status.BLOCKED,
                method,
                real.failure,
                f"tls {where}: {real.failure} after ClientHello with SNI {real.sni}; "
                f"the same handshake with SNI {decoy.sni} completes",
                address=real.address,
            )
        decoy_note = f"decoy SNI also fails ({decoy.failure})" if decoy else "decoy SNI could not connect"
        return Verdict(
            Status.UNREACHABLE,
            None,
            real.failure,
            f"tls {where}: {real.failure}; {decoy_note}",
            address=real.address,
        )
    if real.failure in CERTIFICATE_FAILURES:
        issuer = real.certificate.issuer if real.certificate else "unknown issuer"
        ca = match_interception_ca(fingerprints, issuer) if real.certificate else None
        if ca is not None:
            return Verdict(
                Status.BLOCKED,
                Method.TLS_MITM,
                real.failure,
                f"tls {where}: certificate for {real.sni} issued by {issuer}, "
                f"a known interception CA ({ca.name})",
                fingerprint=ca.name,
                address=real.address,
            )
        return Verdict(
            Status.UNREACHABLE,
            None,
            real.failure,
            f"tls {where}: {real.failure} (issuer: {issuer})",
            address=real.address,
        )
    return Verdict(
        Status.UNREACHABLE, None, real.failure, f"tls {where}: {real.failure}", address=real.address
    )
