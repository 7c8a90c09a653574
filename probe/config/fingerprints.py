"""Blocking fingerprints (``config/blockpages.yaml``, generated from OONI's
lists by scripts/convert_fingerprints.py): blockpages, DNS block addresses
and interception CAs, loaded once at start and validated strictly.

Every problem is reported at once as ``file:line: key: reason``, like the
config loader. Loading is a pipeline of small modules, and this one is the
public entry (the names the rest of the probe imports are re-exported here):

* ``fingerprint_files``: one file's entries, read with ``json`` in the
  generated layout and through the YAML node tree otherwise;
* ``fingerprint_schema``: the one validator of an entry;
* ``fingerprint_model``: what comes out, frozen, with scopes and kinds as
  ``StrEnum`` vocabularies;
* ``fingerprint_index``: :class:`Fingerprints`, the lists indexed the way
  the matcher (``probe.analysis.fingerprints``) walks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from probe.config.fingerprint_files import read_entries
from probe.config.fingerprint_index import Fingerprints, Tier
from probe.config.fingerprint_model import (
    BLOCK_SCOPES,
    KINDS,
    SCOPES,
    Fingerprint,
    InterceptionCA,
    Kind,
    Scope,
)
from probe.config.fingerprint_schema import validate
from probe.config.nodes import ConfigError, builtin_path

__all__ = [
    "BLOCK_SCOPES",
    "KINDS",
    "SCOPES",
    "Fingerprint",
    "Fingerprints",
    "InterceptionCA",
    "Kind",
    "Scope",
    "Tier",
    "load_fingerprints",
]


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
    first: dict[tuple[str, str], tuple[Path, int]] = {}  # (section, name) -> where it is first
    for path in files:
        for entry in read_entries(path, problems):
            item = validate(path, entry, problems)
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
