"""TCP and TLS verdicts for one address.

TCP failures alone never prove a block here: a dropped SYN or a reset looks
the same whether a censor or an outage caused it. A peer control decides:
if a control connects to the same genuine address, the failure here is the
censor's (``tcp.timeout`` for silence, ``tcp.refused`` for a reset or an
ICMP prohibition); if every control fails too, the service is ``down``; if
no control could be reached, nothing is known (``unknown``). Without any
control configured the failure stays ``unreachable``.

TLS failures have a control of their own: the decoy handshake to the very
same address. If the decoy completes where the real name was reset or
stalled, the path reacted to the name. A certificate that fails here and
verifies at a control is an interception (``tls.mitm``).
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.analysis.controls import connects, no_peer_reached, verifies
from probe.analysis.fingerprints import match_interception_ca
from probe.analysis.needs import needs_decoy
from probe.analysis.witness import decoy_witness
from probe.config.fingerprints import Fingerprints
from probe.control.api import Answer
from probe.model import TcpObservation, TlsObservation, Verdict, Witness
from probe.vocab import CERTIFICATE_FAILURES, Failure, Method, Purpose, Status

_TCP_METHODS = {
    Failure.TIMEOUT: Method.TCP_TIMEOUT,
    Failure.CONNECTION_REFUSED: Method.TCP_REFUSED,
    # ICMP administratively prohibited arrives as "host/network unreachable".
    Failure.HOST_UNREACHABLE: Method.TCP_REFUSED,
    Failure.NETWORK_UNREACHABLE: Method.TCP_REFUSED,
}


def tcp_verdict(o: TcpObservation, answers: Sequence[Answer] = (), genuine: bool = False) -> Verdict | None:
    """``answers``: the control peers asked; ``genuine``: the address is the service's own."""
    if o.failure is None:
        return None
    where = f"tcp {o.address}:{o.port}: {o.failure}"
    unreachable = Verdict(Status.UNREACHABLE, None, o.failure, where, address=o.address)
    if not answers:
        return unreachable
    nobody = no_peer_reached(answers)
    if nobody is not None:
        return Verdict(Status.UNKNOWN, None, o.failure, f"{where}; {nobody}", address=o.address)
    ok, failed = connects(answers, o.address, o.port)
    method = _TCP_METHODS.get(o.failure)
    if ok and genuine and method is not None:
        witness = f"control {', '.join(ok)} connects to {o.address}:{o.port}"
        return Verdict(
            Status.BLOCKED,
            method,
            o.failure,
            f"{where} here; {witness}",
            address=o.address,
            witnesses=(Witness("control", witness),),
        )
    if failed and not ok:
        return Verdict(
            Status.DOWN,
            None,
            o.failure,
            f"{where}, and at control {', '.join(failed)} too",
            address=o.address,
        )
    return unreachable


def tls_verdict(
    attempts: Sequence[TlsObservation], fingerprints: Fingerprints, answers: Sequence[Answer] = ()
) -> Verdict | None:
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
        valid_at, invalid_at = verifies(answers, real.address, real.port)
        if ca is None and valid_at:
            witness = f"control {', '.join(valid_at)} verifies the certificate at {where}"
            return Verdict(
                Status.BLOCKED,
                Method.TLS_MITM,
                real.failure,
                f"tls {where}: {real.failure} here (issuer: {issuer}); {witness}",
                address=real.address,
                witnesses=(Witness("control", witness),),
            )
        if ca is None and invalid_at:
            return Verdict(
                Status.DOWN,
                None,
                real.failure,
                f"tls {where}: {real.failure} here and at control {', '.join(invalid_at)}",
                address=real.address,
            )
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
