"""The daemon against the loopback censor: metrics per scenario, reload, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import yaml

from probe.config.load import load_config
from probe.config.model import Config
from probe.runner.daemon import Daemon
from probe.testbed.config_document import config_document
from probe.testbed.control_peer import control_peer
from probe.testbed.middlebox import Stall
from probe.testbed.scenarios import DEMO, FakeService, LoopbackCensor
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


async def _demo_metrics(config: Config) -> dict[str, float | None]:
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
    values = {name: get("msgprobe_service_blocked", {"service": name}) for name in [f.name for f in DEMO]}
    values["ready_before"] = float(early)
    values["ready_after"] = float(late)
    for service, method in (
        ("tls-reset", "tls.reset"),
        ("tcp-refused", "tcp.refused"),
        ("http-diff", "http.diff"),
    ):
        endpoint = f"{service}.msgprobe.test"
        labels = {"service": service, "endpoint": endpoint, "method": method}
        values[f"{service}_method"] = get("msgprobe_endpoint_blocked", labels)
    values["down"] = get("msgprobe_service_status", {"service": "website-down", "status": "down"})
    values["online"] = get("msgprobe_vantage_online", {})
    values["control_up"] = get("msgprobe_control_up", {"peer": config.control_peers[0].name})
    values["metrics_mention_blockpage"] = float("http.blockpage" in text)
    return values


def test_exporter_output_per_demo_scenario() -> None:
    async def scenario() -> dict[str, float | None]:
        with tempfile.TemporaryDirectory() as workdir:
            async with LoopbackCensor(Path(workdir), max_services=len(DEMO)) as bed:
                services = [await bed.add(f) for f in DEMO]
                config = bed.config(services, interval=0.2, jitter=0.0)
                # As msgprobe demo runs: with a control peer outside the censor.
                async with control_peer(bed, config, Path(workdir)) as peer:
                    return await _demo_metrics(replace(config, control_peers=(peer,)))

    v = asyncio.run(scenario())
    assert v["ready_before"] == 503 and v["ready_after"] == 200
    for name in (f.name for f in DEMO if f.name not in ("clean-messenger", "website-down")):
        assert v[name] == 1.0, name
    for name in ("clean-messenger", "website-down"):
        assert v[name] == 0.0, name
    assert v["tls-reset_method"] == v["tcp-refused_method"] == v["http-diff_method"] == 1.0
    assert v["down"] == 1.0 and v["online"] == 1.0 and v["metrics_mention_blockpage"] == 1.0
    assert v["control_up"] == 1.0


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


async def until(condition: Callable[[], bool], what: str, limit: float = 10) -> None:
    """Wait for ``condition`` (polled on the loop), failing after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class GatedLoad:
    """A config loader for reload tests: records entry and exit, and can hold a reload in its thread.

    The first call (the daemon's start) returns at once. Later calls record
    ``("enter", n)``, block until ``release`` is set (at most ``limit`` seconds,
    so a broken test cannot hang) and record ``("exit", n)``.
    """

    def __init__(self, config: Config, *, limit: float = 10.0) -> None:
        self.config = config
        self.limit = limit
        self.calls = 0
        self.events: list[tuple[str, int]] = []
        self.loop_threads: set[int] = set()
        self.release = threading.Event()

    def __call__(self) -> Config:
        self.calls += 1
        n = self.calls - 1
        if n == 0:
            return self.config
        self.loop_threads.add(threading.get_ident())
        self.events.append(("enter", n))
        self.release.wait(self.limit)
        self.events.append(("exit", n))
        return self.config

    def entered(self, n: int) -> bool:
        return ("enter", n) in self.events


def reloads(daemon: Daemon, result: str = "success") -> float | None:
    return daemon.registry.get_sample_value("msgprobe_config_reloads_total", {"result": result})


def test_sighup_and_post_reloads_are_serialised(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[tuple[str, int]], int, str, float | None, bool]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            config = bed.config([await bed.add(FakeService("one"))], interval=3600)
            load = GatedLoad(config)
            daemon = Daemon(load, listen="127.0.0.1:0")
            started: list[str] = []
            original = daemon.reload

            async def counted() -> tuple[bool, str]:
                started.append("reload")
                return await original()

            daemon.reload = counted  # type: ignore[method-assign]  # both SIGHUP and POST call it
            async with running(daemon) as url, aiohttp.ClientSession() as http:
                os.kill(os.getpid(), signal.SIGHUP)
                await until(lambda: load.entered(1), "the SIGHUP reload to start loading")

                async def post() -> tuple[int, str]:
                    async with http.post(f"{url}/-/reload") as r:
                        return r.status, (await r.text()).strip()

                posted = asyncio.create_task(post())
                await until(lambda: len(started) == 2, "the POST reload to start")

                def second_load_entered() -> bool:
                    # Without the lock the second load would now run beside the held first
                    # one; give it time to show. (A correct daemon passes whatever the timing.)
                    time.sleep(0.3)
                    return load.entered(2)

                overlapped = await asyncio.to_thread(second_load_entered)
                load.release.set()
                status, text = await asyncio.wait_for(posted, 10)
                await until(lambda: reloads(daemon) == 2.0, "both reloads to be counted")
            return load.events, status, text, reloads(daemon), overlapped

    events, status, text, count, overlapped = asyncio.run(scenario())
    assert not overlapped
    assert events == [("enter", 1), ("exit", 1), ("enter", 2), ("exit", 2)]
    assert (status, text) == (200, "reloaded") and count == 2.0


def test_the_loop_keeps_serving_during_a_slow_reload(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, bool, int, str, bool]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            config = bed.config([await bed.add(FakeService("one"))], interval=3600)
            load = GatedLoad(config)
            daemon = Daemon(load, listen="127.0.0.1:0")
            async with running(daemon) as url, aiohttp.ClientSession() as http:

                async def post() -> tuple[int, str]:
                    async with http.post(f"{url}/-/reload") as r:
                        return r.status, (await r.text()).strip()

                posted = asyncio.create_task(post())
                await until(lambda: load.entered(1), "the reload to start loading")
                # The load now blocks its thread until released. Had it run on the
                # loop, nothing below could run until it returned (after 10 s).
                ticks = 0
                for _ in range(100):
                    await asyncio.sleep(0)
                    ticks += 1
                async with http.get(f"{url}/-/healthy") as r:
                    healthy = r.status
                still_loading = not posted.done() and not load.entered(2) and ("exit", 1) not in load.events
                load.release.set()
                status, text = await asyncio.wait_for(posted, 10)
                off_loop = threading.get_ident() not in load.loop_threads
            return ticks, healthy, still_loading, status, text, off_loop

    ticks, healthy, still_loading, status, text, off_loop = asyncio.run(scenario())
    assert ticks == 100 and healthy == 200 and still_loading
    assert (status, text) == (200, "reloaded") and off_loop


REFUSED = "config reload refused; keeping the running config"


def test_a_crashing_sighup_reload_is_logged_and_the_daemon_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug in loading is a failed reload like a bad file (counted, the old config
    # kept), logged with its traceback.
    async def scenario() -> tuple[int, str, float | None]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            config = bed.config([await bed.add(FakeService("one"))], interval=3600)
            calls: list[int] = []

            def load() -> Config:
                calls.append(1)
                if len(calls) == 2:
                    raise RuntimeError("a bug, not a config error")
                return config

            daemon = Daemon(load, listen="127.0.0.1:0")
            async with running(daemon) as url, aiohttp.ClientSession() as http:
                os.kill(os.getpid(), signal.SIGHUP)
                await until(
                    lambda: any(r.getMessage() == REFUSED for r in caplog.records),
                    "the failed reload to be logged",
                )
                async with http.post(f"{url}/-/reload") as r:  # the lock was released
                    status, text = r.status, (await r.text()).strip()
            return status, text, reloads(daemon)

    with caplog.at_level(logging.ERROR):
        status, text, count = asyncio.run(scenario())
    failed = [r for r in caplog.records if r.getMessage() == REFUSED]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert isinstance(failed[0].exc_info[1], RuntimeError)
    assert not any("never retrieved" in r.getMessage() for r in caplog.records)
    assert (status, text, count) == (200, "reloaded", 1.0)
