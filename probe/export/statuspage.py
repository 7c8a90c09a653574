"""``GET /``: the volunteer's page. One self-contained HTML document.

No JavaScript and no external assets (nothing to fetch, nothing to build,
nothing that phones home from the volunteer's browser); the browser
refreshes it every 30 seconds. Every value from the config or from an
observation passes through ``html.escape``: a blockpage title is text an
adversary chose.
"""

from __future__ import annotations

import time
from html import escape

from probe.export.records import iso_time
from probe.state import FailureRecord, Snapshot, TrackedEndpoint
from probe.vocab import EndpointState, Regime, Status

SHOWN_FAILURES = 3  # per endpoint; /status has the whole ring buffer

LEGEND: tuple[tuple[Status, str], ...] = (
    (Status.OK, "every active check succeeded"),
    (Status.BLOCKED, "interference is proven; the method says how"),
    (Status.UNREACHABLE, "fails from here while the vantage is online; cannot tell a block from an outage"),
    (Status.DOWN, "the service itself fails: the controls fail the same way"),
    (Status.UNKNOWN, "inconclusive, not measured yet, or the vantage is offline"),
    (Status.ERROR, "the probe could not run the check (configuration or capability)"),
)

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0}
body{color:#1d2430;background:#f5f6f8}
header{background:#1d2430;color:#fff;padding:16px 24px}
header h1{margin:0 0 6px;font-size:20px}
header dl{display:flex;flex-wrap:wrap;gap:4px 24px;margin:0}
header dt{opacity:.7}header dd{margin:0 0 0 6px;font-weight:600}
header div{display:flex}
main{padding:8px 24px 24px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:16px 0;padding:4px 16px 12px}
h2{font-size:17px;margin:12px 0 8px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
col.c-endpoint{width:21%}col.c-status{width:10%}col.c-method{width:11%}col.c-change{width:19%}
time{white-space:nowrap}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-top:1px solid #eceff3}
th{font-size:13px;color:#5a6473;border-top:none}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;font-weight:600;color:#fff}
.s-ok{background:#1f7a3a}.s-blocked{background:#b42318}.s-unreachable{background:#b54708}
.s-down{background:#5b3fa6}.s-unknown{background:#667085}.s-error{background:#8a6d00}
.s-online{background:#1f7a3a}.s-offline{background:#b42318}.s-whitelist{background:#b42318}
.muted{color:#667085;font-size:13px}
.tag{font-size:12px;border:1px solid #98a2b3;border-radius:4px;padding:0 4px;color:#475467}
ul.failures{margin:0;padding-left:18px}ul.failures li{margin:2px 0}
.notice{background:#fff7e6;border:1px solid #f5c26b;border-radius:6px;padding:10px 16px;margin:16px 0}
tr.row-blocked td{background:#fef3f2}
.legend dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 12px;margin:0;align-items:center}
.legend dd{margin:0}
footer{padding:0 24px 24px;color:#667085;font-size:13px}
"""


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{int(seconds)} s ago"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def _when(t: float | None, now: float) -> str:
    if t is None:
        return '<span class="muted">never</span>'
    iso = iso_time(t)
    return f'{escape(_ago(now - t))}<br><time class="muted" datetime="{iso}">{iso}</time>'


def _badge(status: Status | str) -> str:
    value = status.value if isinstance(status, Status) else status
    return f'<span class="badge s-{escape(value)}">{escape(value)}</span>'


def _header(s: Snapshot, now: float) -> str:
    if s.regime is not None:
        online = _badge(s.regime.value)
    elif s.vantage_online is None:
        online = '<span class="muted">not known yet</span>'
    else:
        online = _badge("online") if s.vantage_online else _badge("offline")
    if s.last_cycle_end is None:
        last = '<span class="muted">none yet</span>'
    else:
        duration = f" (took {s.last_cycle_duration:.1f} s)" if s.last_cycle_duration is not None else ""
        last = f"{escape(_ago(now - s.last_cycle_end))}{escape(duration)}"
    items = [
        ("probe", escape(s.probe_id or "(no id)")),
        ("version", escape(s.version)),
        ("vantage", online),
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
    if not s.reload_ok:
        items.append(("config", _badge("error") + " last reload failed; the previous config runs"))
    if s.evidence is not None:
        health = s.evidence
        link = f'<a href="evidence">{health.records} records</a>, {health.bytes / 1e6:.1f} MB'
        if health.last_error is not None:
            link = (
                _badge("error")
                + f" not written: {escape(health.last_error)} ({health.dropped} records dropped); "
                + "measuring goes on, metrics only"
                + f"; {link}"
            )
        items.append(("evidence", link))
    for peer, (up, error) in sorted(s.controls.items()):
        state = (
            _badge("ok") + " answering" if up else _badge("unknown") + f" unreachable: {escape(error or '?')}"
        )
        items.append((f"control {escape(peer)}", state))
    cells = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    return f"<header><h1>msgprobe status</h1><dl>{cells}</dl></header>"


def _failures(records: tuple[FailureRecord, ...], now: float) -> str:
    if not records:
        return '<span class="muted">none</span>'
    items = []
    for f in reversed(records[-SHOWN_FAILURES:]):
        what = " ".join(x for x in (f.status.value, f.method.value if f.method else "") if x)
        failure = f" <code>{escape(f.failure)}</code>" if f.failure else ""
        items.append(
            f'<li><span class="muted" title="{iso_time(f.time)}">{escape(_ago(now - f.time))}</span> '
            f"<b>{escape(what)}</b>{failure}<br>{escape(f.evidence)}</li>"
        )
    more = len(records) - SHOWN_FAILURES
    tail = f'<li class="muted">{more} more in /status</li>' if more > 0 else ""
    return f'<ul class="failures">{"".join(items)}{tail}</ul>'


def _row(e: TrackedEndpoint, now: float) -> str:
    tag = f' <span class="tag">{escape(e.state.value)}</span>' if e.state is not EndpointState.ACTIVE else ""
    status = _badge(e.status)
    if e.latest is not None and e.latest.verdict.status is not e.status:
        status += f'<br><span class="muted">latest: {escape(e.latest.verdict.status.value)}</span>'
    method = (
        f"<code>{escape(e.method.value)}</code>"
        if e.method is not None and e.status is Status.BLOCKED
        else '<span class="muted">-</span>'
    )
    row_class = ' class="row-blocked"' if e.status is Status.BLOCKED else ""
    return (
        f"<tr{row_class}><td><code>{escape(e.endpoint)}</code>{tag}</td><td>{status}</td><td>{method}</td>"
        f"<td>{_when(e.since, now)}</td><td>{_failures(e.recent_failures, now)}</td></tr>"
    )


def _services(s: Snapshot, now: float) -> str:
    by_service: dict[str, list[TrackedEndpoint]] = {}
    for e in s.endpoints:
        by_service.setdefault(e.service, []).append(e)
    parts = []
    for view in s.services:
        rows = "".join(_row(e, now) for e in by_service.get(view.name, ()))
        title = escape(view.title or view.name)
        subtitle = view.title and view.title != view.name
        name = f' <span class="muted">{escape(view.name)}</span>' if subtitle else ""
        parts.append(
            f'<section id="service-{escape(view.name)}"><h2>{title}{name} {_badge(view.status)}</h2>'
            '<table><colgroup><col class="c-endpoint"><col class="c-status"><col class="c-method">'
            '<col class="c-change"><col></colgroup><thead><tr><th>endpoint</th><th>status</th>'
            "<th>method</th><th>last change</th>"
            f"<th>last failures and evidence</th></tr></thead><tbody>{rows}</tbody></table></section>"
        )
    return "".join(parts)


def _legend() -> str:
    items = "".join(f"<dt>{_badge(status)}</dt><dd>{escape(text)}</dd>" for status, text in LEGEND)
    return (
        '<section class="legend"><h2>Statuses</h2><dl>'
        f'{items}</dl><p class="muted">A change of status is shown once consecutive cycles agree; '
        "“latest” is the last raw result.</p></section>"
    )


def render_status_page(s: Snapshot, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
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
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="30">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>msgprobe {escape(s.probe_id)}</title><style>{_CSS}</style></head><body>"
        f"{_header(s, now)}<main>{notice}{_services(s, now)}{_legend()}</main>"
        '<footer>Machine-readable: <a href="status">/status</a> (JSON), '
        '<a href="metrics">/metrics</a> (Prometheus).</footer></body></html>\n'
    )
