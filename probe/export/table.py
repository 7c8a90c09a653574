"""The human table of ``msgprobe once`` and ``msgprobe demo --once``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from probe.model import EndpointResult
from probe.vocab import Regime

_COLUMNS = ("SERVICE", "ENDPOINT", "STATUS", "METHOD", "EVIDENCE")


def vantage_line(regime: Regime, canaries: Mapping[str, bool]) -> str:
    """The regime in words, with the domestic canaries that decided it."""
    up = [name for name, ok in canaries.items() if ok]
    down = [name for name, ok in canaries.items() if not ok]
    if regime is Regime.WHITELIST:
        return (
            f"Vantage in a whitelist regime: only domestic canaries answer ({', '.join(up)}); "
            "every service outside the white list is blocked."
        )
    if regime is Regime.OFFLINE:
        return "Vantage OFFLINE: nothing answered, the controls included; no block is raised."
    parts = []
    if up:
        parts.append(f"canaries answering: {', '.join(up)}")
    if down:
        parts.append(f"canaries failing: {', '.join(down)}")
    return f"Vantage online ({'; '.join(parts)})." if parts else "Vantage online."


def render_table(
    results: Sequence[EndpointResult],
    *,
    vantage_online: bool,
    width: int = 160,
    regime: Regime | None = None,
    canaries: Mapping[str, bool] | None = None,
) -> str:
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
    if regime is None:
        regime = Regime.ONLINE if vantage_online else Regime.OFFLINE
    lines.append(f"{len(results)} endpoints: {summary}. {vantage_line(regime, canaries or {})}")
    return "\n".join(lines)
