"""``GET /``: the volunteer's page. One self-contained HTML document.

Read at a glance, top to bottom (what volunteers like in Uptime Kuma and
Gatus): a summary line, the vantage and control peers in the header, one
coloured tile per service, then per endpoint its status, a history bar of
the last cycles and its evidence with repeats collapsed
(``probe.export.page_endpoint``). A change the runner has seen but not yet
confirmed shows as "confirming", so a newcomer sees the first cycle's
findings at once instead of a page of ``unknown``.

No JavaScript and no external assets (nothing to fetch, nothing to build,
nothing that phones home from the volunteer's browser); the browser
refreshes it every 30 seconds. Every value from the config or from an
observation passes through ``html.escape``: a blockpage title is text an
adversary chose. Evidence text was scrubbed of the volunteer's address
when it was measured (``probe.privacy``); the page shows nothing else of
an observation.
"""

from __future__ import annotations

import time
from html import escape

from probe.export.page_css import CSS
from probe.export.page_endpoint import endpoint_row
from probe.export.page_format import ago, badge, evidence_href, when
from probe.state import ServiceView, Snapshot, TrackedEndpoint
from probe.vocab import Regime, Status

LEGEND: tuple[tuple[Status, str], ...] = (
    (Status.OK, "every active check succeeded"),
    (Status.BLOCKED, "interference is proven; the method says how"),
    (Status.UNREACHABLE, "fails from here while the vantage is online; cannot tell a block from an outage"),
    (Status.DOWN, "the service itself fails: the controls fail the same way"),
    (Status.UNKNOWN, "inconclusive, not measured yet, or the vantage is offline"),
    (Status.ERROR, "the probe could not run the check (configuration or capability)"),
)
# Which pending change a service tile names when its endpoints disagree: the most alarming.
_SEVERITY = (Status.BLOCKED, Status.UNREACHABLE, Status.DOWN, Status.ERROR, Status.UNKNOWN, Status.OK)


def _vantage(s: Snapshot) -> tuple[str, str]:
    """(badge, plain word) of the vantage's regime."""
    if s.regime is not None:
        return badge(s.regime.value), s.regime.value
    if s.vantage_online is None:
        return '<span class="muted">not known yet</span>', "not known yet"
    word = "online" if s.vantage_online else "offline"
    return badge(word), word


def _summary(s: Snapshot, now: float) -> str:
    """``3 of 21 services blocked · vantage online · controls 1/1 up · last cycle 14:02, next ~14:07``."""
    if not s.ready:
        return f'<p class="summary">{len(s.services)} services · no measurement cycle has finished yet</p>'
    blocked = sum(1 for v in s.services if v.blocked)
    parts = [f"{blocked} of {len(s.services)} services blocked"]
    confirming = {e.service for e in s.endpoints if e.pending is not None}
    if confirming:
        parts.append(f"{len(confirming)} confirming a change")
    parts.append(f"vantage {escape(_vantage(s)[1])}")
    if s.controls:
        up = sum(1 for ok, _ in s.controls.values() if ok)
        parts.append(f"controls {up}/{len(s.controls)} up")
    if s.last_cycle_end is not None:
        last = f"last cycle {when(s.last_cycle_end, now)} UTC"
        if s.next_cycle is not None:
            last += f", next ~{when(s.next_cycle, now)}"
        parts.append(last)
    return f'<p class="summary">{" · ".join(parts)}</p>'


def _controls(s: Snapshot) -> list[tuple[str, str]]:
    if not s.controls:
        return [("controls", '<span class="muted">none asked yet</span>')]
    items = []
    for peer, (up, error) in sorted(s.controls.items()):
        state = (
            badge("ok") + " answering" if up else badge("unknown") + f" unreachable: {escape(error or '?')}"
        )
        items.append((f"control {escape(peer)}", state))
    return items


def _header(s: Snapshot, now: float) -> str:
    if s.last_cycle_end is None:
        last = '<span class="muted">none yet</span>'
    else:
        duration = f" (took {s.last_cycle_duration:.1f} s)" if s.last_cycle_duration is not None else ""
        last = f"{escape(ago(now - s.last_cycle_end))}{escape(duration)}"
    items = [
        ("vantage", _vantage(s)[0]),
        *_controls(s),
        ("probe", escape(s.probe_id or "(no id)")),
        ("version", escape(s.version)),
        ("last cycle", last),
        ("cycles", str(s.cycles)),
    ]
    if s.country or s.asn:
        items.append(("network", escape(" ".join(x for x in (s.country, s.asn) if x))))
    if s.canaries:
        answering = [escape(name) for name, ok in sorted(s.canaries.items()) if ok]
        failing = [escape(name) for name, ok in sorted(s.canaries.items()) if not ok]
        words = [f"{', '.join(answering)} answering"] if answering else []
        words += [f"{', '.join(failing)} failing"] if failing else []
        items.append(("canaries", "; ".join(words)))
    if s.raw_enabled:
        raw = (
            "ready"
            if s.raw_problem is None
            else f"{badge('error')} {escape(s.raw_problem)}: the other checks run"
        )
        items.append(("packet checks", raw))
    if not s.reload_ok:
        items.append(("config", badge("error") + " last reload failed; the previous config runs"))
    if s.evidence is not None:
        health = s.evidence
        link = f'<a href="evidence">{health.records} records</a>, {health.bytes / 1e6:.1f} MB'
        if health.last_error is not None:
            link = (
                badge("error")
                + f" not written: {escape(health.last_error)} ({health.dropped} records dropped); "
                + "measuring goes on, metrics only"
                + f"; {link}"
            )
        items.append(("evidence", link))
    cells = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    return f"<header><h1>msgprobe status</h1>{_summary(s, now)}<dl>{cells}</dl></header>"


def _by_service(s: Snapshot) -> dict[str, list[TrackedEndpoint]]:
    out: dict[str, list[TrackedEndpoint]] = {}
    for e in s.endpoints:
        out.setdefault(e.service, []).append(e)
    return out


def _pending(endpoints: list[TrackedEndpoint]) -> tuple[Status, int, bool] | None:
    """A service's change being confirmed: the most alarming candidate, the longest
    streak, and whether nothing of the service is confirmed yet (its first cycles)."""
    pending = [(e.pending, e.pending_cycles) for e in endpoints if e.pending is not None]
    if not pending:
        return None
    worst = min((status for status, _ in pending), key=_SEVERITY.index)
    return worst, max(n for _, n in pending), all(e.since is None for e in endpoints)


def _service_badge(view: ServiceView, endpoints: list[TrackedEndpoint]) -> str:
    pending = _pending(endpoints)
    if pending is not None and pending[2]:
        return f"{badge(pending[0], pending=True)} confirming"
    return badge(view.status)


def _tile(view: ServiceView, endpoints: list[TrackedEndpoint], confirm: int) -> str:
    title = escape(view.title or view.name)
    label = tip = view.status.value
    colour = view.status
    extra = ""
    if (pending := _pending(endpoints)) is not None:
        status, count, nothing_yet = pending
        tip = f"{view.status.value}; confirming {status.value}, {count} of {confirm} cycles"
        if nothing_yet:  # a newcomer's first cycle: the candidate is all there is to show
            label, colour = f"{status.value}? {count}/{confirm}", status
        else:
            label = f"{view.status.value} · confirming {count}/{confirm}"
        extra = " confirming"
    return (
        f'<a class="tile s-{escape(colour.value)}{extra}" href="#service-{escape(view.name, quote=True)}" '
        f'title="{title}: {escape(tip)}"><b>{title}</b><span>{escape(label)}</span></a>'
    )


def _grid(s: Snapshot, by_service: dict[str, list[TrackedEndpoint]]) -> str:
    if not s.services:
        return ""
    tiles = "".join(_tile(v, by_service.get(v.name, []), s.confirm) for v in s.services)
    return f'<nav class="grid" aria-label="services">{tiles}</nav>'


def _services(s: Snapshot, now: float, by_service: dict[str, list[TrackedEndpoint]]) -> str:
    links = s.evidence is not None  # /evidence answers 404 without an evidence log
    parts = []
    for view in s.services:
        rows = "".join(
            endpoint_row(e, now, confirm=s.confirm, links=links) for e in by_service.get(view.name, ())
        )
        title = escape(view.title or view.name)
        subtitle = view.title and view.title != view.name
        name = f' <span class="muted">{escape(view.name)}</span>' if subtitle else ""
        json = f' <a href="{evidence_href(view.name)}">evidence JSON</a>' if links else ""
        parts.append(
            f'<section id="service-{escape(view.name, quote=True)}"><h2>{title}{name} '
            f"{_service_badge(view, by_service.get(view.name, []))}{json}</h2>{rows}</section>"
        )
    return "".join(parts)


def _legend(confirm: int) -> str:
    items = "".join(f"<dt>{badge(status)}</dt><dd>{escape(text)}</dd>" for status, text in LEGEND)
    items += (
        f"<dt>{badge(Status.BLOCKED, pending=True)}</dt><dd>seen, not confirmed yet: a change of status "
        f"is shown once {confirm} consecutive cycles agree</dd>"
    )
    return (
        '<section class="legend"><h2>Statuses</h2><dl>'
        f'{items}</dl><p class="muted">The bar under each endpoint is its last cycles, oldest on the left: '
        "each cell is that cycle's raw result (hover or long-press for its time and method).</p></section>"
    )


def _notices(s: Snapshot) -> str:
    notice = "" if s.ready else '<div class="notice">Waiting for the first measurement cycle to finish.</div>'
    if s.regime is Regime.WHITELIST:
        up = ", ".join(name for name, ok in sorted(s.canaries.items()) if ok)
        notice += (
            '<div class="notice">The vantage is in a <b>whitelist regime</b>: only the domestic canaries '
            f"({escape(up)}) answer, while the foreign controls and every foreign endpoint fail. "
            "Services outside the white list are shown blocked with method <code>whitelist</code>.</div>"
        )
    elif s.vantage_online is False:
        notice += (
            '<div class="notice">The vantage looks offline: every check failed at the network level, '
            "so no block is raised until it is back.</div>"
        )
    return notice


def render_status_page(s: Snapshot, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    by_service = _by_service(s)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="30">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>msgprobe {escape(s.probe_id)}</title><style>{CSS}</style></head><body>"
        f"{_header(s, now)}<main>{_notices(s)}{_grid(s, by_service)}{_services(s, now, by_service)}"
        f"{_legend(s.confirm)}</main>"
        '<footer>Machine-readable: <a href="status">/status</a> (JSON), '
        '<a href="metrics">/metrics</a> (Prometheus)'
        + (', <a href="evidence">/evidence</a> (JSON records)' if s.evidence is not None else "")
        + ".</footer></body></html>\n"
    )
