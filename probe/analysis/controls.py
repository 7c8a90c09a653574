"""What the control peers saw, as the rules need it: pure functions of their answers.

A peer that could not be reached or refused saw nothing: it is neither a
witness for a block nor for an outage. Asked and none reachable is its own
fact (``no_peer_reached``): the verdict is then ``unknown``, since a control
behind the same censor is no control.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from probe.addresses import in_prefixes
from probe.config.model import Endpoint
from probe.control.api import Answer, ConnectSummary, Summary, TlsSummary


def seen(answers: Sequence[Answer]) -> list[tuple[str, Summary]]:
    return [(a.peer, a.summary) for a in answers if a.summary is not None]


def no_peer_reached(answers: Sequence[Answer]) -> str | None:
    """Why no peer answered, when some were asked and none did."""
    if not answers or any(a.reachable for a in answers):
        return None
    return "no control peer reachable (" + "; ".join(f"{a.peer}: {a.error}" for a in answers) + ")"


def _outcomes(
    answers: Sequence[Answer],
    step: Callable[[Summary], Sequence[ConnectSummary | TlsSummary]],
    address: str,
    port: int,
) -> tuple[list[str], list[str]]:
    ok, failed = [], []
    for peer, summary in seen(answers):
        results = [r.failure for r in step(summary) if r.address == address and r.port == port]
        if any(f is None for f in results):
            ok.append(peer)
        elif results:
            failed.append(peer)
    return ok, failed


def connects(answers: Sequence[Answer], address: str, port: int) -> tuple[list[str], list[str]]:
    """Peers that connected to ``address:port``, and peers that tried and failed."""
    return _outcomes(answers, lambda s: s.tcp, address, port)


def verifies(answers: Sequence[Answer], address: str, port: int) -> tuple[list[str], list[str]]:
    """Peers whose TLS to ``address:port`` verified for the name, and those whose failed."""
    return _outcomes(answers, lambda s: s.tls, address, port)


def genuine(answers: Sequence[Answer], endpoint: Endpoint, address: str) -> bool:
    """Is ``address`` the service's own? The catalog says so (an IP literal, an
    expected prefix) or a peer's resolver answered it."""
    if endpoint.is_ip and address == endpoint.host:
        return True
    if endpoint.expected.prefixes and in_prefixes(address, endpoint.expected.prefixes):
        return True
    return any(s.dns is not None and address in s.dns.addresses for _, s in seen(answers))
