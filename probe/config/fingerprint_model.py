"""What a blocking fingerprint is, once loaded and valid: plain frozen data.

Scopes and kinds are closed vocabularies (OONI's), so they are ``StrEnum``s:
a member compares equal to its text, and the validator
(``probe.config.fingerprint_schema``) admits nothing else. A location is
not a closed set (``body``, ``header.<any lower-case name>``, ``dns``), so
it stays a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """Who blocks, in OONI's words; two scopes are never a block on their own."""

    NATIONAL = "nat"
    ISP = "isp"
    PRODUCT = "prod"  # a middlebox product
    INSTITUTION = "inst"
    INJECTED = "injb"  # an injected blockpage
    PROVIDER = "prov"  # the content provider itself
    VAGUE = "vbw"  # a vague blocking word: recorded, never a block alone
    FALSE_POSITIVE = "fp"  # a known false positive: looked for first, vetoes any block


class Kind(StrEnum):
    """How a pattern matches the text at its location."""

    FULL = "full"
    PREFIX = "prefix"
    CONTAINS = "contains"
    REGEXP = "regexp"  # Python ``re``; OONI's RE2 rows that ``re`` cannot compile are dropped


BLOCK_SCOPES = frozenset(Scope) - {Scope.VAGUE, Scope.FALSE_POSITIVE}
SCOPES = frozenset(Scope)
KINDS = tuple(Kind)

BODY = "body"  # the locations that are not a header
DNS = "dns"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    name: str
    scope: Scope
    location: str  # BODY, "header.<lower-case name>", or DNS
    kind: Kind
    pattern: str  # for DNS, the address in canonical form or a lower-case host name
    countries: tuple[str, ...]
    confidence: int
    regex: re.Pattern[str] | None  # for Kind.REGEXP
    raw: bytes = b""  # the pattern as UTF-8, for matching bodies without decoding them
    source: str = ""


@dataclass(frozen=True, slots=True)
class InterceptionCA:
    """A national TLS interception root, known by its issuer."""

    name: str
    issuer: re.Pattern[str]  # searched in the RFC 4514 issuer ("CN=…,O=…,C=KZ")
    countries: tuple[str, ...]
    source: str
