"""When each endpoint's censor traceroute last ran: the once-a-day promise.

Tracing sends the blocked name again at every TTL, which a censor may
notice, so the limit must hold across restarts too (a crash loop must not
become a traceroute loop): with a state directory the log is a small JSON
file, written whole to a temporary file and renamed, so a kill mid-write
leaves the old one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from probe.analysis.censor_hop import CensorHop

log = logging.getLogger("msgprobe")
MAX_ENTRIES = 4096  # endpoints remembered; the oldest go first


class TraceLog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._last: dict[str, float] = {}
        # What each walk found (None: no interfering hop), so that /metrics and /status
        # still show it after a restart, while the limit keeps the walk from running again.
        self._found: dict[str, CensorHop | None] = {}
        if path is not None:
            self._last, self._found = _read(path)

    @staticmethod
    def key(service: str, endpoint: str, port: int) -> str:
        return f"{service}/{endpoint}:{port}"

    def due(self, key: str, now: float, every: float) -> bool:
        last = self._last.get(key)
        return last is None or now - last >= every or last > now  # a clock set back never blocks for ever

    def last(self, key: str) -> float | None:
        return self._last.get(key)

    def record(self, key: str, now: float, found: CensorHop | None = None) -> None:
        self._last[key] = now
        self._found[key] = found
        if len(self._last) > MAX_ENTRIES:
            for old in sorted(self._last, key=self._last.__getitem__)[: len(self._last) - MAX_ENTRIES]:
                del self._last[old]
                self._found.pop(old, None)
        if self.path is not None:
            _write(self.path, self._last, self._found)

    def results(self) -> Iterator[tuple[str, str, float, CensorHop | None]]:
        """(service, endpoint, when, what it found) of each walk whose result is known,
        oldest first: a later port's walk of the same endpoint comes after."""
        for key in sorted(self._found, key=self._last.__getitem__):
            service, _, rest = key.partition("/")
            endpoint = rest.rpartition(":")[0]
            yield service, endpoint, self._last[key], self._found[key]


_HOP_FIELDS = ("hop", "interference", "last_router", "router")


def _hop(value: Any) -> CensorHop | None:
    if not isinstance(value, dict) or not isinstance(value.get("hop"), int):
        return None
    text = {f: value.get(f) if isinstance(value.get(f), str) else None for f in _HOP_FIELDS[1:]}
    return CensorHop(value["hop"], text["interference"] or "", text["last_router"], text["router"])


def _read(path: Path) -> tuple[dict[str, float], dict[str, CensorHop | None]]:
    """Entries are ``{"at": t, "found": {...} | null}``; a bare number (the first
    format) is a time whose result was not kept."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError) as exc:
        log.warning(
            "traceroute log unreadable, starting afresh",
            extra={"fields": {"path": str(path), "error": str(exc)}},
        )
        return {}, {}
    if not isinstance(data, dict):
        return {}, {}
    last: dict[str, float] = {}
    found: dict[str, CensorHop | None] = {}
    for k, v in data.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            last[str(k)] = float(v)
        elif isinstance(v, dict) and isinstance(v.get("at"), int | float) and "found" in v:
            last[str(k)] = float(v["at"])
            found[str(k)] = _hop(v["found"])
    return last, found


def _write(path: Path, last: dict[str, float], found: dict[str, CensorHop | None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    doc = {
        k: {
            "at": t,
            "found": None
            if (h := found.get(k)) is None
            else dict(zip(_HOP_FIELDS, (h.hop, h.interference, h.last_router, h.router), strict=True)),
        }
        if k in found
        else t
        for k, t in last.items()
    }
    try:
        tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: the limit then holds for this process's lifetime only
        log.warning("traceroute log not written", extra={"fields": {"path": str(path), "error": str(exc)}})
        with contextlib.suppress(OSError):
            tmp.unlink()


def beside(evidence_path: Path | None) -> TraceLog:
    """The log next to the evidence log (the probe's one state directory), else in memory."""
    return TraceLog(evidence_path.with_name("traceroutes.json") if evidence_path is not None else None)
