"""One endpoint on the status page: its status (and a change being
confirmed), a history bar of the last cycles, and its evidence with
repeats collapsed.

A censor keeps a block up for days, so the same evidence line comes back
every cycle; listing each one buries the one line that changed. The
runner's history cells count how many cycles in a row gave the same line
(``HistoryCell.repeats``), so a run reads "same for 12 cycles since 14:02"
even after its start has left the ring; older runs sit in a ``<details>``
(no JavaScript).

Packet witnesses get one line of their own ("reset forged · censor at hop
3, after router 10.79.2.2"), only when there is something to say: an
injection in the latest result, or a censor traceroute, which runs once a
day and so carries its own time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from probe.export.page_format import ago, badge, cycles, evidence_href, what, when
from probe.export.records import iso_time
from probe.state import CensorTrace, FailureRecord, HistoryCell, TrackedEndpoint
from probe.vocab import EndpointState, Method, Status

BAR_CELLS = 30  # the runner keeps as many (probe.runner.tracker.HISTORY)
SHOWN_RUNS = 10  # older runs in the <details>; /status and /evidence have the rest
INJECTED = {"dns": "DNS answer forged", "reset": "reset forged"}


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive results with the same line."""

    status: Status
    method: Method | None
    failure: str | None
    evidence: str
    count: int
    first: float
    last: float
    current: bool  # it includes the latest cycle
    per_cycle: bool = True  # counted in cycles (history); False: in failure records (older snapshots)


def runs_from_history(history: Sequence[HistoryCell]) -> list[Run]:
    """The non-ok runs, newest first. A run's newest cell knows its full length and start."""
    out = []
    i = len(history) - 1
    while i >= 0:
        cell = history[i]
        if cell.status is not Status.OK:
            out.append(
                Run(
                    cell.status,
                    cell.method,
                    cell.failure,
                    cell.evidence,
                    cell.repeats,
                    cell.since,
                    cell.time,
                    i == len(history) - 1,
                )
            )
        i -= max(1, cell.repeats)
    return out


def runs_from_failures(records: Sequence[FailureRecord]) -> list[Run]:
    """Without history, the ring of recent failures, equal neighbours merged; newest first."""
    out: list[Run] = []
    for f in reversed(records):
        line = (f.status, f.method, f.failure, f.evidence)
        if out and (out[-1].status, out[-1].method, out[-1].failure, out[-1].evidence) == line:
            prev = out[-1]
            out[-1] = Run(*line, prev.count + 1, f.time, prev.last, False, per_cycle=False)
        else:
            out.append(Run(*line, 1, f.time, f.time, False, per_cycle=False))
    return out


def _run_when(run: Run, now: float) -> str:
    if run.current and run.count > 1:
        return f"same for {cycles(run.count)} since {when(run.first, now)}"
    if run.current:
        return f"latest cycle, {when(run.last, now)}"
    if run.count == 1:
        return f"once, {when(run.last, now)} ({escape(ago(now - run.last))})"
    counted = cycles(run.count) if run.per_cycle else f"{run.count} times"
    return f"{counted}, {when(run.first, now)}–{when(run.last, now)} ({escape(ago(now - run.last))})"


def _run(run: Run, service: str, now: float, *, links: bool) -> str:
    failure = f" <code>{escape(run.failure)}</code>" if run.failure else ""
    link = f' · <a href="{evidence_href(service, run.first)}">JSON</a>' if links else ""
    return (
        f'<p class="run"><b>{escape(what(run.status, run.method))}</b>{failure} '
        f'<span class="evtext">{escape(run.evidence)}</span> '
        f'<span class="muted">{_run_when(run, now)}{link}</span></p>'
    )


def evidence(e: TrackedEndpoint, now: float, *, links: bool) -> str:
    runs = runs_from_history(e.history) if e.history else runs_from_failures(e.recent_failures)
    if not runs:
        return ""
    head = _run(runs[0], e.service, now, links=links)
    rest = runs[1 : 1 + SHOWN_RUNS]
    if not rest:
        return f'<div class="ev">{head}</div>'
    more = len(runs) - 1 - len(rest)
    tail = f'<p class="muted">{more} more in /status</p>' if more > 0 else ""
    older = "".join(_run(r, e.service, now, links=links) for r in rest)
    label = "1 earlier result" if len(rest) == 1 else f"{len(rest)} earlier results"
    return f'<div class="ev">{head}<details><summary>{label}</summary>{older}{tail}</details></div>'


def _censor_text(censor: CensorTrace) -> str:
    hop = censor.hop
    if hop is None:
        return "censor traceroute: no interfering hop"
    after = f", after router {hop.last_router}" if hop.last_router else ""
    return f"censor at hop {hop.hop}{after} ({hop.interference})"


def packets(e: TrackedEndpoint, now: float) -> str:
    """The packet witnesses' line, or nothing when they have shown nothing."""
    parts = [INJECTED.get(kind, f"{kind} injected") for kind in e.packets_injected]
    if e.censor is not None:
        parts.append(_censor_text(e.censor))
    if not parts:
        return ""
    traced = f' <span class="muted">traced {when(e.censor.at, now)}</span>' if e.censor is not None else ""
    return (
        f'<div class="ev"><p class="packets"><b>packets</b> '
        f'<span class="evtext">{escape(" · ".join(parts))}</span>{traced}</p></div>'
    )


def _cell_title(cell: HistoryCell) -> str:
    return " · ".join(
        x for x in (iso_time(cell.time), cell.status.value, cell.method.value if cell.method else "") if x
    )


def history_bar(history: Sequence[HistoryCell]) -> str:
    """The last ``BAR_CELLS`` cycles, oldest left, newest right; padded on the left
    so a new endpoint's few cells line up with the others' newest."""
    cells = list(history)[-BAR_CELLS:]
    pad = '<span class="h h-none" title="no result"></span>' * (BAR_CELLS - len(cells))
    shown = "".join(
        f'<span class="h s-{escape(c.status.value)}" title="{escape(_cell_title(c), quote=True)}"></span>'
        for c in cells
    )
    label = f"results of the last {cycles(len(cells))}, oldest first" if cells else "no result yet"
    return f'<div class="bar" role="img" aria-label="{label}">{pad}{shown}</div>'


def confirming(e: TrackedEndpoint, confirm: int) -> str:
    """``blocked — confirming, 1 of 2 cycles``: a change seen but not confirmed yet."""
    if e.pending is None:
        return ""
    method = f" <code>{escape(e.pending_method.value)}</code>" if e.pending_method else ""
    return (
        f'<p class="confirming">{badge(e.pending, pending=True)} — confirming, '
        f"{e.pending_cycles} of {confirm} cycles{method}</p>"
    )


def status_cell(e: TrackedEndpoint, now: float) -> str:
    if e.since is None and e.pending is not None:
        return '<span class="muted">nothing confirmed yet</span>'
    method = (
        f" <code>{escape(e.method.value)}</code>"
        if e.method is not None and e.status is Status.BLOCKED
        else ""
    )
    since = f' <span class="muted">since {when(e.since, now)}</span>' if e.since is not None else ""
    return f"{badge(e.status)}{method}{since}"


def endpoint_row(e: TrackedEndpoint, now: float, *, confirm: int, links: bool) -> str:
    tag = f' <span class="tag">{escape(e.state.value)}</span>' if e.state is not EndpointState.ACTIVE else ""
    shown = e.pending if e.pending is not None and e.since is None else e.status
    return (
        f'<div class="ep r-{escape(shown.value)}">'
        f'<div class="ep-name"><code>{escape(e.endpoint)}</code>{tag}</div>'
        f'<div class="ep-status">{status_cell(e, now)}{confirming(e, confirm)}</div>'
        f"{history_bar(e.history)}{packets(e, now)}{evidence(e, now, links=links)}</div>"
    )
