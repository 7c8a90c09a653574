"""Pure fingerprint matching: does this response, address or issuer match a known block?"""

from __future__ import annotations

from dataclasses import dataclass

from probe.config.fingerprints import Fingerprint, Fingerprints, InterceptionCA


@dataclass(frozen=True, slots=True)
class Match:
    fingerprint: Fingerprint
    false_positive: bool


def _hit(f: Fingerprint, text: str) -> bool:
    if f.kind == "full":
        return text == f.pattern
    if f.kind == "prefix":
        return text.startswith(f.pattern)
    if f.kind == "contains":
        return f.pattern in text
    return f.regex is not None and f.regex.search(text) is not None


def match_http(
    fps: Fingerprints, headers: tuple[tuple[str, str], ...], body: bytes, locations: tuple[str, ...] = ()
) -> Match | None:
    text = body.decode("utf-8", "replace")
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(f"header.{name.lower()}", []).append(value)
    values.setdefault("header.location", []).extend(locations)
    # Known false positives first: a match there is never a block.
    for want_fp in (True, False):
        for f in fps.http:
            if (f.scope == "fp") != want_fp:
                continue
            texts = [text] if f.location == "body" else values.get(f.location, [])
            if any(_hit(f, t) for t in texts):
                return Match(f, want_fp)
    return None


def match_dns(fps: Fingerprints, address: str) -> Fingerprint | None:
    return next((f for f in fps.dns if f.scope != "fp" and _hit(f, address)), None)


def match_interception_ca(fps: Fingerprints, issuer: str) -> InterceptionCA | None:
    return next((ca for ca in fps.interception_cas if ca.issuer.search(issuer)), None)
