"""The human table of ``msgprobe once`` and ``msgprobe demo --once``."""

from __future__ import annotations

from collections.abc import Sequence

from probe.model import EndpointResult

_COLUMNS = ("SERVICE", "ENDPOINT", "STATUS", "METHOD", "EVIDENCE")


def render_table(results: Sequence[EndpointResult], *, vantage_online: bool, width: int = 160) -> str:
    rows = [
        (r.service, r.endpoint, r.verdict.status.value, r.verdict.method or "-", r.verdict.evidence)
        for r in results
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(_COLUMNS)]
    widths[-1] = max(20, width - sum(widths[:-1]) - 2 * (len(widths) - 1))
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip()]
    for row in rows:
        evidence = row[-1] if len(row[-1]) <= widths[-1] else row[-1][: widths[-1] - 1] + "…"
        cells = [*row[:-1], evidence]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict.status.value] = counts.get(r.verdict.status.value, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append("")
    lines.append(f"{len(results)} endpoints: {summary}. Vantage {'online' if vantage_online else 'OFFLINE'}.")
    return "\n".join(lines)
