"""Pure fingerprint matching: does this response, address or issuer match a known block?

Bodies are matched as bytes on their first ``BODY_WINDOW`` bytes: a
blockpage is small (the ones in OONI's list are a few KiB), and scanning
1,300 patterns over a 512 KiB genuine page would cost ~130 ms per response;
over 64 KiB it is ~15 ms, and only when the response has a body at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.config.fingerprints import Fingerprint, Fingerprints, InterceptionCA

BODY_WINDOW = 64 * 1024


@dataclass(frozen=True, slots=True)
class Match:
    fingerprint: Fingerprint
    false_positive: bool  # a known false positive or a vague word: never a block

    @property
    def blocks(self) -> bool:
        return not self.false_positive


def _hit_text(f: Fingerprint, text: str) -> bool:
    if f.kind == "full":
        return text == f.pattern
    if f.kind == "prefix":
        return text.startswith(f.pattern)
    if f.kind == "contains":
        return f.pattern in text
    return f.regex is not None and f.regex.search(text) is not None


def _hit_body(f: Fingerprint, body: bytes, text: str | None) -> bool:
    if f.kind == "contains":
        return f.raw in body
    if f.kind == "prefix":
        return body.startswith(f.raw)
    if f.kind == "full":
        return body == f.raw
    return text is not None and _hit_text(f, text)


def match_http(
    fps: Fingerprints, headers: tuple[tuple[str, str], ...], body: bytes, locations: tuple[str, ...] = ()
) -> Match | None:
    """The fingerprint the response matches. Known false positives are checked
    first, at every location: one of them anywhere means no block."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(f"header.{name.lower()}", []).append(value)
    if locations:
        values.setdefault("header.location", []).extend(locations)
    window = body[:BODY_WINDOW]
    text = window.decode("utf-8", "replace") if window else None

    def hits(f: Fingerprint) -> bool:
        if f.location == "body":
            return bool(window) and _hit_body(f, window, text)
        return any(_hit_text(f, t) for t in values.get(f.location, ()))

    # fps.tiers: known false positives (a veto), then block-grade scopes, then vague words.
    for tier, by_location in enumerate(fps.tiers):
        for location, fingerprints in by_location.items():
            if location not in values and not (location == "body" and window):
                continue
            if location == "body":
                # Most body patterns are plain substrings: test those in a tight loop first.
                found = next((f for f in fingerprints if f.kind == "contains" and f.raw in window), None)
                found = found or next((f for f in fingerprints if f.kind != "contains" and hits(f)), None)
            else:
                found = next((f for f in fingerprints if hits(f)), None)
            if found is not None:
                return Match(found, tier != 1)
    return None


def match_dns(fps: Fingerprints, address: str) -> Fingerprint | None:
    found = fps.dns_full.get(address)
    if found is not None:
        return found
    return next((f for f in fps.dns if f.kind != "full" and f.scope != "fp" and _hit_text(f, address)), None)


def match_interception_ca(fps: Fingerprints, issuer: str) -> InterceptionCA | None:
    return next((ca for ca in fps.interception_cas if ca.issuer.search(issuer)), None)
