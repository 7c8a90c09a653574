"""Blocking fingerprints (``config/blockpages.yaml``, generated from OONI's
lists by scripts/convert_fingerprints.py): blockpages, DNS block addresses
and interception CAs, loaded once at start and validated strictly.

Every problem is reported at once as ``file:line: key: reason``, like the
config loader. Two readers feed one validator:

* the generated file has one entry per line, each a JSON object (which is
  also a YAML flow mapping), so it is read line by line with ``json``:
  ~10 ms, where a YAML parser takes ~250 ms on these 2,000 entries, at every
  start and every reload;
* any other layout (a hand-written ``blockpages:`` file) goes through the
  YAML node tree of ``probe.config.load``: slower, same rules, same messages.

Several files load as one list, in order (:func:`load_fingerprints`): the
built-in one, then overlays such as the testbed's.

Loading also indexes the patterns the way the matcher walks them
(``probe.analysis.fingerprints``): by tier (known false positives, block
scopes, vague words) and by location, with every body substring in one
Aho-Corasick :class:`SubstringIndex`.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from probe.config import values
from probe.config.nodes import KIND_NAMES as _KIND_NAMES
from probe.config.nodes import ConfigError, builtin_path
from probe.config.nodes import NodeReader as _Reader
from probe.substrings import SubstringIndex

KINDS = ("full", "prefix", "contains", "regexp")
# OONI's scopes. Blocks: national, ISP, middlebox product, institution,
# injected blockpage, provider. "vbw" (a vague blocking word) is recorded but
# never a block on its own; "fp" is a known false positive, never a block.
BLOCK_SCOPES = frozenset({"nat", "isp", "prod", "inst", "injb", "prov"})
SCOPES = BLOCK_SCOPES | {"vbw", "fp"}
TIERS = (frozenset({"fp"}), BLOCK_SCOPES, frozenset({"vbw"}))  # the order matches are looked for in

_KEYS = {
    "http": {"name", "scope", "location", "type", "pattern", "countries", "confidence", "source"},
    "dns": {"name", "scope", "type", "pattern", "countries", "confidence", "source"},
    "interception_cas": {"name", "issuer", "countries", "source"},
}
_REQUIRED = {
    "http": ("name", "scope", "location", "type", "pattern"),
    "dns": ("name", "scope", "type", "pattern"),
    "interception_cas": ("name", "issuer", "source"),
}
_LOCATION = re.compile(r"^(body|header\.[a-z0-9-]+)$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_SECTION = re.compile(r"^(http|dns|interception_cas):[ \t]*$")
# What the JSON reader must leave to YAML: characters YAML reads differently
# from JSON (raw line breaks other than LF, non-printables), and escaped
# surrogate halves (JSON pairs them, YAML does not).
_NOT_PLAIN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


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
    source: str = ""


@dataclass(frozen=True, slots=True)
class InterceptionCA:
    name: str
    issuer: re.Pattern[str]
    countries: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier's patterns, as the matcher walks them (body substrings are in the shared index)."""

    scopes: frozenset[str]
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
        tiers = []
        for scopes in TIERS:
            headers: dict[str, list[Fingerprint]] = {}
            for f in self.http:
                if f.scope in scopes and f.location != "body":
                    headers.setdefault(f.location, []).append(f)
            body = tuple(
                f for f in self.http if f.scope in scopes and f.location == "body" and f.kind != "contains"
            )
            leads = tuple(_literal_lead(f.pattern) if f.kind == "regexp" else "" for f in body)
            tiers.append(Tier(scopes, {k: tuple(v) for k, v in headers.items()}, body, leads))
        literals: dict[bytes, list[Fingerprint]] = {}
        for f in self.http:
            if f.location == "body" and f.kind == "contains":
                literals.setdefault(f.raw, []).append(f)
        put = object.__setattr__
        put(self, "tiers", tuple(tiers))
        put(self, "substrings", SubstringIndex.build(tuple(literals)))
        put(self, "by_substring", tuple(tuple(fs) for fs in literals.values()))
        put(self, "rank", {f.name: i for i, f in enumerate(self.http)})
        # Known false positives are never a block address.
        put(self, "dns_answers", {f.pattern: f for f in reversed(self.dns) if f.scope != "fp"})


_META = frozenset(".^$*+?{}[]|()\\")


def _literal_lead(pattern: str) -> str:
    """The literal text every match of ``pattern`` starts with ("" if none is plain to see)."""
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


def _dns_key(text: str) -> str:
    """An address in its canonical form, or a host name (OONI lists CNAME targets too)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return values.hostname(text)


# ---------------------------------------------------------------- reading


@dataclass(slots=True)
class _Entry:
    section: str
    index: int
    line: int
    value: Any
    key_lines: dict[str, int] = field(default_factory=dict)  # when keys sit on other lines (YAML)


def _json_lines(text: str) -> list[_Entry] | None:
    """The entries of a file in the generated layout; None for any other layout."""
    if _NOT_PLAIN.search(text) or _SURROGATE.search(text):
        return None
    places: list[tuple[str, int, int]] = []  # section, index in it, line
    objects: list[str] = []
    section = ""
    counts: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("  - {"):
            if not section:
                return None
            places.append((section, counts[section], number))
            objects.append(line[4:])
            counts[section] += 1
        elif line.startswith("#") or not line.strip():
            continue
        else:
            header = _SECTION.match(line)
            if not header or header.group(1) in counts:
                return None
            section = header.group(1)
            counts[section] = 0
    try:
        # One call for the whole file: ~10 ms, where one per line costs twice that.
        values = json.loads("[" + ",".join(objects) + "]", object_pairs_hook=_unique_pairs)
    except ValueError:
        return None
    if len(values) != len(objects):  # a line held two objects, or one spanned two lines
        return None
    return [_Entry(s, index, line, value) for (s, index, line), value in zip(places, values, strict=True)]


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")  # YAML reports it, with its line
    return out


def _yaml_entries(path: Path, problems: list[str]) -> list[_Entry]:
    r = _Reader(path)
    root = r.parse()
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        problems.extend(r.problems or [f"{path}: empty fingerprints file"])
        return []
    constructor = yaml.constructor.SafeConstructor()
    entries = []
    for section, node in r.mapping(root, "", set(_KEYS)).items():
        if isinstance(node, yaml.ScalarNode) and node.value == "":
            continue  # an empty section
        for index, item in enumerate(r.sequence(node, section)):
            if not isinstance(item, yaml.MappingNode):
                entries.append(_Entry(section, index, item.start_mark.line + 1, None))
                continue
            value: dict[str, Any] = {}
            lines: dict[str, int] = {}
            for key_node, value_node in item.value:
                key = str(key_node.value)
                if key in value:
                    r.problem(key_node, f"{section}[{index}].{key}", "duplicate key")
                    continue
                value[key] = constructor.construct_object(value_node, deep=True)
                lines[key] = key_node.start_mark.line + 1
            entries.append(_Entry(section, index, item.start_mark.line + 1, value, lines))
    problems.extend(r.problems)
    return entries


# ---------------------------------------------------------------- validating


class _Check:
    """Validates one entry; every problem becomes ``file:line: key: reason``."""

    def __init__(self, path: Path, entry: _Entry) -> None:
        self.path, self.entry = path, entry
        self.where = f"{entry.section}[{entry.index}]"
        self.found: list[tuple[int, str]] = []

    @property
    def ok(self) -> bool:
        return not self.found

    def problem(self, key: str | None, message: str) -> None:
        line = self.entry.key_lines.get(key or "", self.entry.line)
        self.found.append((line, f"{self.path}:{line}: {self.where}{'.' + key if key else ''}: {message}"))

    def report(self, problems: list[str]) -> None:
        # In line order: the keys of a block-style entry sit on lines of their own.
        problems.extend(text for _, text in sorted(self.found, key=lambda found: found[0]))

    def typed(self, key: str, kind: type, default: Any = None) -> Any:
        value = self.entry.value.get(key, default)
        if key in self.entry.value and (not isinstance(value, kind) or isinstance(value, bool)):
            self.problem(key, f"expected {_KIND_NAMES[kind]}, got {value!r}")
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


def _validate(path: Path, entry: _Entry, problems: list[str]) -> Fingerprint | InterceptionCA | None:
    check = _Check(path, entry)
    item = _validate_entry(check, entry)
    check.report(problems)
    return item


def _validate_entry(c: _Check, entry: _Entry) -> Fingerprint | InterceptionCA | None:
    if not isinstance(entry.value, dict):
        c.problem(None, "expected a mapping")
        return None
    allowed = _KEYS[entry.section]
    for key in entry.value:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            c.problem(key, "unknown key" + (f" (did you mean '{close[0]}'?)" if close else ""))
    missing = [k for k in _REQUIRED[entry.section] if k not in entry.value]
    if missing:
        c.problem(None, f"missing {', '.join(repr(k) for k in missing)}")
    name, source = c.text("name"), c.text("source")
    countries = c.countries()
    if entry.section == "interception_cas":
        issuer = c.text("issuer")
        regex = c.compiled("issuer", issuer) if issuer else None
        return InterceptionCA(name, regex, countries, source) if c.ok and regex else None
    scope, kind, pattern = c.text("scope"), c.text("type"), c.text("pattern")
    if scope and scope not in SCOPES:
        c.problem("scope", f"unknown {scope!r} (use {', '.join(sorted(SCOPES))})")
    if kind and kind not in KINDS:
        c.problem("type", f"unknown {kind!r} (use {', '.join(KINDS)})")
    confidence = c.typed("confidence", int, 0)
    if confidence < 0:
        c.problem("confidence", f"must be 0 or more, got {confidence}")
    if entry.section == "dns":
        location = "dns"
        if kind and kind != "full":
            c.problem("type", f"DNS fingerprints match whole addresses: use full, not {kind!r}")
        try:
            pattern = _dns_key(pattern) if pattern else pattern
        except ValueError:
            c.problem("pattern", f"expected an IP address or a host name (a CNAME), got {pattern!r}")
    else:
        location = c.text("location")
        if location and not _LOCATION.match(location):
            c.problem("location", f"unknown {location!r} (use body or header.<lower-case name>)")
    regex = c.compiled("pattern", pattern) if kind == "regexp" and pattern else None
    if not c.ok:
        return None
    return Fingerprint(
        name, scope, location, kind, pattern, countries, confidence, regex, pattern.encode(), source
    )


def load_fingerprints(paths: Path | Sequence[Path] | None = None) -> Fingerprints:
    """Load and validate fingerprint files as one list (the built-in file when none is given).

    Files are read in the order given and their sections joined, so an
    earlier file's fingerprint wins a tie in a tier (see
    ``probe.analysis.fingerprints``). A later file adds fingerprints and never
    replaces one: a name already used in the same section is a problem, so a
    local file cannot shadow an OONI fingerprint by accident.

    Several files rather than one file plus an "overlay" setting: the
    ``blockpages`` config key is this list (``[builtin, local.yaml]``, or one
    file that replaces the built-in one, as before), so every loader of a
    config (the daemon, ``once``, the benchmarks) passes ``config.blockpages``
    and reads the same fingerprints; a second key is one every one of them
    would have to remember. The testbed names its overlay this way
    (``probe.testbed.fingerprints``): its simulated interception root is test
    data, and test data stays out of the shipped ``blockpages.yaml``.
    """
    if isinstance(paths, Path):
        paths = (paths,)
    files = tuple(paths or ()) or (builtin_path("blockpages.yaml"),)
    problems: list[str] = []
    http: list[Fingerprint] = []
    dns: list[Fingerprint] = []
    cas: list[InterceptionCA] = []
    first: dict[tuple[str, str], tuple[Path, int]] = {}
    for path in files:
        for entry in _entries(path, problems):
            item = _validate(path, entry, problems)
            if item is None:
                continue
            seen = first.setdefault((entry.section, item.name), (path, entry.line))
            if seen != (path, entry.line):
                where = f"line {seen[1]}" if seen[0] == path else f"{seen[0]}:{seen[1]}"
                problems.append(
                    f"{path}:{entry.line}: {entry.section}[{entry.index}].name: "
                    f"duplicate name {item.name!r} (first at {where})"
                )
            elif isinstance(item, InterceptionCA):
                cas.append(item)
            else:
                (dns if entry.section == "dns" else http).append(item)
    if problems:
        raise ConfigError(problems)
    return Fingerprints(tuple(http), tuple(dns), tuple(cas))


def _entries(path: Path, problems: list[str]) -> list[_Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return []
    entries = _json_lines(text)
    return _yaml_entries(path, problems) if entries is None else entries
