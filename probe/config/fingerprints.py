"""Blocking fingerprints (``config/blockpages.yaml``, generated from OONI's
lists): blockpages, DNS block addresses and interception CAs.

Loaded once at start, strictly (one line per problem, like the config),
and indexed by where each pattern applies, so that matching a response
walks only the patterns for the places it has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from probe.config.load import ConfigError, builtin_path

KINDS = ("full", "prefix", "contains", "regexp")
# OONI scopes. Blocks: national, ISP, middlebox product, institution,
# injected blockpage, provider. "vbw" (a vague blocking word) is recorded but
# never a block on its own; "fp" is a known false positive, never a block.
BLOCK_SCOPES = frozenset({"nat", "isp", "prod", "inst", "injb", "prov"})
SCOPES = BLOCK_SCOPES | {"vbw", "fp"}
_HTTP_KEYS = {"name", "scope", "location", "type", "pattern", "countries", "confidence"}
_DNS_KEYS = _HTTP_KEYS - {"location"}
_CA_KEYS = {"name", "issuer", "countries", "source"}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    name: str
    scope: str
    location: str  # "body" | "header.<lower-case name>" | "dns"
    kind: str  # "full" | "prefix" | "contains" | "regexp"
    pattern: str
    countries: tuple[str, ...]
    confidence: int
    regex: re.Pattern[str] | None
    raw: bytes = b""  # the pattern as UTF-8, for matching bodies without decoding them


@dataclass(frozen=True, slots=True)
class InterceptionCA:
    name: str
    issuer: re.Pattern[str]
    countries: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Fingerprints:
    http: tuple[Fingerprint, ...]
    dns: tuple[Fingerprint, ...]
    interception_cas: tuple[InterceptionCA, ...]
    # Matching order, built once: known false positives (a veto), then
    # block-grade scopes, then vague words; within each tier, by location.
    tiers: tuple[dict[str, tuple[Fingerprint, ...]], ...] = field(init=False, repr=False, compare=False)
    dns_full: dict[str, Fingerprint] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tiers: list[dict[str, list[Fingerprint]]] = [{}, {}, {}]
        for f in self.http:
            tier = 0 if f.scope == "fp" else 1 if f.scope in BLOCK_SCOPES else 2
            tiers[tier].setdefault(f.location, []).append(f)
        object.__setattr__(self, "tiers", tuple({k: tuple(v) for k, v in t.items()} for t in tiers))
        full = {f.pattern: f for f in self.dns if f.kind == "full" and f.scope != "fp"}
        object.__setattr__(self, "dns_full", full)


class _Problems(list[str]):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def _fingerprint(raw: Any, where: str, dns: bool, problems: _Problems) -> Fingerprint | None:
    allowed = _DNS_KEYS if dns else _HTTP_KEYS
    if not isinstance(raw, dict):
        problems.add(where, "expected a mapping")
        return None
    for key in sorted(set(raw) - allowed):
        problems.add(f"{where}.{key}", "unknown key")
    missing = sorted({"name", "scope", "type", "pattern"} - set(raw))
    if missing:
        problems.add(where, f"missing {', '.join(missing)}")
        return None
    kind, scope, pattern = raw["type"], raw["scope"], raw["pattern"]
    if kind not in KINDS:
        problems.add(f"{where}.type", f"unknown {kind!r} (use {', '.join(KINDS)})")
        return None
    if scope not in SCOPES:
        problems.add(f"{where}.scope", f"unknown {scope!r} (use {', '.join(sorted(SCOPES))})")
        return None
    if not isinstance(pattern, str) or not pattern:
        problems.add(f"{where}.pattern", "expected a non-empty string")
        return None
    location = "dns" if dns else str(raw.get("location", ""))
    if not dns and location != "body" and not location.startswith("header."):
        problems.add(f"{where}.location", f"unknown {location!r} (use body or header.<name>)")
        return None
    regex = None
    if kind == "regexp":
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            problems.add(f"{where}.pattern", f"bad regexp: {exc}")
            return None
    confidence = raw.get("confidence", 0)
    if not isinstance(confidence, int) or isinstance(confidence, bool):
        problems.add(f"{where}.confidence", f"expected an integer, got {confidence!r}")
        return None
    return Fingerprint(
        str(raw["name"]),
        scope,
        location.lower(),
        kind,
        pattern,
        tuple(raw.get("countries") or ()),
        confidence,
        regex,
        pattern.encode(),
    )


def _interception_ca(raw: Any, where: str, problems: _Problems) -> InterceptionCA | None:
    if not isinstance(raw, dict) or not {"name", "issuer"} <= set(raw):
        problems.add(where, "needs name and issuer")
        return None
    for key in sorted(set(raw) - _CA_KEYS):
        problems.add(f"{where}.{key}", "unknown key")
    try:
        issuer = re.compile(str(raw["issuer"]))
    except re.error as exc:
        problems.add(f"{where}.issuer", f"bad regexp: {exc}")
        return None
    return InterceptionCA(
        str(raw["name"]), issuer, tuple(raw.get("countries") or ()), str(raw.get("source", ""))
    )


def load_fingerprints(path: Path | None = None) -> Fingerprints:
    path = path or builtin_path("blockpages.yaml")
    try:
        # libyaml's loader when PyYAML has it: ~20x faster on this 9,000-line file.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot load fingerprints: {exc}"]) from None
    problems = _Problems()
    if not isinstance(document, dict):
        raise ConfigError([f"{path}: expected a mapping with http, dns and interception_cas"])
    for key in sorted(set(document) - {"http", "dns", "interception_cas"}):
        problems.add(f"{path}: {key}", "unknown key")

    def section(name: str) -> list[Any]:
        value = document.get(name) or []
        if not isinstance(value, list):
            problems.add(f"{path}: {name}", "expected a list")
            return []
        return value

    http = [_fingerprint(r, f"{path}: http[{i}]", False, problems) for i, r in enumerate(section("http"))]
    dns = [_fingerprint(r, f"{path}: dns[{i}]", True, problems) for i, r in enumerate(section("dns"))]
    cas = [
        _interception_ca(r, f"{path}: interception_cas[{i}]", problems)
        for i, r in enumerate(section("interception_cas"))
    ]
    if problems:
        raise ConfigError(list(problems))
    return Fingerprints(
        tuple(f for f in http if f is not None),
        tuple(f for f in dns if f is not None),
        tuple(c for c in cas if c is not None),
    )
