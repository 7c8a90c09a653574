"""The loaded fingerprints, indexed once the way the matcher walks them.

``probe.analysis.fingerprints`` looks for matches tier by tier (known false
positives, then block scopes, then vague words), header patterns by
location, and every body substring at once through one Aho-Corasick
:class:`~probe.substrings.SubstringIndex`. Building that on every response
would cost more than matching, so it is built here, at load: the daemon
loads at start and at reload, and a reload that fails leaves the old index.

It is built in the config layer, not in ``probe.analysis``, because the
loader returns it and config must not import analysis; analysis only reads
these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.config.fingerprint_model import BLOCK_SCOPES, BODY, Fingerprint, InterceptionCA, Kind, Scope
from probe.substrings import SubstringIndex

# The order matches are looked for in.
TIERS = (frozenset({Scope.FALSE_POSITIVE}), BLOCK_SCOPES, frozenset({Scope.VAGUE}))


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier's patterns, as the matcher walks them (body substrings are in the shared index)."""

    scopes: frozenset[Scope]
    headers: dict[str, tuple[Fingerprint, ...]]  # location -> fingerprints, in file order
    body: tuple[Fingerprint, ...]  # full, prefix and regexp body patterns, in file order
    # For each of ``body``: text a regexp's match must start with ("" when
    # unknown), so a quick substring test can spare running it.
    leads: tuple[str, ...]


@dataclass(frozen=True)
class Fingerprints:
    http: tuple[Fingerprint, ...]
    dns: tuple[Fingerprint, ...]
    interception_cas: tuple[InterceptionCA, ...]
    # Built once from the above: see probe.analysis.fingerprints for their use.
    tiers: tuple[Tier, ...] = field(init=False, repr=False, compare=False)
    substrings: SubstringIndex = field(init=False, repr=False, compare=False)
    by_substring: tuple[tuple[Fingerprint, ...], ...] = field(init=False, repr=False, compare=False)
    rank: dict[str, int] = field(init=False, repr=False, compare=False)  # http name -> file position
    dns_answers: dict[str, Fingerprint] = field(init=False, repr=False, compare=False)  # address or name

    def __post_init__(self) -> None:
        literals: dict[bytes, list[Fingerprint]] = {}
        for f in self.http:
            if f.location == BODY and f.kind == Kind.CONTAINS:
                literals.setdefault(f.raw, []).append(f)
        put = object.__setattr__
        put(self, "tiers", tuple(_tier(scopes, self.http) for scopes in TIERS))
        put(self, "substrings", SubstringIndex.build(tuple(literals)))
        put(self, "by_substring", tuple(tuple(fs) for fs in literals.values()))
        put(self, "rank", {f.name: i for i, f in enumerate(self.http)})
        # Known false positives are never a block address; the first of a pattern listed twice wins.
        answers = {f.pattern: f for f in reversed(self.dns) if f.scope != Scope.FALSE_POSITIVE}
        put(self, "dns_answers", answers)


def _tier(scopes: frozenset[Scope], http: tuple[Fingerprint, ...]) -> Tier:
    headers: dict[str, list[Fingerprint]] = {}
    for f in http:
        if f.scope in scopes and f.location != BODY:
            headers.setdefault(f.location, []).append(f)
    body = tuple(f for f in http if f.scope in scopes and f.location == BODY and f.kind != Kind.CONTAINS)
    leads = tuple(literal_lead(f.pattern) if f.kind == Kind.REGEXP else "" for f in body)
    return Tier(scopes, {k: tuple(v) for k, v in headers.items()}, body, leads)


_META = frozenset(".^$*+?{}[]|()\\")


def literal_lead(pattern: str) -> str:
    """The literal text every match of ``pattern`` starts with ("" if none is plain to see).

    Conservative: it stops at the first metacharacter, and gives up on an
    alternation, so a regexp is never skipped when it could have matched.
    Under three characters the test would spare little, so "" then too.
    """
    if "|" in pattern:
        return ""  # an alternation: no single text every match starts with
    lead: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            char, step = pattern[i + 1], 2  # an escaped punctuation character is itself
        elif char in _META:
            break
        else:
            step = 1
        if pattern[i + step : i + step + 1] in ("*", "?", "{"):
            break  # a quantifier: this character may not be there at all
        lead.append(char)
        i += step
    return "".join(lead) if len(lead) >= 3 else ""
