"""msgprobe vs prometheus-blackbox-exporter on the same HTTPS endpoints.

Both probe the same N clean HTTPS services of the loopback censor at the
same concurrency; CPU is read from each process's own accounting (the
censor runs in a third process). blackbox_exporter gets IP-literal targets
with ``server_name`` set (it cannot use the censor's resolver), so it does
no DNS; msgprobe resolves each name (A and AAAA) first, so the comparison
is, if anything, unfavourable to msgprobe.

blackbox_exporter's CPU is read from /proc before and after the measured
batch of probes, so its start-up and the warm-up batch are not counted;
msgprobe's is the second of two cycles in a fresh process, for the same
reason. The client that drives blackbox_exporter runs in this process and
is not counted either.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
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


def _msgprobe_cpu(config_path: Path, loop: str) -> float:
    """CPU seconds of one warm cycle (the second of two: imports and first-use costs excluded)."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.cycle", str(config_path), "--cycles", "2", "--loop", loop],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"python -m bench.cycle: {(run.stderr.strip().splitlines() or ['failed'])[-1]}")
    return float(json.loads(run.stdout.splitlines()[-1])["cpu_s"])


def compare(
    count: int = 200, concurrency: int = 64, *, runs: int = 5, loops: Sequence[str] = ("asyncio",)
) -> dict[str, dict[str, float]]:
    """Per loop: the median over ``runs`` of each side's CPU per probe and of their ratio.

    One run is noisy (±20 % on a 2-core machine), so each run measures both
    sides back to back, on the same censor and the same warm blackbox_exporter,
    and the ratio is taken per run before the median.
    """
    with censor(
        "--scenario", "clean", "--count", str(count), "--checks", "https", "--concurrency", str(concurrency)
    ) as config_path:
        config = yaml.safe_load(config_path.read_text())
        ca = config["tls"]["ca_bundle"]
        port = urlsplit(config["services"][0]["endpoints"][0]["checks"][0].split(":", 1)[1]).port
        first = ipaddress.ip_address("127.0.0.10")
        targets = [f"https://{first + i}:{port}/" for i in range(count)]
        samples: dict[str, list[tuple[float, float]]] = {loop: [] for loop in loops}
        ok = []
        with _blackbox(ca) as (proc, bb_port):
            asyncio.run(_probe_all(bb_port, targets[:10], concurrency))  # warm-up
            for _ in range(runs):
                msgprobe = {loop: _msgprobe_cpu(config_path, loop) / count for loop in loops}
                before = _cpu_seconds(proc.pid)
                ok.append(asyncio.run(_probe_all(bb_port, targets, concurrency)))
                blackbox = (_cpu_seconds(proc.pid) - before) / count
                for loop in loops:
                    samples[loop].append((msgprobe[loop], blackbox))
    out = {}
    for loop, pairs in samples.items():
        out[loop] = {
            "probes": count,
            "runs": runs,
            "blackbox_ok": min(ok),
            "msgprobe_cpu_ms_per_probe": 1000 * statistics.median(m for m, _ in pairs),
            "blackbox_cpu_ms_per_probe": 1000 * statistics.median(b for _, b in pairs),
            "ratio": statistics.median(m / b if b else float("nan") for m, b in pairs),
            "ratio_min": min(m / b if b else float("nan") for m, b in pairs),
            "ratio_max": max(m / b if b else float("nan") for m, b in pairs),
        }
    return out
