"""Reading one fingerprint file into entries for the validator: a fast path and YAML.

A fingerprint file is YAML: ``http:``, ``dns:`` and ``interception_cas:``,
each a list of mappings. Parsing the built-in file's ~2,000 entries with a
YAML parser takes ~150 ms with libyaml's C loader and over a second with the
pure-Python one, at every start and every reload, for data that never needs
YAML: the generator
(scripts/convert_fingerprints.py) writes each entry on a line of its own as
a JSON object, which is also a YAML flow mapping. So:

* :func:`_json_lines` recognises that layout and parses every entry with one
  ``json.loads`` (~10 ms). It is a recogniser, not a second parser: it only
  answers for files where JSON and YAML are known to read the same values,
  and says None for anything else, down to one odd line;
* :func:`_yaml_entries` reads every other file (a hand-written overlay, block
  style, comments inside a mapping) through the YAML node tree of
  :class:`~probe.config.nodes.NodeReader`, which knows each key's line.

Both give the same entries for the same data (a test holds them to it), and
the validator (``probe.config.fingerprint_schema``) sees no difference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from probe.config.fingerprint_schema import SECTIONS, Entry
from probe.config.nodes import CONSTRUCT_ERRORS, NodeReader

_SECTION = re.compile(rf"^({'|'.join(SECTIONS)}):[ \t]*$")
_ENTRY = "  - {"  # how the generator starts an entry's line
# Where JSON and YAML part ways, the text goes to YAML: characters YAML reads
# differently from JSON (raw line breaks other than LF, non-printables) and
# escaped surrogate halves (JSON pairs them, YAML does not). The generator
# escapes all of these, so the built-in file never has them.
_NOT_PLAIN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def read_entries(path: Path, problems: list[str]) -> list[Entry]:
    """The entries of one file, in order; a file that cannot be read or parsed adds its problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return []
    entries = _json_lines(text)
    return _yaml_entries(path, problems) if entries is None else entries


def _json_lines(text: str) -> list[Entry] | None:
    """The entries of a file in the generated layout; None for any other layout."""
    if _NOT_PLAIN.search(text) or _SURROGATE.search(text):
        return None
    places: list[tuple[str, int, int]] = []  # section, index in it, line
    objects: list[str] = []
    section = ""
    counts: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith(_ENTRY):
            if not section:
                return None
            places.append((section, counts[section], number))
            objects.append(line[len(_ENTRY) - 1 :])
            counts[section] += 1
        elif line.startswith("#") or not line.strip():
            continue
        else:
            header = _SECTION.match(line)
            if not header or header.group(1) in counts:
                return None  # anything else, or a section twice (YAML reports the duplicate key)
            section = header.group(1)
            counts[section] = 0
    try:
        # One call for the whole file: ~10 ms, where one per line costs twice that.
        found = json.loads("[" + ",".join(objects) + "]", object_pairs_hook=_unique_pairs)
    except ValueError:
        return None  # not JSON (a YAML flow mapping with bare words, say): YAML reads it
    if len(found) != len(objects):  # a line held two objects, or one spanned two lines
        return None
    return [Entry(s, index, line, value) for (s, index, line), value in zip(places, found, strict=True)]


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")  # YAML reports it, with its line
    return out


def _yaml_entries(path: Path, problems: list[str]) -> list[Entry]:
    r = NodeReader(path)
    root = r.parse()
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        problems.extend(r.problems or [f"{path}: empty fingerprints file"])
        return []
    constructor = yaml.constructor.SafeConstructor()
    entries = []
    for section, node in r.mapping(root, "", SECTIONS).items():
        if isinstance(node, yaml.ScalarNode) and node.value == "":
            continue  # an empty section
        for index, item in enumerate(r.sequence(node, section)):
            if not isinstance(item, yaml.MappingNode):
                entries.append(Entry(section, index, item.start_mark.line + 1, None))
                continue
            # Every key is kept, known or not, with its line: the validator
            # judges them, so that an entry's problems come out in line order.
            value: dict[str, Any] = {}
            lines: dict[str, int] = {}
            for key_node, value_node in item.value:
                key = str(key_node.value)
                if key in value:
                    r.problem(key_node, f"{section}[{index}].{key}", "duplicate key")
                    continue
                try:
                    value[key] = constructor.construct_object(value_node, deep=True)
                except CONSTRUCT_ERRORS as exc:
                    problem = getattr(exc, "problem", None) or str(exc)
                    r.problem(value_node, f"{section}[{index}].{key}", f"not a valid value ({problem})"[:200])
                    continue
                lines[key] = key_node.start_mark.line + 1
            entries.append(Entry(section, index, item.start_mark.line + 1, value, lines))
    problems.extend(r.problems)
    return entries
