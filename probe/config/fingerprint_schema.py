"""What a valid fingerprint entry is: the one validator both readers
(``probe.config.fingerprint_files``) feed with an :class:`Entry`.

Every problem becomes ``file:line: section[index].key: reason``, in line
order within an entry, worded as the config loader words it: the same "did
you mean" (:func:`probe.config.nodes.unknown_key`) and "expected an integer"
(:data:`probe.config.nodes.KIND_NAMES`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.config import values
from probe.config.fingerprint_model import DNS, KINDS, SCOPES, Fingerprint, InterceptionCA, Kind, Scope
from probe.config.nodes import KIND_NAMES, unknown_key

_KEYS = {
    "http": {"name", "scope", "location", "type", "pattern", "countries", "confidence", "source"},
    "dns": {"name", "scope", "type", "pattern", "countries", "confidence", "source"},
    "interception_cas": {"name", "issuer", "countries", "source"},
}
SECTIONS = tuple(_KEYS)
_REQUIRED = {
    "http": ("name", "scope", "location", "type", "pattern"),
    "dns": ("name", "scope", "type", "pattern"),
    "interception_cas": ("name", "issuer", "source"),
}
_LOCATION = re.compile(r"^(body|header\.[a-z0-9-]+)$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# Dict lookups: Scope(text) is ~15x slower, ~3 ms over the 1,955 built-in entries.
_SCOPES = {scope.value: scope for scope in Scope}
_KINDS = {kind.value: kind for kind in Kind}


@dataclass(slots=True)
class Entry:
    """One entry as a reader found it, not yet validated."""

    section: str  # one of SECTIONS
    index: int  # its position in the section, for messages
    line: int
    value: Any
    key_lines: dict[str, int] = field(default_factory=dict)  # when keys sit on other lines (YAML)


def validate(path: Path, entry: Entry, problems: list[str]) -> Fingerprint | InterceptionCA | None:
    """The fingerprint or CA, or None with every problem of the entry added to ``problems``."""
    check = _Check(path, entry)
    item = _entry(check, entry)
    # In line order: the keys of a block-style entry sit on lines of their own.
    problems.extend(text for _, text in sorted(check.found, key=lambda found: found[0]))
    return item


def _entry(c: _Check, entry: Entry) -> Fingerprint | InterceptionCA | None:
    if not isinstance(entry.value, dict):
        c.problem(None, "expected a mapping")
        return None
    allowed = _KEYS[entry.section]
    for key in entry.value:
        if key not in allowed:
            c.problem(key, unknown_key(key, allowed))
    missing = [k for k in _REQUIRED[entry.section] if k not in entry.value]
    if missing:
        c.problem(None, f"missing {', '.join(repr(k) for k in missing)}")
    name, source, countries = c.text("name"), c.text("source"), c.countries()
    if entry.section == "interception_cas":
        issuer = c.text("issuer")
        regex = c.compiled("issuer", issuer) if issuer else None
        return InterceptionCA(name, regex, countries, source) if c.ok and regex else None
    scope_text, kind_text, pattern = c.text("scope"), c.text("type"), c.text("pattern")
    scope, kind = _SCOPES.get(scope_text), _KINDS.get(kind_text)
    if scope_text and scope is None:
        c.problem("scope", f"unknown {scope_text!r} (use {', '.join(sorted(SCOPES))})")
    if kind_text and kind is None:
        c.problem("type", f"unknown {kind_text!r} (use {', '.join(KINDS)})")
    confidence = c.typed("confidence", int, 0)
    if confidence < 0:
        c.problem("confidence", f"must be 0 or more, got {confidence}")
    if entry.section == "dns":
        location = DNS
        if kind_text and kind_text != Kind.FULL:
            c.problem("type", f"DNS fingerprints match whole addresses: use full, not {kind_text!r}")
        try:
            pattern = _dns_key(pattern) if pattern else pattern
        except ValueError:
            c.problem("pattern", f"expected an IP address or a host name (a CNAME), got {pattern!r}")
    else:
        location = c.text("location")
        if location and not _LOCATION.match(location):
            c.problem("location", f"unknown {location!r} (use body or header.<lower-case name>)")
    regex = c.compiled("pattern", pattern) if kind == Kind.REGEXP and pattern else None
    if not c.ok or scope is None or kind is None:
        return None
    return Fingerprint(
        name, scope, location, kind, pattern, countries, confidence, regex, pattern.encode(), source
    )


def _dns_key(text: str) -> str:
    """An address in its canonical form, or a host name (OONI lists CNAME targets too)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return values.hostname(text)


class _Check:
    """The problems of one entry, each kept with its line so they can be sorted."""

    def __init__(self, path: Path, entry: Entry) -> None:
        self.path, self.entry = path, entry
        self.where = f"{entry.section}[{entry.index}]"
        self.found: list[tuple[int, str]] = []

    @property
    def ok(self) -> bool:
        return not self.found

    def problem(self, key: str | None, message: str) -> None:
        line = self.entry.key_lines.get(key or "", self.entry.line)
        self.found.append((line, f"{self.path}:{line}: {self.where}{'.' + key if key else ''}: {message}"))

    def typed(self, key: str, kind: type, default: Any = None) -> Any:
        value = self.entry.value.get(key, default)
        if key in self.entry.value and (not isinstance(value, kind) or isinstance(value, bool)):
            self.problem(key, f"expected {KIND_NAMES[kind]}, got {value!r}")
            return default
        return value

    def text(self, key: str) -> str:
        if key not in self.entry.value:
            return ""
        value = self.entry.value[key]
        if not isinstance(value, str):
            self.problem(key, f"expected a string, got {value!r}")
            return ""
        if not value:
            self.problem(key, "must not be empty")
        return value

    def compiled(self, key: str, pattern: str) -> re.Pattern[str] | None:
        try:
            return re.compile(pattern)
        except re.error as exc:
            self.problem(key, f"bad regexp: {exc}")
            return None

    def countries(self) -> tuple[str, ...]:
        countries = self.typed("countries", list, [])
        bad = [c for c in countries if not isinstance(c, str) or not _COUNTRY.match(c)]
        if bad:
            self.problem("countries", f"expected ISO 3166 codes such as RU, got {bad[0]!r}")
        return tuple(c for c in countries if c not in bad)
