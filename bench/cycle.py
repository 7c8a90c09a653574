"""``python -m bench.cycle CONFIG [--cycles N] [--loop asyncio|uvloop]``: one JSON line per cycle.

Runs in its own process so that peak RSS and CPU are the probe's alone.
``--loop uvloop`` runs the same cycles on uvloop's event loop instead of
asyncio's own (uvloop must be installed; msgprobe does not depend on it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from probe.config.fingerprints import load_fingerprints
from probe.config.load import load_config
from probe.measure.toolkit import Resources, open_toolkit
from probe.runner.cycle import run_cycle

LOOPS = ("asyncio", "uvloop")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def raise_fd_limit() -> None:
    # As `msgprobe run` does: 1,000 concurrent endpoints need more than the usual soft limit of 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop == "uvloop":
        import uvloop  # only when asked for: not a dependency of msgprobe

        return uvloop.new_event_loop
    return asyncio.new_event_loop


async def main(config_path: Path, cycles: int) -> None:
    config = load_config(config_path)
    fingerprints = load_fingerprints(config.blockpages)
    resources = Resources.create(config)  # once per config, as the daemon does
    loop = type(asyncio.get_running_loop())
    for _ in range(cycles):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        async with open_toolkit(config, resources=resources) as kit:
            cycle = await run_cycle(kit, fingerprints, config.services)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(
            json.dumps(
                {
                    "loop": f"{loop.__module__}.{loop.__qualname__}",
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
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    args = parser.parse_args()
    raise_fd_limit()
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(main(args.config, args.cycles))
