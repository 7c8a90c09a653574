"""``make soak``: thousands of short daemon cycles on the simulated censor, watching
the process for leaks (not part of ``make test``: it runs for minutes).

Each cycle is the daemon's own (measure, confirm, track, evidence, snapshot)
over a few loopback scenarios that answer at once (a clean service and
instant blocks: no timeout spends the cycle waiting), and every 100 cycles
``/metrics`` is rendered as a scrape would. RSS and open file descriptors
are read after a warm-up and at the end; growth beyond ``--rss-budget`` MB
or any descriptor left open fails the run (exit 1).

    python -m scripts.soak [--cycles 10000] [--rss-budget 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from probe.export.text_format import encode_text
from probe.runner.daemon import Daemon
from probe.testbed.middlebox import Blockpage, Redirect, Reset
from probe.testbed.resolver import NxDomain
from probe.testbed.scenarios import BLOCKPAGE, FakeService, LoopbackCensor

SCENARIOS = (
    FakeService("clean"),
    FakeService("dns-nxdomain", dns=NxDomain()),
    FakeService("tls-reset", tls=Reset()),
    FakeService("http-blockpage", http=Blockpage(BLOCKPAGE), checks=("dns", "tcp", "http")),
    FakeService("http-redirect", http=Redirect("http://blocked.isp.test/"), checks=("dns", "tcp", "http")),
)
WARM_UP = 200  # cycles before the first reading: caches, pools and the allocator settle


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def soak(cycles: int) -> tuple[float, float, int, int, float]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-soak-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=len(SCENARIOS)) as bed:
            services = [await bed.add(f) for f in SCENARIOS]
            config = bed.config(services, confirm=2)
            daemon = Daemon(lambda: config, listen="127.0.0.1:0", evidence_path=Path(workdir) / "ev.jsonl")
            start_rss, start_fds, started = 0.0, 0, time.monotonic()
            for n in range(cycles + WARM_UP):
                if n == WARM_UP:
                    start_rss, start_fds, started = rss_mib(), open_fds(), time.monotonic()
                await daemon.cycle()
                if n % 100 == 0:
                    encode_text(daemon.registry.collect())
            return start_rss, rss_mib(), start_fds, open_fds(), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--rss-budget", type=float, default=5.0, help="MB of RSS growth allowed")
    args = parser.parse_args()
    rss0, rss1, fds0, fds1, elapsed = asyncio.run(soak(args.cycles))
    print(
        f"soak: {args.cycles} cycles of {len(SCENARIOS)} endpoints in {elapsed:.0f} s "
        f"({elapsed / args.cycles * 1000:.1f} ms a cycle)\n"
        f"  RSS {rss0:.1f} -> {rss1:.1f} MiB ({rss1 - rss0:+.1f}; budget {args.rss_budget:+.1f})\n"
        f"  open fds {fds0} -> {fds1} ({fds1 - fds0:+d})"
    )
    leaked = rss1 - rss0 > args.rss_budget or fds1 != fds0
    if leaked:
        print("soak: FAILED (growth over budget)", file=sys.stderr)
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
