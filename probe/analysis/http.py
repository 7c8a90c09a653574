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
from probe.config.fingerprints import Fingerprints
from probe.model import HttpObservation, Verdict
from probe.vocab import Failure, Method, Status


def on_domains(host: str, domains: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


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
                )
        return None
    decoy = next((o for o in attempts if o.decoy), None)
    if real.failure in (Failure.CONNECTION_RESET, Failure.EOF, Failure.TIMEOUT):
        method = Method.HTTP_TIMEOUT if real.failure is Failure.TIMEOUT else Method.HTTP_RESET
        if decoy is not None and decoy.failure is None:
            return Verdict(
                Status.BLOCKED,
                method,
                real.failure,
                f"{label}: {real.failure} after the request; the same request with Host {decoy.host} "
                f"gets HTTP {decoy.status}",
                address=real.address,
            )
        note = f"; decoy Host also fails ({decoy.failure})" if decoy else ""
        return Verdict(
            Status.UNREACHABLE, None, real.failure, f"{label}: {real.failure}{note}", address=real.address
        )
    return Verdict(Status.UNREACHABLE, None, real.failure, f"{label}: {real.failure}", address=real.address)
