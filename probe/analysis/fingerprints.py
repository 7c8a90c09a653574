"""Pure fingerprint matching: does this response, address or issuer match a known block?

Tiers, in order (OONI's scopes): known false positives, then block scopes,
then vague blocking words. A false positive anywhere in the response vetoes
the rest; within a tier the fingerprint earliest in the file wins, so the
answer does not depend on which location happened to be looked at first.

Bodies: the whole body for ``full`` and ``prefix``; its first
``BODY_WINDOW`` bytes for substrings and regexps. A blockpage is small (the
ones in OONI's list are a few KiB), and the regexps need the window decoded
and searched one by one, which a genuine 512 KiB page is not worth.
Substrings are matched as bytes, all at once, by the Aho-Corasick
:class:`~probe.substrings.SubstringIndex` built at load (~0.3 ms for 1,300
of them over 64 KiB); the window is decoded once, for the regexps, and a
regexp only runs when the literal text its matches start with is there.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from probe.config.fingerprints import BLOCK_SCOPES, Fingerprint, Fingerprints, InterceptionCA, Tier

BODY_WINDOW = 64 * 1024


@dataclass(frozen=True, slots=True)
class Match:
    fingerprint: Fingerprint
    false_positive: bool  # a known false positive or a vague word: never a block

    @property
    def blocks(self) -> bool:
        return not self.false_positive


def _hit(f: Fingerprint, text: str) -> bool:
    if f.kind == "full":
        return text == f.pattern
    if f.kind == "prefix":
        return text.startswith(f.pattern)
    if f.kind == "contains":
        return f.pattern in text
    return f.regex is not None and f.regex.search(text) is not None


class _Response:
    """One response as the tiers see it; the window is decoded at most once."""

    def __init__(self, headers: tuple[tuple[str, str], ...], body: bytes, locations: tuple[str, ...]) -> None:
        self.values: dict[str, list[str]] = {}
        for name, value in headers:
            self.values.setdefault(f"header.{name.lower()}", []).append(value)
        if locations:
            self.values.setdefault("header.location", []).extend(locations)
        self.body = body
        self.window = body[:BODY_WINDOW]
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.window.decode("utf-8", "replace")
        return self._text

    def body_hit(self, f: Fingerprint, lead: str) -> bool:
        if f.kind == "full":
            return self.body == f.raw
        if f.kind == "prefix":
            return self.body.startswith(f.raw)
        if not self.window or f.regex is None or (lead and lead not in self.text):
            return False
        return f.regex.search(self.text) is not None

    def first(self, tier: Tier, found: list[Fingerprint], rank: dict[str, int]) -> Fingerprint | None:
        hits = [f for f in found if f.scope in tier.scopes]
        for location, fingerprints in tier.headers.items():
            values = self.values.get(location)
            if values:
                hits.extend(f for f in fingerprints if any(_hit(f, v) for v in values))
        if self.body:
            hits.extend(f for f, lead in zip(tier.body, tier.leads, strict=True) if self.body_hit(f, lead))
        return min(hits, key=lambda f: rank[f.name], default=None)


def match_http(
    fps: Fingerprints, headers: tuple[tuple[str, str], ...], body: bytes, locations: tuple[str, ...] = ()
) -> Match | None:
    """The fingerprint the final response (``headers``, ``body``) or a redirect
    hop (``locations``, matched as ``header.location``) matches, if any."""
    response = _Response(headers, body, locations)
    found = [f for i in fps.substrings.found(response.window) for f in fps.by_substring[i]] if body else []
    for tier in fps.tiers:
        hit = response.first(tier, found, fps.rank)
        if hit is not None:
            return Match(hit, false_positive=hit.scope not in BLOCK_SCOPES)
    return None


def match_dns(fps: Fingerprints, answer: str) -> Fingerprint | None:
    """The known blocking answer this is: an address, or a CNAME target (never a known false positive)."""
    try:
        key = str(ipaddress.ip_address(answer))
    except ValueError:
        key = answer.lower().rstrip(".")
    return fps.dns_answers.get(key)


def match_interception_ca(fps: Fingerprints, issuer: str) -> InterceptionCA | None:
    """The national interception root this certificate issuer names, if any."""
    return next((ca for ca in fps.interception_cas if ca.issuer.search(issuer)), None)
