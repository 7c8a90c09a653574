"""``msgprobe demo``'s network: the loopback censor with every ``DEMO`` scenario,
and a control peer outside it, so blocks that need a control are proven too."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from probe.config.model import Config
from probe.testbed.control_peer import control_peer
from probe.testbed.scenarios import DEMO, LoopbackCensor


@contextlib.asynccontextmanager
async def demo_testbed(*, probe_id: str = "demo", interval: float = 10.0) -> AsyncIterator[Config]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-demo-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=len(DEMO)) as bed:
            services = [await bed.add(fake) for fake in DEMO]
            config = bed.config(
                services, probe_id=probe_id, interval=interval, jitter=min(1.0, interval / 10)
            )
            async with control_peer(bed, config, Path(workdir)) as peer:
                yield replace(config, control_peers=(peer,))
