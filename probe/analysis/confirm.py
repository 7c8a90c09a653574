"""Confirmation: a status change stands only after ``confirm`` consecutive
cycles agree, so one flaky cycle never raises (or lifts) a block alert.

Pure: the caller passes the time. Starting up, an ``ok`` first result is
taken at once (claiming reachability cannot raise an alert); anything else
waits for confirmation like any change would.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.model import Verdict
from probe.vocab import Method, Status

Key = tuple[Status, Method | None]


@dataclass(frozen=True, slots=True)
class Track:
    status: Status = Status.UNKNOWN
    method: Method | None = None
    since: float | None = None
    candidate: Key | None = None
    streak: int = 0
    started: bool = False


def advance(track: Track, raw: Verdict, now: float, confirm: int) -> Track:
    key: Key = (raw.status, raw.method if raw.status is Status.BLOCKED else None)
    if not track.started and key[0] is Status.OK:
        return Track(key[0], key[1], now, None, 0, True)
    if key == (track.status, track.method) and track.started:
        return Track(track.status, track.method, track.since, None, 0, True)
    streak = track.streak + 1 if key == track.candidate else 1
    if streak >= confirm:
        return Track(key[0], key[1], now, None, 0, True)
    return Track(track.status, track.method, track.since, key, streak, track.started)


def agree(verdicts: list[Verdict]) -> Verdict:
    """The verdict of immediate retries (``msgprobe once``): all must agree.

    A block seen once and not again is reported as inconclusive, never as a block.
    """
    first = verdicts[0]
    if all((v.status, v.method) == (first.status, first.method) for v in verdicts):
        return first
    seen = ", ".join(f"{v.status}" + (f" ({v.method})" if v.method else "") for v in verdicts)
    return Verdict(Status.UNKNOWN, None, first.failure, f"inconclusive over {len(verdicts)} attempts: {seen}")
