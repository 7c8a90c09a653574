"""HTTP verdicts for one URL at one address.

Any HTTP response from the real server counts as reachable, whatever its
status (as in OONI's telegram and web tests): a 403 from WeChat is WeChat's
business. Interference shows as a response that is not the service's (a
blockpage fingerprint, a redirect off the service's domains) or as a reset
or silence that a decoy Host to the same address does not get.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from probe.analysis.fingerprints import match_http
from probe.analysis.needs import needs_http_decoy
from probe.analysis.witness import decoy_witness
from probe.config.fingerprints import Fingerprints
from probe.model import HttpObservation, Verdict, Witness
from probe.vocab import Method, Operation, Status


def on_domains(host: str, domains: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def slow_text(o: HttpObservation) -> str:
    """``slow: 6,144 bytes in 10.0 s (614 B/s)``: the body that arrived before the timeout."""
    per_second = o.body_length / o.duration if o.duration > 0 else 0.0
    return f"slow: {o.body_length:,} bytes in {o.duration:.1f} s ({per_second:,.0f} B/s)"


def http_verdict(
    attempts: Sequence[HttpObservation], domains: Sequence[str], fingerprints: Fingerprints
) -> Verdict | None:
    real = next((o for o in attempts if not o.decoy), None)
    if real is None:
        return None
    label = f"{real.method} {real.url} via {real.address}"
    if real.failure is None:
        locations = tuple(h.location for h in real.redirects if h.location)
        match = match_http(fingerprints, real.headers, real.body, locations)
        if match is not None and not match.false_positive:
            return Verdict(
                Status.BLOCKED,
                Method.HTTP_BLOCKPAGE,
                None,
                f"{label}: HTTP {real.status} matches blockpage fingerprint {match.fingerprint.name}",
                fingerprint=match.fingerprint.name,
                address=real.address,
                witnesses=(Witness("fingerprint", match.fingerprint.name),),
            )
        for hop in real.redirects:
            host = urlsplit(hop.location or "").hostname or ""
            if hop.location and not on_domains(host, domains) and host != real.host:
                return Verdict(
                    Status.BLOCKED,
                    Method.HTTP_REDIRECT,
                    None,
                    f"{label}: HTTP {hop.status} redirect to {hop.location}, outside {', '.join(domains)}",
                    address=real.address,
                    witnesses=(Witness("domains", ", ".join(domains)),),
                )
        return None
    if real.slow:
        # A timeout after the status line and part of the body is a slow
        # transfer: the server answered and the path carries bytes, only too
        # slowly. A decoy Host proves nothing here (a name-triggered policer
        # lets a short decoy through as fast as a congested link would), so
        # it is never http.timeout; the throttle check's pairs are the witness.
        return Verdict(
            Status.UNREACHABLE,
            None,
            real.failure,
            f"{label}: {slow_text(real)}",
            address=real.address,
        )
    if needs_http_decoy(real) and real.failure is not None:
        decoy = next((o for o in attempts if o.decoy), None)
        # An HTTPS request reset in its own handshake was reset on the SNI, not the request.
        in_handshake = real.failed_operation is Operation.TLS_HANDSHAKE
        return decoy_witness(
            real.failure,
            decoy_ok=decoy is not None and decoy.failure is None,
            reset=Method.TLS_RESET if in_handshake else Method.HTTP_RESET,
            timeout=Method.TLS_TIMEOUT if in_handshake else Method.HTTP_TIMEOUT,
            address=real.address,
            seen=f"{label}: {real.failure} "
            + ("during the TLS handshake" if in_handshake else "after the request"),
            survived=f"the same request with Host {decoy.host if decoy else '-'} gets HTTP "
            f"{decoy.status if decoy else '-'}",
            failed=f"decoy Host also fails ({decoy.failure})" if decoy else "no decoy request ran",
        )
    step = f" during {real.failed_operation}" if real.failed_operation else ""
    return Verdict(
        Status.UNREACHABLE, None, real.failure, f"{label}: {real.failure}{step}", address=real.address
    )
