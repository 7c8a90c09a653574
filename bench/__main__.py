"""``make bench``: every figure issue 3 asks for, in one table, on the loopback censor.

1. full chain (DNS+TCP+TLS+HTTP) for N = 100 and 1,000 endpoints: wall,
   CPU per endpoint, peak RSS (probe process only; the censor runs apart);
2. 1,000 endpoints whose SYNs are never answered, connect timeout T: wall / T;
3. /metrics render at ~2,000 series (fresh encode, and a cached scrape);
4. msgprobe vs prometheus-blackbox-exporter, same HTTPS endpoints, same concurrency;
5. steady RSS over 5 cycles of the built-in catalog (retargeted to loopback).
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench import blackbox, patterns, render
from bench.censor import censor
from tests.export import snapshots

TIMEOUT_T = 2.0


def cycles(config: object, n: int = 1) -> list[dict[str, float]]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.cycle", str(config), "--cycles", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def row(name: str, value: str, target: str) -> None:
    print(f"{name:<52}{value:>22}   {target}")


def main() -> None:
    print(f"{'figure':<52}{'measured':>22}   target")
    for n in (100, 1000):
        with censor("--scenario", "clean", "--count", str(n), "--concurrency", "256") as config:
            c = cycles(config, 2)[-1]
        row(
            f"full chain, {n} endpoints: wall", f"{c['wall_s']:.2f} s", "≤ 2 s for 1,000" if n == 1000 else ""
        )
        row(f"full chain, {n} endpoints: CPU per endpoint", f"{1000 * c['cpu_s'] / n:.2f} ms", "")
        row(f"full chain, {n} endpoints: peak RSS", f"{c['peak_rss_mb']:.0f} MB", "")
    for scenario, label in (("blackhole-ip", "IP literals"), ("blackhole", "names, DNS first")):
        flags = [
            "--count",
            "1000",
            "--concurrency",
            "1000",
            "--connect-timeout",
            str(TIMEOUT_T),
            "--dns-timeout",
            "4",
        ]
        with censor("--scenario", scenario, *flags) as config:
            c = cycles(config)[-1]
        row(
            f"1,000 SYN timeouts at T={TIMEOUT_T:.0f}s ({label}): wall / T",
            f"{c['wall_s'] / TIMEOUT_T:.2f}",
            "≤ 1.1",
        )
    figures = render.figures(snapshots.catalog(services=7, per_service=8))
    row(
        f"/metrics, {figures['series']:.0f} series: fresh text encode",
        f"{figures['text_fresh_ms']:.1f} ms",
        "≤ 10 ms",
    )
    row(
        f"/metrics, {figures['series']:.0f} series: fresh OpenMetrics",
        f"{figures['openmetrics_fresh_ms']:.1f} ms",
        "",
    )
    row(
        f"/metrics, {figures['series']:.0f} series: scrape (cached)",
        f"{figures['openmetrics_scrape_cached_ms']:.2f} ms",
        "≤ 10 ms",
    )
    try:
        b = blackbox.compare(200, 64)
        row("CPU per HTTPS probe: msgprobe", f"{b['msgprobe_cpu_ms_per_probe']:.2f} ms", "")
        row("CPU per HTTPS probe: blackbox_exporter", f"{b['blackbox_cpu_ms_per_probe']:.2f} ms", "")
        row("CPU ratio msgprobe / blackbox", f"{b['ratio']:.2f}", "≤ 1.0")
    except FileNotFoundError as exc:
        row("blackbox comparison", "skipped", str(exc))
    with censor("--scenario", "catalog") as config:
        runs = cycles(config, 5)
    row(
        f"built-in catalog ({runs[-1]['endpoints']:.0f} endpoints): RSS after 5 cycles",
        f"{runs[-1]['rss_mb']:.0f} MB",
        "≤ 60 MB",
    )
    row(
        "built-in catalog: RSS growth cycle 2 → 5",
        f"{runs[-1]['rss_mb'] - runs[1]['rss_mb']:+.1f} MB",
        "steady",
    )
    # ---- the body-substring index (bench/patterns.py): the two Aho-Corasick
    # libraries, as ratios to the hand-written filter they replaced, same run.
    for figure, measured, note in patterns.rows():
        row(figure, measured, note)


if __name__ == "__main__":
    main()
