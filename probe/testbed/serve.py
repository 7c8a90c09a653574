"""``python -m probe.testbed.serve``: the loopback censor in its own process.

Benchmarks and the deploy tests run it apart from the probe, so that the
censor's CPU never counts as the probe's. It writes a config file that
measures its services, prints ``ready <path>`` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

import yaml

from probe.testbed.scenarios import DEMO, FakeService, LoopbackCensor, config_document


async def _serve(args: argparse.Namespace) -> None:
    fakes: list[FakeService]
    if args.scenario == "demo":
        fakes = list(DEMO)
    elif args.scenario == "clean":
        fakes = [
            FakeService(f"clean-{i:04d}", checks=tuple(args.checks.split(","))) for i in range(args.count)
        ]
    else:  # "blackhole": every endpoint's TCP handshake is never answered
        fakes = [
            FakeService(f"hole-{i:04d}", tcp="blackhole", checks=("dns", "tcp")) for i in range(args.count)
        ]
    with tempfile.TemporaryDirectory(prefix="msgprobe-testbed-") as workdir:
        async with LoopbackCensor(Path(workdir), first_ip=args.first_ip, max_services=len(fakes)) as bed:
            services = [await bed.add(f) for f in fakes]
            document = config_document(bed.config(services, concurrency=args.concurrency))
            args.config_out.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
            print(f"ready {args.config_out}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=("demo", "clean", "blackhole"), default="demo")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--checks", default="dns,tcp,tls,https")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--first-ip", type=int, default=10)
    parser.add_argument("--config-out", type=Path, required=True)
    asyncio.run(_serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
