"""The daemon keeps one byte budget and one pairs log across cycles and
reloads, exports the budget, and exports each endpoint's best goodput."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path

from probe.config.model import Throttle as ThrottleConfig
from probe.runner.daemon import Daemon
from probe.testbed.middlebox import Throttle
from probe.testbed.scenarios import FakeService, LoopbackCensor
from tests.runner.test_daemon import running, wait_cycles

LIMIT = 2_000_000


async def _run(workdir: Path) -> dict[str, object]:
    async with LoopbackCensor(workdir, max_services=2) as bed:
        checks = ("dns", "tls", "https:/huge", "throttle")
        services = [
            await bed.add(FakeService("throttled", tls=Throttle(32_000, 16_384), checks=checks)),
            await bed.add(FakeService("fast", checks=("dns", "tls", "https:/huge"))),
        ]
        configs = [replace(bed.config(services), interval=0.2, throttle=ThrottleConfig(daily_bytes=LIMIT))]
        daemon = Daemon(lambda: configs[-1], listen="127.0.0.1:0")
        budget, log = daemon.budget, daemon.pairs_log
        async with running(daemon):
            await wait_cycles(daemon, 1, limit=60)
            after_first = budget.used
            configs.append(replace(configs[-1], throttle=ThrottleConfig(daily_bytes=LIMIT + 1)))
            ok, _ = await daemon.reload()
            await wait_cycles(daemon, 3, limit=60)
        get = daemon.registry.get_sample_value
        return {
            "reloaded": ok,
            "same": daemon.budget is budget and daemon.pairs_log is log,
            "after_first": after_first,
            "used": budget.used,
            "limit": budget.limit,
            "used_metric": get("msgprobe_throttle_budget_used_bytes", {}),
            "limit_metric": get("msgprobe_throttle_budget_bytes", {}),
            "fast_goodput": get(
                "msgprobe_endpoint_goodput_bytes_per_second",
                {"service": "fast", "endpoint": "fast.msgprobe.test"},
            ),
            "remembered": len(log.last),
        }


def test_one_budget_across_cycles_and_reloads_and_its_metrics() -> None:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        got = asyncio.run(_run(Path(workdir)))
    assert got["reloaded"] and got["same"], got
    first = got["after_first"]
    assert isinstance(first, int) and first > 0, got  # the first cycle's pairs were charged
    # Later cycles reuse the remembered pairs (RERUN): nothing more is spent on them.
    assert got["used"] == first and got["remembered"] == 1, got
    assert got["limit"] == LIMIT + 1 and got["limit_metric"] == LIMIT + 1, got
    assert got["used_metric"] == float(first), got
    fast = got["fast_goodput"]
    assert isinstance(fast, float) and fast > 100_000, got  # a clean HTTPS download's goodput
