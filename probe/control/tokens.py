"""Bearer tokens of the probes a control answers, hashed at rest.

The file (``--tokens.file``) holds one probe per line, ``NAME sha256:HEX``,
where HEX is the SHA-256 of the token; ``#`` starts a comment. A stolen
file therefore grants nothing: the tokens themselves exist only on the
probes. ``add`` is how a watchdog issues one: it prints the token once and
appends its hash.

Looking a token up hashes what the request presented and compares it with
every digest by ``hmac.compare_digest``, so neither the comparison nor the
scan stops early on a partial match.

The file is read again when it changes (size or mtime), so issuing or
revoking a token takes effect on the next request without a restart; a file
that no longer parses keeps the tokens last loaded, with a logged error.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from probe.config.nodes import ConfigError

log = logging.getLogger("msgprobe")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
TOKEN_BYTES = 32  # 256 bits of randomness, URL-safe base64: 43 characters


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    digest: bytes


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def line_for(name: str, token: str) -> str:
    return f"{name} sha256:{digest(token).hex()}"


def parse(text: str, source: str) -> tuple[Entry, ...]:
    """Every entry of a token file; ``ConfigError`` lists every bad line at once."""
    entries: list[Entry] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = f"{source}:{number}"
        if len(fields) != 2:
            problems.append(f"{where}: expected 'NAME sha256:HEX'")
            continue
        name, hashed = fields
        match = DIGEST.fullmatch(hashed)
        if not NAME.fullmatch(name):
            problems.append(f"{where}: name {name!r}: letters, digits, '.', '_', '-' (at most 64)")
        elif match is None:
            problems.append(f"{where}: {name}: expected sha256: and 64 lower-case hex digits")
        elif name in seen:
            problems.append(f"{where}: {name}: duplicate name")
        else:
            seen.add(name)
            entries.append(Entry(name, bytes.fromhex(match.group(1))))
    if problems:
        raise ConfigError(problems)
    return tuple(entries)


def lookup(entries: tuple[Entry, ...], token: str) -> str | None:
    """The name of the probe ``token`` belongs to, or None."""
    presented = digest(token)
    found = None
    for entry in entries:
        if hmac.compare_digest(presented, entry.digest):
            found = entry.name
    return found


def read(path: Path) -> tuple[Entry, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the token file: {exc}"]) from None
    return parse(text, str(path))


def add(path: Path, name: str) -> str:
    """Issue a token for ``name``: append its hash to ``path`` (created 0600) and return it."""
    if not NAME.fullmatch(name):
        raise ConfigError([f"--tokens.add {name!r}: letters, digits, '.', '_', '-' (at most 64)"])
    try:
        before = path.read_bytes() if path.exists() else b""
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the token file: {exc}"]) from None
    existing = parse(before.decode("utf-8", "replace"), str(path)) if before else ()
    if any(e.name == name for e in existing):
        raise ConfigError([f"{path}: {name}: a token with this name exists; remove its line first"])
    token = secrets.token_urlsafe(TOKEN_BYTES)
    separator = "\n" if before and not before.endswith(b"\n") else ""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"{separator}{line_for(name, token)}\n")
    return token


class TokenFile:
    """The tokens of ``path``, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self.entries = read(path)  # ConfigError at start: nothing serves

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def refresh(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self.entries = read(self.path)
        except ConfigError as exc:
            log.error(
                "token file refused; keeping the tokens loaded before",
                extra={"fields": {"error": exc.problems[0]}},
            )
            return
        log.info("token file reloaded", extra={"fields": {"tokens": len(self.entries)}})

    def lookup(self, token: str) -> str | None:
        self.refresh()
        return lookup(self.entries, token)
