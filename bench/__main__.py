"""``make bench``: every figure issue 3 asks for, in one table, on the loopback censor.

    python -m bench [--loop asyncio|uvloop]     (or MSGPROBE_LOOP=uvloop)

1. full chain (DNS+TCP+TLS+HTTP) for N = 100 and 1,000 endpoints: wall,
   CPU per endpoint, peak RSS (probe process only; the censor runs apart);
   beside it the physical floor (bench/floor.py: a blocking socket, ``ssl``
   and one GET per endpoint, sequential) on the same censor, and the ratio;
2. 1,000 endpoints whose SYNs are never answered, connect timeout T: wall / T;
3. /metrics render at ~2,000 series (fresh encode, and a cached scrape);
4. msgprobe vs prometheus-blackbox-exporter, same HTTPS endpoints, same
   concurrency: the median of 5 runs of the CPU ratio;
5. steady RSS over 5 cycles of the built-in catalog (retargeted to loopback).

``--loop uvloop`` runs msgprobe's side of every figure on asyncio *and* on
uvloop, and prints the two in columns side by side, so the table says
whether uvloop pays. Everything listens and connects on loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from bench import blackbox, patterns, render
from bench.censor import censor
from tests.export import snapshots

TIMEOUT_T = 2.0
BLACKBOX_RUNS = 5
COLUMNS: list[str] = ["measured"]  # one value column per event loop measured; see main()


class Failed(Exception):
    """A benchmark's subprocess failed; its section prints the reason and the run goes on."""


def _run(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise Failed(f"python -m {args[0]}: {last}")
    return out.stdout.splitlines()


def cycles(config: object, n: int = 1, loop: str = "asyncio") -> list[dict[str, Any]]:
    lines = _run("bench.cycle", str(config), "--cycles", str(n), "--loop", loop)
    return [json.loads(line) for line in lines]


def floor(config: object, *extra: str) -> dict[str, float]:
    return dict(json.loads(_run("bench.floor", str(config), *extra)[-1]))


def row(name: str, value: str | Sequence[str], target: str) -> None:
    """One figure: ``value`` is one cell, or one per column (event loop) when msgprobe's side ran on each."""
    cells = [value] if isinstance(value, str) else list(value)
    cells += [""] * (len(COLUMNS) - len(cells))
    print(f"{name:<60}" + "".join(f"{c:>14}" for c in cells) + f"   {target}", flush=True)


def full_chain(loops: Sequence[str]) -> None:
    for n in (100, 1000):
        with censor("--scenario", "clean", "--count", str(n), "--concurrency", "256") as config:
            if n == 1000:  # the floor first: it needs nothing of msgprobe's to work
                floor_ms = floor(config)["cpu_ms_per_endpoint"]
                row("floor (socket + ssl + GET, sequential): CPU per endpoint", f"{floor_ms:.2f} ms", "")
                row(
                    "floor with DNS A + AAAA first: CPU per endpoint",
                    f"{floor(config, '--dns')['cpu_ms_per_endpoint']:.2f} ms",
                    "",
                )
            try:
                c = {loop: cycles(config, 2, loop)[-1] for loop in loops}
            except Failed as exc:  # the floor for 1,000 still gets its turn
                row(f"full chain, {n} endpoints", "FAILED", str(exc))
                continue
        cpu_ms = {loop: 1000 * c[loop]["cpu_s"] / n for loop in loops}
        row(
            f"full chain, {n} endpoints: wall",
            [f"{c[loop]['wall_s']:.2f} s" for loop in loops],
            "≤ 2.5 s for 1,000" if n == 1000 else "",
        )
        row(
            f"full chain, {n} endpoints: CPU per endpoint",
            [f"{cpu_ms[loop]:.2f} ms" for loop in loops],
            "",
        )
        row(
            f"full chain, {n} endpoints: verdicts ok",  # fewer means overload: the CPU figure flatters
            [f"{c[loop]['statuses'].get('ok', 0)}/{c[loop]['endpoints']:.0f}" for loop in loops],
            f"{n}/{n}",
        )
        row(
            f"full chain, {n} endpoints: peak RSS",
            [f"{c[loop]['peak_rss_mb']:.0f} MB" for loop in loops],
            "",
        )
        if n == 1000:
            row(
                f"full chain CPU per endpoint / floor ({n} endpoints)",
                [f"{cpu_ms[loop] / floor_ms:.2f}×" for loop in loops],
                "≤ 1.5×",
            )


def syn_timeouts(loops: Sequence[str]) -> None:
    for scenario, label, target in (
        ("blackhole-ip", "IP literals", "≤ 1.1"),
        ("blackhole", "names, DNS first", "≤ 1.15"),
    ):
        flags = ["--count", "1000", "--concurrency", "1000", "--connect-timeout", str(TIMEOUT_T)]
        with censor("--scenario", scenario, *flags, "--dns-timeout", "4") as config:
            w = {loop: cycles(config, 1, loop)[-1]["wall_s"] for loop in loops}
        row(
            f"1,000 SYN timeouts at T={TIMEOUT_T:.0f}s ({label}): wall / T",
            [f"{w[loop] / TIMEOUT_T:.2f}" for loop in loops],
            target,
        )


def metrics_render(loops: Sequence[str]) -> None:
    figures = render.figures(snapshots.catalog(services=7, per_service=8))
    row(
        f"/metrics, {figures['series']:.0f} series: fresh text encode",
        f"{figures['text_fresh_ms']:.1f} ms",
        "≤ 10 ms",
    )
    row(
        f"/metrics, {figures['series']:.0f} series: fresh text, the library's encoder",
        f"{figures['library_text_fresh_ms']:.1f} ms "
        f"({figures['library_text_fresh_ms'] / figures['text_fresh_ms']:.1f}x ours)",
        "",
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


def versus_blackbox(loops: Sequence[str]) -> None:
    try:
        b = blackbox.compare(200, 64, runs=BLACKBOX_RUNS, loops=loops)
    except FileNotFoundError as exc:
        row("blackbox comparison", "skipped", str(exc))
        return
    row(
        f"CPU per HTTPS probe: msgprobe (median of {BLACKBOX_RUNS})",
        [f"{b[loop]['msgprobe_cpu_ms_per_probe']:.2f} ms" for loop in loops],
        "",
    )
    row(
        f"CPU per HTTPS probe: blackbox_exporter (median of {BLACKBOX_RUNS})",
        f"{b[loops[0]]['blackbox_cpu_ms_per_probe']:.2f} ms",
        "",
    )
    row(
        f"CPU ratio msgprobe / blackbox (median of {BLACKBOX_RUNS} runs)",
        [f"{b[loop]['ratio']:.2f}" for loop in loops],
        "≤ 0.8",
    )
    row(
        "blackbox_exporter probes that succeeded (worst run)",
        f"{b[loops[0]]['blackbox_ok']:.0f}/{b[loops[0]]['probes']:.0f}",
        "all",
    )
    row(
        "CPU ratio msgprobe / blackbox: min – max of the runs",
        [f"{b[loop]['ratio_min']:.2f}–{b[loop]['ratio_max']:.2f}" for loop in loops],
        "",
    )


def catalog_rss(loops: Sequence[str]) -> None:
    with censor("--scenario", "catalog") as config:
        runs = {loop: cycles(config, 5, loop) for loop in loops}
    row(
        f"built-in catalog ({runs[loops[0]][-1]['endpoints']:.0f} endpoints): RSS after 5 cycles",
        [f"{runs[loop][-1]['rss_mb']:.0f} MB" for loop in loops],
        "≤ 60 MB",
    )
    row(
        "built-in catalog: RSS growth cycle 2 → 5",
        [f"{runs[loop][-1]['rss_mb'] - runs[loop][1]['rss_mb']:+.1f} MB" for loop in loops],
        "steady",
    )


# ---- the body-substring index (bench/patterns.py): the two Aho-Corasick
# libraries, as ratios to the hand-written filter they replaced, same run.
def substring_index(loops: Sequence[str]) -> None:
    for figure, measured, note in patterns.rows():
        row(figure, measured, note)


SECTIONS = (full_chain, syn_timeouts, metrics_render, versus_blackbox, catalog_rss, substring_index)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default=os.environ.get("MSGPROBE_LOOP", "asyncio"),
        help="uvloop: measure msgprobe on asyncio and on uvloop, side by side (env MSGPROBE_LOOP)",
    )
    loops = ["asyncio"] if parser.parse_args(argv).loop == "asyncio" else ["asyncio", "uvloop"]
    COLUMNS[:] = loops if len(loops) > 1 else ["measured"]
    print(f"{'figure':<60}" + "".join(f"{c:>14}" for c in COLUMNS) + "   target", flush=True)
    # Other work on this machine skews wall times (and starves the censor): say how busy it was.
    before = os.getloadavg()[0]
    failed = False
    for section in SECTIONS:
        try:
            section(loops)
        except (Failed, subprocess.CalledProcessError, RuntimeError) as exc:
            failed = True
            row(section.__name__.replace("_", " "), "FAILED", str(exc))
    row("load average (1 min) at start / end", f"{before:.2f} / {os.getloadavg()[0]:.2f}", "")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
