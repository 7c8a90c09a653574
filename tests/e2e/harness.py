"""Run the real probe (measure → analyse) against a LoopbackCensor scenario."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probe.config.fingerprints import load_fingerprints
from probe.measure.toolkit import open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.fingerprints import BLOCKPAGES
from probe.testbed.scenarios import FakeService, LoopbackCensor

# The testbed's: the built-in list, then the overlay naming its interception CA.
FINGERPRINTS = load_fingerprints(BLOCKPAGES)


async def measure(fakes: Sequence[FakeService], *, retries: int = 0, **overrides: Any) -> CycleResult:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=sum(f.addresses for f in fakes)) as bed:
            services = [await bed.add(f) for f in fakes]
            config = bed.config(services, **overrides)
            async with open_toolkit(config) as kit:
                # What the config names, as the daemon loads it (reused when it is the testbed's).
                names = config.blockpages
                fingerprints = FINGERPRINTS if names == BLOCKPAGES else load_fingerprints(names)
                return await run_cycle(kit, fingerprints, config.services, retries=retries)


def run(fakes: Sequence[FakeService], **kw: Any) -> CycleResult:
    return asyncio.run(measure(fakes, **kw))


def by_service(cycle: CycleResult) -> dict[str, Any]:
    return {r.service: r for r in cycle.results}
