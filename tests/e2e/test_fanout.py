"""A resolver answering thousands of records must not make the probe open
thousands of sockets: the addresses measured per endpoint and family are
bounded, the evidence says how many answers were left unmeasured, the
process's open files stay bounded, and the other endpoints of the cycle
are measured as usual (the vantage stays online)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import tempfile
from pathlib import Path

from probe.checks.flow import MAX_ADDRESSES_PER_FAMILY
from probe.export.records import result_record
from probe.measure.toolkit import open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.resolver import Answer
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import Status
from tests.e2e.harness import FINGERPRINTS

ANSWERS = 3_000  # about 48 KB of A records: over TCP after the UDP reply is truncated


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _cycle() -> tuple[CycleResult, int, int]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-fanout-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=2) as bed:
            clean = await bed.add(FakeService("clean"))
            flood = await bed.add(FakeService("flood", checks=("dns", "tcp", "tls")))
            host = flood.endpoints[0].host
            many = [str(ipaddress.ip_address("127.2.0.1") + n) for n in range(ANSWERS)]
            bed.resolver.rules[host] = Answer(many)
            bed.control.rules[host] = Answer(many)
            config = bed.config([clean, flood])
            async with open_toolkit(config) as kit:
                before = _open_files()
                peak = [before]

                async def watch() -> None:
                    while True:
                        peak[0] = max(peak[0], _open_files())
                        await asyncio.sleep(0.01)

                watcher = asyncio.create_task(watch())
                try:
                    cycle = await run_cycle(kit, FINGERPRINTS, config.services)
                finally:
                    watcher.cancel()
                return cycle, before, peak[0]


def test_thousands_of_answers_are_bounded_and_said() -> None:
    cycle, before, peak = asyncio.run(_cycle())
    by = {r.service: r for r in cycle.results}
    flood = by["flood"]
    measured = {o.address for o in flood.observations.tcp}
    assert 0 < len(measured) <= MAX_ADDRESSES_PER_FAMILY
    assert flood.observations.unmeasured_addresses == ANSWERS - len(measured)
    assert f"{ANSWERS - len(measured)} more answered addresses not measured" in flood.verdict.evidence
    assert result_record(flood)["observations"]["unmeasured_addresses"] == ANSWERS - len(measured)
    # A handful of sockets per measured address and the resolvers', never one per answer.
    assert peak - before < 4 * MAX_ADDRESSES_PER_FAMILY + 32, (before, peak)
    assert cycle.vantage_online
    assert by["clean"].verdict.status is Status.OK, by["clean"].verdict
