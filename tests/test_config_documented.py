"""``config/probe.yaml`` documents every key the loader accepts, and no key it refuses.

The file is the reference an operator reads (README points at it), so a key
added to ``probe.config.load.FIELDS`` without a line here, or a removed key
still shown here, fails this test rather than an operator's start-up.
"""

from __future__ import annotations

import re
from pathlib import Path

from probe.config.load import KEYS
from probe.config.nodes import builtin_path

PROBE_YAML = Path(__file__).resolve().parents[1] / "config" / "probe.yaml"
# `key:` at the start of a line, after its indentation and any list dash.
_KEY = re.compile(r"^(?P<indent>[ -]*)(?P<key>[a-z_]+):(\s|$)")
# A commented-out line keeps its indentation after "# " (`#   ca_bundle: …`).
_COMMENTED = re.compile(r"^(?P<before> *)# ?(?P<text>.*)$")


# Keys whose items have a schema of their own (checked where they are parsed).
_LISTS = ("services", "control_peers")


def documented_keys(text: str) -> set[str]:
    """Dotted keys the file shows, set or commented out; nothing below ``services``
    (the catalog's schema, documented in ``config/targets.yaml``) or below
    ``control_peers`` (its items' keys are checked by their own fixtures)."""
    keys: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in text.splitlines():
        commented = _COMMENTED.match(line)
        if commented:
            line = commented["before"] + commented["text"]
        match = _KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = [key for _, key in parents] + [match["key"]]
        parents.append((indent, match["key"]))
        keys.add(path[0] if path[0] in _LISTS else ".".join(path))
    return keys


def test_probe_yaml_documents_every_key_and_only_those() -> None:
    documented = documented_keys(PROBE_YAML.read_text(encoding="utf-8"))
    sections = {key.rpartition(".")[0] for key in KEYS} - {""}
    assert sorted(set(KEYS) - documented) == [], "accepted but not documented in config/probe.yaml"
    assert sorted(documented - set(KEYS) - sections) == [], "documented in config/probe.yaml but refused"


def test_the_embedded_default_is_this_file() -> None:
    # probe/data links to config/; a copy in its place would drift from what is documented.
    assert builtin_path("probe.yaml").read_text(encoding="utf-8") == PROBE_YAML.read_text(encoding="utf-8")


def test_the_scan_sees_commented_and_nested_keys() -> None:
    text = "a: 1\n# b:\n#   c: 2  # why\nd:\n  e: 3\n# Prose: not a key.\n# services:\n#   - name: x\n"
    assert documented_keys(text) == {"a", "b", "b.c", "d", "d.e", "services"}
