"""A reload of a hostile config (the fuzzed inputs that crashed the loader)
answers with the problem, counts as failed, sets the success gauge to 0 and
keeps the running config; the daemon goes on measuring."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import yaml

from probe.config.load import load_config
from probe.runner.daemon import Daemon
from probe.testbed.config_document import config_document
from probe.testbed.scenarios import FakeService, LoopbackCensor
from tests.runner.test_daemon import running, wait_cycles
from tests.test_config_fuzz import HOSTILE


def test_hostile_reloads_fail_cleanly_and_are_counted(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[tuple[int, str, float | None]], float | None, list[str]]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            service = await bed.add(FakeService("one"))
            path = tmp_path / "probe.yaml"
            document = config_document(bed.config([service], interval=0.2))
            document.pop("interval")  # each hostile value below is the interval
            good = yaml.safe_dump(document)
            path.write_text(f"{good}interval: 0.2s\n")
            daemon = Daemon(lambda: load_config(path), listen="127.0.0.1:0")
            seen = []
            async with running(daemon) as url, aiohttp.ClientSession() as http:
                await wait_cycles(daemon, 1)
                for value in [*HOSTILE, "[" * 600]:
                    path.write_text(f"{good}interval: {value}\n")
                    async with http.post(f"{url}/-/reload") as r:
                        text = (await r.text()).strip()
                        gauge = daemon.registry.get_sample_value("msgprobe_config_last_reload_successful", {})
                        seen.append((r.status, text, gauge))
                cycles = daemon.tracker.snapshot.cycles
                await wait_cycles(daemon, cycles + 1)  # still measuring, on the old config
                failures = daemon.registry.get_sample_value(
                    "msgprobe_config_reloads_total", {"result": "failure"}
                )
                endpoints = [e.endpoint for e in daemon.tracker.snapshot.endpoints]
            return seen, failures, endpoints

    seen, failures, endpoints = asyncio.run(scenario())
    for status, text, gauge in seen:
        assert status == 500 and gauge == 0.0, (status, text)
        assert "\n" not in text and "Traceback" not in text and len(text) < 300, text
    assert failures == len(seen)
    assert endpoints == ["one.msgprobe.test"]
