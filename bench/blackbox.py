"""msgprobe vs prometheus-blackbox-exporter on the same HTTPS endpoints.

Both probe the same N clean HTTPS services of the loopback censor at the
same concurrency; CPU is read from each process's own accounting (the
censor runs in a third process). blackbox_exporter gets IP-literal targets
with ``server_name`` set (it cannot use the censor's resolver), so it does
no DNS; msgprobe resolves each name (A and AAAA) first, so the comparison
is, if anything, unfavourable to msgprobe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import yaml

from bench.censor import censor

BLACKBOX = "prometheus-blackbox-exporter"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _blackbox(ca_bundle: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    binary = shutil.which(BLACKBOX)
    if binary is None:
        raise FileNotFoundError(f"{BLACKBOX} not installed (Debian package prometheus-blackbox-exporter)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        config = Path(workdir) / "blackbox.yml"
        module = {
            "prober": "http",
            "timeout": "5s",
            "http": {
                "preferred_ip_protocol": "ip4",
                "tls_config": {"ca_file": ca_bundle, "server_name": "bench.msgprobe.test"},
            },
        }
        config.write_text(yaml.safe_dump({"modules": {"https": module}}))
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
                time.sleep(0.05)
            yield proc, port
        finally:
            proc.terminate()
            proc.wait(10)


async def _probe_all(port: int, targets: list[str], concurrency: int) -> int:
    slot = asyncio.Semaphore(concurrency)
    ok = 0
    async with aiohttp.ClientSession() as http:

        async def one(target: str) -> None:
            nonlocal ok
            async with (
                slot,
                http.get(f"http://127.0.0.1:{port}/probe", params={"target": target, "module": "https"}) as r,
            ):
                ok += "probe_success 1" in await r.text()

        await asyncio.gather(*(one(t) for t in targets))
    return ok


def compare(count: int = 200, concurrency: int = 64) -> dict[str, float]:
    with censor(
        "--scenario", "clean", "--count", str(count), "--checks", "https", "--concurrency", str(concurrency)
    ) as config_path:
        config = yaml.safe_load(config_path.read_text())
        ca = config["tls"]["ca_bundle"]
        port = urlsplit(config["services"][0]["endpoints"][0]["checks"][0].split(":", 1)[1]).port
        first = ipaddress.ip_address("127.0.0.10")
        targets = [f"https://{first + i}:{port}/" for i in range(count)]
        run = subprocess.run(
            [sys.executable, "-m", "bench.cycle", str(config_path), "--cycles", "3"],
            capture_output=True,
            text=True,
            check=True,
        )
        lines = [yaml.safe_load(line) for line in run.stdout.splitlines()]
        msgprobe_cpu = min(line["cpu_s"] for line in lines[1:]) / count
        with _blackbox(ca) as (proc, bb_port):
            asyncio.run(_probe_all(bb_port, targets[:10], concurrency))  # warm-up
            before = _cpu_seconds(proc.pid)
            ok = asyncio.run(_probe_all(bb_port, targets, concurrency))
            blackbox_cpu = (_cpu_seconds(proc.pid) - before) / count
    return {
        "probes": count,
        "blackbox_ok": ok,
        "msgprobe_cpu_ms_per_probe": msgprobe_cpu * 1000,
        "blackbox_cpu_ms_per_probe": blackbox_cpu * 1000,
        "ratio": msgprobe_cpu / blackbox_cpu if blackbox_cpu else float("nan"),
    }
