"""``msgprobe demo``'s network: the loopback censor with every ``DEMO`` scenario,
and a control peer outside it, so blocks that need a control are proven too.

The domestic canaries (``probe.testbed.whitelist``) are measured in both
regimes: ``online`` (the default) shows them answering next to the DEMO
verdicts; ``whitelist`` puts the very same services behind a white-list
censor that lets only the canaries through, and every one reads
``blocked whitelist``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from probe.config.model import Config
from probe.testbed.control_peer import control_peer
from probe.testbed.scenarios import DEMO, LoopbackCensor
from probe.testbed.whitelist import CANARIES, whitelist_network, with_canaries

REGIMES = ("online", "whitelist")


@contextlib.asynccontextmanager
async def demo_testbed(
    *, probe_id: str = "demo", interval: float = 10.0, regime: str = "online"
) -> AsyncIterator[Config]:
    if regime not in REGIMES:
        raise ValueError(f"unknown demo regime {regime!r}: one of {', '.join(REGIMES)}")
    jitter = min(1.0, interval / 10)
    with tempfile.TemporaryDirectory(prefix="msgprobe-demo-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=len(DEMO) + len(CANARIES)) as bed:
            if regime == "whitelist":
                async with whitelist_network(bed, DEMO, Path(workdir)) as config:
                    yield replace(config, probe_id=probe_id, interval=interval, jitter=jitter)
                return
            services = [await bed.add(fake) for fake in DEMO]
            canaries = [await bed.add_canary(name) for name in CANARIES]
            config = bed.config(services, probe_id=probe_id, interval=interval, jitter=jitter)
            config = with_canaries(config, bed, canaries)
            async with control_peer(bed, config, Path(workdir)) as peer:
                yield replace(config, control_peers=(peer,))
