"""The evidence log as a volunteer and a watchdog reach it: `msgprobe evidence`,
`/evidence`, the evidence health on /metrics, /status and the status page."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from probe.cli import main
from probe.export.evidence import EvidenceLog
from probe.runner.daemon import Daemon
from probe.testbed.resolver import NxDomain
from probe.testbed.scenarios import FakeService, LoopbackCensor
from tests.runner.test_daemon import running, wait_cycles


def _write(path: Path) -> None:
    log = EvidenceLog(path, 10_000_000)
    log.write(
        [
            {"time": 1_700_000_000.0, "service": "chat", "endpoint": "a", "status": "blocked", "method": "x"},
            {"time": 1_700_000_100.0, "service": "mail", "endpoint": "b", "status": "unreachable"},
            {"time": 1_800_000_000.0, "service": "chat", "endpoint": "c", "status": "ok"},
        ]
    )
    with open(path, "ab") as f:
        f.write(b'{"time": 1, "service": "chat", "endp')  # a torn last record


def test_msgprobe_evidence_filters_and_skips_torn_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "evidence.jsonl"
    _write(path)
    assert main(["evidence", "--file", str(path), "--service", "chat", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["endpoint"] for line in out.splitlines()] == ["a", "c"]
    assert "1 torn or unreadable lines skipped" in err
    assert main(["evidence", "--file", str(path), "--since", "2023-11-14T22:14:00Z"]) == 0
    out, _ = capsys.readouterr()
    assert [line.split()[2] for line in out.splitlines()] == ["b", "c"]
    assert main(["evidence", "--file", str(path), "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err


def test_the_daemon_serves_its_evidence_and_its_health(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, object], dict[str, object], str, float | None]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            service = await bed.add(FakeService("gone", dns=NxDomain()))
            config = bed.config([service], interval=0.2)
            daemon = Daemon(lambda: config, listen="127.0.0.1:0", evidence_path=tmp_path / "ev.jsonl")
            async with running(daemon) as url, aiohttp.ClientSession() as http:
                await wait_cycles(daemon, 2)
                async with http.get(f"{url}/evidence?service=gone") as r:
                    records = await r.json()
                async with http.get(f"{url}/status") as r:
                    status = await r.json()
                async with http.get(f"{url}/") as r:
                    page = await r.text()
                written = daemon.registry.get_sample_value("msgprobe_evidence_records_total", {})
            return records, status, page, written

    records, status, page, written = asyncio.run(scenario())
    assert records["total"] and all(r["service"] == "gone" for r in records["records"])  # type: ignore[union-attr]
    evidence = status["evidence"]
    assert isinstance(evidence, dict) and evidence["href"] == "/evidence" and evidence["write_errors"] == 0
    assert 'href="evidence"' in page
    assert written is not None and written >= 1
