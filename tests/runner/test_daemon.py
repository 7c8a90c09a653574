"""The daemon against the loopback censor: metrics per scenario, reload, signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import yaml

from probe.config.load import load_config
from probe.config.model import Config
from probe.runner.daemon import Daemon
from probe.testbed.middlebox import Stall
from probe.testbed.scenarios import DEMO, FakeService, LoopbackCensor, config_document
from tests.conftest import require_tool


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[str]:
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.listening.wait(), 10)
    try:
        yield f"http://{daemon.address}"
    finally:
        daemon.stop.set()
        await asyncio.wait_for(task, 5)


async def wait_cycles(daemon: Daemon, n: int, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while daemon.tracker.snapshot.cycles < n:
        assert time.monotonic() < deadline, "cycles did not complete"
        await asyncio.sleep(0.05)


def test_exporter_output_per_demo_scenario() -> None:
    async def scenario() -> dict[str, float | None]:
        with tempfile.TemporaryDirectory() as workdir:
            async with LoopbackCensor(Path(workdir), max_services=len(DEMO)) as bed:
                services = [await bed.add(f) for f in DEMO]
                config = bed.config(services, interval=0.2, jitter=0.0)
                daemon = Daemon(lambda: config, listen="127.0.0.1:0")
                async with running(daemon) as url, aiohttp.ClientSession() as http:
                    async with http.get(f"{url}/-/ready") as r:
                        early = r.status
                    await wait_cycles(daemon, 2)
                    async with http.get(f"{url}/-/ready") as r:
                        late = r.status
                    async with http.get(f"{url}/metrics") as r:
                        text = await r.text()
                get = daemon.registry.get_sample_value
                values = {
                    name: get("msgprobe_service_blocked", {"service": name})
                    for name in [f.name for f in DEMO]
                }
                values["ready_before"] = float(early)
                values["ready_after"] = float(late)
                values["tls_reset_method"] = get(
                    "msgprobe_endpoint_blocked",
                    {"service": "tls-reset", "endpoint": "tls-reset.msgprobe.test", "method": "tls.reset"},
                )
                values["tcp_refused_unreachable"] = get(
                    "msgprobe_endpoint_status",
                    {
                        "service": "tcp-refused",
                        "endpoint": "tcp-refused.msgprobe.test",
                        "status": "unreachable",
                    },
                )
                values["down"] = get("msgprobe_service_status", {"service": "website-down", "status": "down"})
                values["online"] = get("msgprobe_vantage_online", {})
                values["metrics_mention_blockpage"] = float("http.blockpage" in text)
                return values

    v = asyncio.run(scenario())
    assert v["ready_before"] == 503 and v["ready_after"] == 200
    blocked = {f.name for f in DEMO if f.name.split("-")[0] in ("dns", "tls", "http")}
    for name in blocked:
        assert v[name] == 1.0, name
    for name in ("clean-messenger", "tcp-refused", "tcp-timeout", "website-down"):
        assert v[name] == 0.0, name
    assert v["tls_reset_method"] == 1.0 and v["tcp_refused_unreachable"] == 1.0
    assert v["down"] == 1.0 and v["online"] == 1.0 and v["metrics_mention_blockpage"] == 1.0


def test_live_metrics_pass_promtool_check() -> None:
    promtool = require_tool("promtool")

    async def scenario() -> str:
        with tempfile.TemporaryDirectory() as workdir:
            async with LoopbackCensor(Path(workdir), max_services=len(DEMO)) as bed:
                config = bed.config([await bed.add(f) for f in DEMO], interval=0.2)
                daemon = Daemon(lambda: config, listen="127.0.0.1:0")
                async with running(daemon) as url, aiohttp.ClientSession() as http:
                    await wait_cycles(daemon, 1)
                    async with http.get(f"{url}/metrics") as r:
                        return await r.text()

    text = asyncio.run(scenario())
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == ""


def test_reload_good_and_bad(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        async with LoopbackCensor(tmp_path, max_services=2) as bed:
            services = [await bed.add(FakeService("one")), await bed.add(FakeService("two"))]
            path = tmp_path / "probe.yaml"
            document = config_document(bed.config(services[:1], interval=0.2))
            path.write_text(yaml.safe_dump(document))
            daemon = Daemon(lambda: load_config(path), listen="127.0.0.1:0")
            seen: list[object] = []
            async with running(daemon) as url, aiohttp.ClientSession() as http:
                await wait_cycles(daemon, 1)
                path.write_text("intervall: 5m\n")  # bad: refused, the old config keeps running
                async with http.post(f"{url}/-/reload") as r:
                    seen += [r.status, (await r.text()).strip()]
                cycles = daemon.tracker.snapshot.cycles
                await wait_cycles(daemon, cycles + 1)
                seen.append(daemon.registry.get_sample_value("msgprobe_config_last_reload_successful", {}))
                seen.append([e.endpoint for e in daemon.tracker.snapshot.endpoints])
                document["services"] = config_document(bed.config(services))["services"]
                path.write_text(yaml.safe_dump(document))
                async with http.post(f"{url}/-/reload") as r:
                    seen.append(r.status)
                seen.append(daemon.registry.get_sample_value("msgprobe_config_last_reload_successful", {}))
                seen.append(sorted(e.endpoint for e in daemon.tracker.snapshot.endpoints))
                seen.append(
                    daemon.registry.get_sample_value("msgprobe_config_reloads_total", {"result": "failure"})
                )
            return seen

    seen = asyncio.run(scenario())
    assert seen[0] == 500 and "intervall: unknown key" in str(seen[1])
    assert seen[2] == 0.0 and seen[3] == ["one.msgprobe.test"]
    assert seen[4] == 200 and seen[5] == 1.0
    assert seen[6] == ["one.msgprobe.test", "two.msgprobe.test"] and seen[7] == 1.0


async def spawn_daemon(path: Path, config: Config) -> asyncio.subprocess.Process:
    """``msgprobe run`` in its own process on ``config`` (written to ``path``), stderr piped."""
    await asyncio.to_thread(path.write_text, yaml.safe_dump(config_document(config)))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "probe",
        "run",
        "--config.file",
        str(path),
        "--web.listen-address",
        "127.0.0.1:0",
        stderr=asyncio.subprocess.PIPE,
    )


def test_sigterm_mid_cycle_stops_within_two_seconds(tmp_path: Path) -> None:
    async def scenario() -> tuple[float, int, str]:
        # Every endpoint stalls its TLS handshake for the whole (long) timeout: a cycle is always running.
        async with LoopbackCensor(tmp_path, max_services=5) as bed:
            services = [await bed.add(FakeService(f"stall-{i}", tls=Stall())) for i in range(5)]
            config = bed.config(services, interval=0.2)
            config = replace(config, timeouts=replace(config.timeouts, tls=30.0, cycle=120.0))
            path = tmp_path / "probe.yaml"
            proc = await spawn_daemon(path, config)
            assert proc.stderr is not None
            while b"listening" not in await proc.stderr.readline():
                pass
            await asyncio.sleep(1.0)  # well inside the first cycle's stalled handshakes
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 10)
            rest = (await proc.stderr.read()).decode()
            return time.monotonic() - sent, code, rest

    elapsed, code, log = asyncio.run(scenario())
    assert code == 0, log
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    assert "stopped" in log and "Traceback" not in log


def test_bad_config_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("catalog: none\nconfirm: 0\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "probe",
            "run",
            "--config.file",
            str(bad),
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[0] == f"msgprobe: {bad}:2: confirm: must be at least 1, got 0"


def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(tmp_path: Path) -> None:
    async def scenario() -> tuple[str, int]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            config = bed.config([await bed.add(FakeService("one"))], interval=0.5)
            path = tmp_path / "probe.yaml"
            proc = await spawn_daemon(path, config)
            assert proc.stderr is not None
            log: list[str] = []

            async def until(text: str) -> None:
                while text not in (line := (await proc.stderr.readline()).decode()):  # type: ignore[union-attr]
                    assert line, f"daemon exited before {text!r}: {''.join(log)}"
                    log.append(line)
                log.append(line)

            await asyncio.wait_for(until("cycle done"), 20)
            path.write_text("catalog: none\nconfirm: 0\n")
            proc.send_signal(signal.SIGHUP)
            await asyncio.wait_for(until("config reload refused"), 10)
            await asyncio.wait_for(until("cycle done"), 20)  # the old config keeps measuring
            path.write_text(yaml.safe_dump(config_document(config)))
            proc.send_signal(signal.SIGHUP)
            await asyncio.wait_for(until("config reloaded"), 10)
            proc.send_signal(signal.SIGTERM)
            return "".join(log), await asyncio.wait_for(proc.wait(), 10)

    log, code = asyncio.run(scenario())
    assert code == 0
    assert "confirm: must be at least 1, got 0" in log
