"""The evidence log: one JSON line per non-ok result, and per confirmed change.

Lines are whole or absent, so a reader never trusts a torn record:

- a write that fails half-way (full disk) is cut back to the previous end
  of file at once;
- a write the process did not survive (SIGKILL, power loss) leaves a last
  line without its newline: it is cut off when the log is opened again, and
  a reader skips it too (``read_records``).

The log rotates once the file passes ``max_bytes`` and keeps ``keep`` old
generations (``evidence.jsonl.1`` newest … ``.N``), dropping generations
older than ``max_age``: at most ``(keep + 1) × max_bytes`` bytes on disk,
sized for a Raspberry Pi's SD card by default. A full disk degrades the
probe to metrics only (``msgprobe_evidence_write_errors_total`` counts it)
and every later write tries again, so it recovers by itself.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from probe.state import EvidenceHealth

log = logging.getLogger("msgprobe.evidence")


class EvidenceLog:
    def __init__(
        self,
        path: Path,
        max_bytes: int,
        *,
        keep: int = 4,
        max_age: float = 30 * 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.max_age = max_age
        self._clock = clock
        self.health = EvidenceHealth()
        self._repair()
        self.health.bytes = self._disk_bytes()

    @property
    def dropped(self) -> int:
        return self.health.dropped

    def generations(self) -> list[Path]:
        """Existing files, oldest first, the live one last."""
        old = [self.path.with_name(f"{self.path.name}.{n}") for n in range(self.keep, 0, -1)]
        return [p for p in [*old, self.path] if p.exists()]

    def _repair(self) -> None:
        """Cut a torn last line (no newline: the writer died mid-record) off the live file."""
        try:
            with open(self.path, "rb+") as f:
                size = f.seek(0, os.SEEK_END)
                if size == 0:
                    return
                f.seek(size - 1)
                if f.read(1) == b"\n":
                    return
                # Walk back to the last newline in bounded steps (a torn line is one record).
                end, step = size, 65536
                while end > 0:
                    start = max(0, end - step)
                    f.seek(start)
                    chunk = f.read(end - start)
                    at = chunk.rfind(b"\n")
                    if at >= 0:
                        f.truncate(start + at + 1)
                        break
                    end = start
                else:
                    f.truncate(0)
            log.warning("evidence: dropped a torn last record", extra={"fields": {"path": str(self.path)}})
        except FileNotFoundError:
            return
        except OSError as exc:
            self._failed(exc, 0)

    def _disk_bytes(self) -> int:
        total = 0
        for p in self.generations():
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        return total

    def _rotate(self) -> None:
        if not self.path.exists() or self.path.stat().st_size <= self.max_bytes:
            return
        names = [self.path, *(self.path.with_name(f"{self.path.name}.{n}") for n in range(1, self.keep + 1))]
        if self.keep == 0:
            self.path.unlink()
            return
        with contextlib.suppress(FileNotFoundError):
            names[-1].unlink()
        for newer, older in zip(reversed(names[:-1]), reversed(names[1:]), strict=True):
            if newer.exists():
                os.replace(newer, older)

    def _expire(self) -> None:
        now = self._clock()
        for p in self.generations()[:-1] if self.path.exists() else self.generations():
            with contextlib.suppress(FileNotFoundError):
                if now - p.stat().st_mtime > self.max_age:
                    p.unlink()

    def write(self, records: list[dict[str, Any]]) -> int:
        """Append records; returns how many landed (the rest are counted as dropped)."""
        if not records:
            return 0
        written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._rotate()
            self._expire()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                for record in records:
                    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                    end = os.lseek(fd, 0, os.SEEK_END)
                    try:
                        if os.write(fd, line) != len(line):
                            raise OSError(errno.ENOSPC, "short write")
                    except OSError:
                        os.ftruncate(fd, end)
                        raise
                    written += 1
            finally:
                os.close(fd)
            self.health.last_error = None
        except OSError as exc:
            self._failed(exc, len(records) - written)
        self.health.records += written
        self.health.bytes = self._disk_bytes()
        return written

    def _failed(self, exc: OSError, lost: int) -> None:
        self.health.write_errors += 1
        self.health.dropped += lost
        self.health.last_error = exc.strerror or type(exc).__name__
        log.warning("evidence not written", extra={"fields": {"path": str(self.path), "error": str(exc)}})


@dataclass(frozen=True, slots=True)
class Read:
    records: list[dict[str, Any]]
    skipped: int  # lines that were torn or not a record: never trusted


def read_records(log_: EvidenceLog | Path, *, service: str | None = None, since: float | None = None) -> Read:
    """Every whole record of every generation, oldest first, filtered."""
    files = log_.generations() if isinstance(log_, EvidenceLog) else _generations_of(log_)
    out: list[dict[str, Any]] = []
    skipped = 0
    for p in files:
        for record in _lines(p):
            if record is None:
                skipped += 1
            elif _wanted(record, service, since):
                out.append(record)
    return Read(out, skipped)


def _generations_of(path: Path) -> list[Path]:
    numbered = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.name.rsplit(".", 1)[-1].isdigit()),
        key=lambda p: -int(p.name.rsplit(".", 1)[-1]),
    )
    return [*numbered, *([path] if path.exists() else [])]


def _lines(path: Path) -> Iterator[dict[str, Any] | None]:
    try:
        data = path.read_bytes()
    except OSError:
        return
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        yield None  # a torn tail (no newline): the writer died mid-record
        lines.pop()
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            yield None
            continue
        yield record if isinstance(record, dict) else None


def _wanted(record: dict[str, Any], service: str | None, since: float | None) -> bool:
    if service is not None and record.get("service") != service:
        return False
    if since is not None:
        return _stamp(record.get("time")) >= since
    return True


def _stamp(value: object) -> float:
    """A record's time: unix seconds, or ISO 8601 as older records wrote it; 0 if neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0
