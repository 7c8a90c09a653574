"""The evidence log: one JSON line per non-ok result, and per confirmed change.

Lines are whole or absent: a write that fails half-way (full disk) is cut
back to the previous end of file, so a reader never meets a torn record.
The file rotates once it passes ``max_bytes`` (one old generation kept).
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("msgprobe.evidence")


class EvidenceLog:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0

    def write(self, records: list[dict[str, Any]]) -> int:
        """Append records; returns how many landed (the rest are counted in ``dropped``)."""
        if not records:
            return 0
        written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
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
        except OSError as exc:
            self.dropped += len(records) - written
            log.warning("evidence not written", extra={"fields": {"path": str(self.path), "error": str(exc)}})
        return written
