"""victoria-metrics on loopback for the fleet test: started in a temporary
directory on a port the kernel picked, asked over its HTTP API, measured
from /proc, and killed when done whatever happened."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import statistics
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fleet.wire import CONTENT_HEADERS, snappy_block

SLOW_MS = 2000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Store:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def get(self, path: str, **params: str) -> tuple[int, bytes]:
        conn = self._conn()
        try:
            conn.request("GET", path + ("?" + urllib.parse.urlencode(params) if params else ""))
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def api(self, path: str, **params: str) -> Any:
        status, body = self.get(f"/api/v1/{path}", **params)
        if status != 200:
            raise RuntimeError(f"{path} {params}: HTTP {status}: {body[:300]!r}")
        return json.loads(body)["data"]

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident memory of the store's process, from /proc."""
        fields = {}
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def metric(self, name: str) -> float:
        """The sum of one of the store's own /metrics over its label sets."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def flush(self) -> None:
        """Make everything received searchable now (it is otherwise, within a second or so)."""
        self.get("/internal/force_flush")

    def time_query(self, expr: str, at: float, repeat: int = 3) -> tuple[float, int]:
        """Median wall time of an instant query (ms), and how many series it returned."""
        times, n = [], 0
        for _ in range(repeat):
            start = time.perf_counter()
            data = self.api("query", query=expr, time=f"{at:.3f}")
            times.append((time.perf_counter() - start) * 1000)
            n = len(data["result"])
            if sum(times) > SLOW_MS:  # one run of a slow query says enough, and bounds the test
                break
        return statistics.median(times), n

    def time_range(
        self, expr: str, start: float, end: float, step: str, repeat: int = 3
    ) -> tuple[float, int]:
        times, n = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)
            times.append((time.perf_counter() - t0) * 1000)
            n = len(data["result"])
            if sum(times) > SLOW_MS:
                break
        return statistics.median(times), n


class Writer:
    """A keep-alive remote write client (one per sending thread)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def send(self, request: bytes) -> None:
        body = snappy_block(request)
        self.conn.request("POST", "/api/v1/write", body=body, headers=CONTENT_HEADERS)
        response = self.conn.getresponse()
        answer = response.read()
        if response.status not in (200, 204):
            raise RuntimeError(f"remote write: HTTP {response.status}: {answer[:300]!r}")

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def running(binary: str, workdir: Path, retention: str = "100y") -> Iterator[Store]:
    port = free_port()
    log = workdir / "victoria-metrics.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={workdir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{port}",
                # Backfilled samples are hours old: keep them all, and answer from
                # raw data every time (no response cache), so the timings are evaluations.
                f"-retentionPeriod={retention}",
                "-search.disableCache",
                "-search.latencyOffset=1s",
                # A query over a thousand vantages' series is the point here.
                "-search.maxUniqueTimeseries=100000000",
                "-search.maxSamplesPerQuery=10000000000",
                "-search.maxQueryDuration=600s",
                "-loggerLevel=WARN",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    store = Store(popen, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if popen.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if store.get("/health")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("victoria-metrics not healthy after 30 s")
            time.sleep(0.2)
        yield store
    finally:
        popen.terminate()
        try:
            popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
