"""Small HTML pieces of the status page: times, badges, links.

Everything returned here is markup; every value that goes into it passes
through ``html.escape`` here, so callers may concatenate the results.
Times are shown in UTC: the page has no JavaScript to learn the
volunteer's time zone, and the evidence log speaks UTC too.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode

from probe.export.records import iso_time
from probe.vocab import Method, Status


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{int(seconds)} s ago"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def clock(t: float, now: float) -> str:
    """``14:02`` for today (UTC), ``05-01 14:02`` for an older day: short enough for a phone."""
    at = datetime.fromtimestamp(t, UTC)
    today = datetime.fromtimestamp(now, UTC).date()
    return at.strftime("%H:%M") if at.date() == today else at.strftime("%m-%d %H:%M")


def when(t: float, now: float) -> str:
    """A ``<time>`` showing the short clock, with the full ISO time as its tooltip."""
    iso = iso_time(t)
    return f'<time datetime="{iso}" title="{iso}">{escape(clock(t, now))}</time>'


def badge(status: Status | str, *, pending: bool = False) -> str:
    value = status.value if isinstance(status, Status) else status
    extra = " pending" if pending else ""
    return f'<span class="badge s-{escape(value)}{extra}">{escape(value)}</span>'


def what(status: Status, method: Method | None) -> str:
    """``blocked tls.reset``: the status and, for a block, how."""
    return status.value + (f" {method.value}" if method is not None and status is Status.BLOCKED else "")


def cycles(n: int) -> str:
    return f"{n} cycle" if n == 1 else f"{n} cycles"


def evidence_href(service: str, since: float | None = None) -> str:
    """The ``/evidence`` query for one service's records, from ``since`` on (a relative URL,
    so the page works behind a reverse proxy's path prefix too)."""
    query: dict[str, str] = {"service": service}
    if since is not None:
        # Whole seconds, rounded down: the filter is ``time >= since``, so the run's first record stays in.
        query["since"] = str(math.floor(since))
    return escape("evidence?" + urlencode(query), quote=True)
