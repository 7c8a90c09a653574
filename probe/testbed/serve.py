"""``python -m probe.testbed.serve``: the loopback censor in its own process.

Benchmarks and the deploy tests run it apart from the probe, so that the
censor's CPU never counts as the probe's. It writes a config file that
measures its services, prints ``ready <path>`` and serves until SIGTERM.

Scenarios: ``demo`` (msgprobe demo's set), ``clean`` (N clean services),
``blackhole`` (N names resolving to one address whose SYNs are never
answered), ``catalog`` (the built-in catalog retargeted to clean loopback
middleboxes).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import yaml

from probe.config.catalog import load_catalog
from probe.config.nodes import builtin_path
from probe.testbed.config_document import config_document
from probe.testbed.resolver import Answer
from probe.testbed.scenarios import DEMO, FakeService, LoopbackCensor


def _fakes(args: argparse.Namespace) -> list[FakeService]:
    if args.scenario == "demo":
        return list(DEMO)
    if args.scenario == "clean":
        checks = tuple(args.checks.split(","))
        return [FakeService(f"clean-{i:04d}", checks=checks) for i in range(args.count)]
    if args.scenario == "blackhole-ip":
        return [FakeService("hole", tcp="blackhole", checks=("dns", "tcp"))]
    if args.scenario == "blackhole":
        hole_ip = str(ipaddress.ip_address("127.0.0.0") + args.first_ip)
        hole = FakeService("hole", tcp="blackhole", checks=("dns", "tcp"))
        rest = [
            FakeService(f"hole-{i:04d}", dns=Answer([hole_ip]), tcp="closed", checks=("dns", "tcp"))
            for i in range(1, args.count)
        ]
        return [hole, *rest]
    return []


async def _serve(args: argparse.Namespace) -> None:
    fakes = _fakes(args)
    catalog = load_catalog(builtin_path("targets.yaml")) if args.scenario == "catalog" else ()
    size = len(fakes) + sum(len(s.endpoints) for s in catalog)
    with tempfile.TemporaryDirectory(prefix="msgprobe-testbed-") as workdir:
        async with LoopbackCensor(Path(workdir), first_ip=args.first_ip, max_services=size) as bed:
            services = await bed.retarget(catalog) if catalog else [await bed.add(f) for f in fakes]
            if args.scenario == "blackhole-ip":
                # IP-literal endpoints: no DNS at all, only SYNs that go unanswered.
                hole = services[0].endpoints[0]
                address = str(next(iter(hole.expected.prefixes)).network_address)
                checks = tuple(c for c in hole.checks if c.label != "dns")
                services = [
                    replace(
                        services[0],
                        name=f"hole-ip-{i:04d}",
                        endpoints=(replace(hole, host=address, checks=checks),),
                    )
                    for i in range(args.count)
                ]
            if args.scenario == "blackhole":
                # The shared hole address is where these names are expected to
                # live: the answers need no control, only the SYNs go unanswered.
                expected = services[0].endpoints[0].expected
                services = [
                    replace(s, endpoints=tuple(replace(e, expected=expected) for e in s.endpoints))
                    for s in services
                ]
            config = bed.config(services, concurrency=args.concurrency, probe_id=args.probe_id)
            if args.connect_timeout:
                config = replace(config, timeouts=replace(config.timeouts, connect=args.connect_timeout))
            if args.dns_timeout:
                config = replace(config, timeouts=replace(config.timeouts, dns=args.dns_timeout))
            document = config_document(config)
            args.config_out.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
            print(f"ready {args.config_out}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario", choices=("demo", "clean", "blackhole", "blackhole-ip", "catalog"), default="demo"
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--checks", default="dns,tcp,tls,https")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connect-timeout", type=float, default=0.0)
    parser.add_argument("--dns-timeout", type=float, default=0.0)
    parser.add_argument("--first-ip", type=int, default=10)
    parser.add_argument("--probe-id", default="testbed")
    parser.add_argument("--config-out", type=Path, required=True)
    asyncio.run(_serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
