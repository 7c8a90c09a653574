"""Run the real probe (measure → analyse) against a LoopbackCensor scenario."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probe.config.fingerprints import load_fingerprints
from probe.measure.endpoint import open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.scenarios import FakeService, LoopbackCensor

FINGERPRINTS = load_fingerprints()


async def measure(fakes: Sequence[FakeService], *, retries: int = 0, **overrides: Any) -> CycleResult:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=sum(f.addresses for f in fakes)) as bed:
            services = [await bed.add(f) for f in fakes]
            config = bed.config(services, **overrides)
            async with open_toolkit(config) as kit:
                return await run_cycle(kit, FINGERPRINTS, config.services, retries=retries)


def run(fakes: Sequence[FakeService], **kw: Any) -> CycleResult:
    return asyncio.run(measure(fakes, **kw))


def by_service(cycle: CycleResult) -> dict[str, Any]:
    return {r.service: r for r in cycle.results}
