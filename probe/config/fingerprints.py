"""Blocking fingerprints (``config/blockpages.yaml``): blockpages, DNS block
addresses and interception CAs, loaded once at start and validated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from probe.config.load import ConfigError, builtin_path

_KINDS = {"full", "prefix", "contains", "regexp"}


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


@dataclass(frozen=True, slots=True)
class InterceptionCA:
    name: str
    issuer: re.Pattern[str]
    countries: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Fingerprints:
    http: tuple[Fingerprint, ...]
    dns: tuple[Fingerprint, ...]
    interception_cas: tuple[InterceptionCA, ...]


def _fingerprint(raw: Any, where: str, location: str | None, problems: list[str]) -> Fingerprint | None:
    if not isinstance(raw, dict) or not {"name", "type", "pattern"} <= raw.keys():
        problems.append(f"{where}: needs name, type and pattern")
        return None
    kind = str(raw["type"])
    if kind not in _KINDS:
        problems.append(f"{where}: type: unknown {kind!r} (use {', '.join(sorted(_KINDS))})")
        return None
    regex = None
    if kind == "regexp":
        try:
            regex = re.compile(str(raw["pattern"]))
        except re.error as exc:
            problems.append(f"{where}: pattern: bad regexp: {exc}")
            return None
    return Fingerprint(
        name=str(raw["name"]),
        scope=str(raw.get("scope", "")),
        location=location or str(raw.get("location", "body")),
        kind=kind,
        pattern=str(raw["pattern"]),
        countries=tuple(raw.get("countries") or ()),
        confidence=int(raw.get("confidence", 0)),
        regex=regex,
    )


def load_fingerprints(path: Path | None = None) -> Fingerprints:
    path = path or builtin_path("blockpages.yaml")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot load fingerprints: {exc}"]) from None
    problems: list[str] = []
    http = [
        _fingerprint(r, f"{path}: http[{i}]", None, problems) for i, r in enumerate(document.get("http", []))
    ]
    dns = [
        _fingerprint(r, f"{path}: dns[{i}]", "dns", problems) for i, r in enumerate(document.get("dns", []))
    ]
    cas = []
    for i, raw in enumerate(document.get("interception_cas", [])):
        try:
            cas.append(
                InterceptionCA(
                    str(raw["name"]),
                    re.compile(str(raw["issuer"])),
                    tuple(raw.get("countries") or ()),
                    str(raw.get("source", "")),
                )
            )
        except (KeyError, TypeError, re.error) as exc:
            problems.append(f"{path}: interception_cas[{i}]: {exc}")
    if problems:
        raise ConfigError(problems)
    return Fingerprints(
        tuple(f for f in http if f is not None), tuple(f for f in dns if f is not None), tuple(cas)
    )
