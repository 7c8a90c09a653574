"""HTTP diff (``http.diff``): a plain-HTTP response that is not the one a control
peer gets for the same URL — a blockpage nobody has fingerprinted yet.

OONI's web connectivity rule (ts-017): the status codes match, and then the
body lengths are close (ratio ≥ 0.7), or the responses share an uncommon
header, or their titles match. Its known false positives are fixed here:
lengths are compared only when neither body was truncated (both sides cap at
the same 512 KiB), a control answering anything but 2xx says nothing about
the page, and OONI's false-positive fingerprints are checked first. A
truncated body with no title to compare is not enough to call a diff.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.analysis.controls import seen
from probe.analysis.fingerprints import match_http
from probe.config.fingerprints import Fingerprints
from probe.control.api import Answer, HttpSummary
from probe.model import HttpObservation, Verdict, Witness
from probe.vocab import Method, Status

LENGTH_RATIO = 0.7
# Headers nearly every server sends: sharing one of these says nothing (OONI's list).
COMMON_HEADERS = frozenset(
    {
        "date", "content-type", "server", "cache-control", "vary", "set-cookie", "location", "expires",
        "x-powered-by", "content-encoding", "last-modified", "accept-ranges", "pragma", "x-frame-options",
        "etag", "x-content-type-options", "age", "via", "p3p", "x-xss-protection", "content-length",
        "connection", "transfer-encoding", "keep-alive", "strict-transport-security",
    }
)  # fmt: skip


def _control_view(real: HttpObservation, answers: Sequence[Answer]) -> tuple[str, HttpSummary] | None:
    views = [
        (peer, h)
        for peer, summary in seen(answers)
        for h in summary.http
        if h.url == real.url and h.failure is None and h.status is not None
    ]
    same_address = [(peer, h) for peer, h in views if h.address == real.address]
    chosen = same_address or views
    return chosen[0] if chosen else None


def http_diff(real: HttpObservation, answers: Sequence[Answer], fingerprints: Fingerprints) -> Verdict | None:
    """A diff verdict for a plain-HTTP response, or None when it looks like the control's."""
    if real.failure is not None or real.status is None or not real.url.startswith("http://"):
        return None
    view = _control_view(real, answers)
    if view is None:
        return None
    peer, control = view
    if control.status is None or not 200 <= control.status < 300:
        return None  # a control refused or redirected: no reference page to compare with
    locations = tuple(h.location for h in real.redirects if h.location)
    match = match_http(fingerprints, real.headers, real.body, locations)
    if match is not None and match.false_positive:
        return None
    label = f"{real.method} {real.url} via {real.address}"
    if real.status != control.status:
        return _diff(label, real, peer, f"HTTP {real.status} here, {control.status} at control {peer}")
    comparable = not real.body_truncated and not control.body_truncated
    longest = max(real.body_length, control.body_length)
    ratio = min(real.body_length, control.body_length) / longest if longest else 1.0
    here = {n for n, _ in real.headers} - COMMON_HEADERS
    shared = sorted(here & (set(control.header_names) - COMMON_HEADERS))
    titles_match = bool(real.title) and real.title == control.title
    if (comparable and ratio >= LENGTH_RATIO) or shared or titles_match:
        return None
    titles_differ = bool(real.title) and bool(control.title) and real.title != control.title
    if not comparable and not titles_differ:
        return None  # nothing left that proves the pages differ
    facts = [
        f"HTTP {real.status} both",
        f"body {real.body_length} vs {control.body_length} bytes"
        + (f" (ratio {ratio:.2f})" if comparable else " (truncated: not compared)"),
        f"title {real.title!r} vs {control.title!r}",
        "no uncommon header in common",
    ]
    return _diff(label, real, peer, "; ".join(facts) + f" (control {peer})")


def _diff(label: str, real: HttpObservation, peer: str, facts: str) -> Verdict:
    return Verdict(
        Status.BLOCKED,
        Method.HTTP_DIFF,
        None,
        f"{label}: differs from the control's response: {facts}",
        address=real.address,
        witnesses=(Witness("control", f"{peer} gets the service's own page"),),
    )
