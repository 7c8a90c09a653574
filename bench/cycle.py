"""``python -m bench.cycle CONFIG [--cycles N]``: run cycles, print one JSON line each.

Runs in its own process so that peak RSS is the probe's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from pathlib import Path

from probe.cli import _raise_fd_limit
from probe.config.fingerprints import load_fingerprints
from probe.config.load import load_config
from probe.measure.endpoint import open_toolkit, tls_contexts
from probe.runner.cycle import run_cycle


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(config_path: Path, cycles: int) -> None:
    config = load_config(config_path)
    fingerprints = load_fingerprints(config.blockpages)
    contexts = tls_contexts(config)  # once per config, as the daemon does
    for _ in range(cycles):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        async with open_toolkit(config, contexts=contexts) as kit:
            cycle = await run_cycle(kit, fingerprints, config.services)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(
            json.dumps(
                {
                    "endpoints": len(cycle.results),
                    "wall_s": round(wall, 3),
                    "cpu_s": round(cpu, 3),
                    "rss_mb": round(rss_mb(), 1),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "statuses": dict(Counter(r.verdict.status.value for r in cycle.results)),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--cycles", type=int, default=1)
    args = parser.parse_args()
    _raise_fd_limit()
    asyncio.run(main(args.config, args.cycles))
