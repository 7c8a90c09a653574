"""The evidence log: whole records or none, bounded on disk, and a full disk survived."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe.export.evidence import EvidenceLog, read_records
from tests.conftest import require_root, require_tool


def _record(n: int, service: str = "chat", t: float = 1_700_000_000.0) -> dict[str, object]:
    return {"time": t + n, "service": service, "endpoint": f"e{n}.example", "status": "blocked", "n": n}


def test_a_torn_last_record_is_cut_off_on_start(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    EvidenceLog(path, 10_000_000).write([_record(n) for n in range(3)])
    whole = path.read_bytes()
    # What SIGKILL in the middle of os.write leaves: part of a fourth record, no newline.
    fourth = json.dumps(_record(3)).encode()
    path.write_bytes(whole + fourth[: len(fourth) // 2])
    assert read_records(path).skipped == 1  # a reader before the repair never trusts it either
    EvidenceLog(path, 10_000_000)
    assert path.read_bytes() == whole
    read = read_records(path)
    assert [r["n"] for r in read.records] == [0, 1, 2] and read.skipped == 0


def test_a_file_of_one_torn_record_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(b'{"time": 1, "serv')
    EvidenceLog(path, 1000)
    assert path.read_bytes() == b""


def test_rotation_keeps_generations_and_a_total_cap(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    log = EvidenceLog(path, 2_000, keep=2)
    for n in range(400):
        assert log.write([_record(n)]) == 1
    files = log.generations()
    assert [p.name for p in files] == ["evidence.jsonl.2", "evidence.jsonl.1", "evidence.jsonl"]
    line = len(json.dumps(_record(399), separators=(",", ":"))) + 1
    assert sum(p.stat().st_size for p in files) <= 3 * (2_000 + line)
    assert log.health.bytes == sum(p.stat().st_size for p in files)
    numbers = [r["n"] for r in read_records(log).records]
    assert numbers == sorted(numbers) and numbers[-1] == 399  # oldest first, nothing reordered


def test_generations_older_than_max_age_are_dropped(tmp_path: Path) -> None:
    now = [time.time()]  # file times are the real clock's
    path = tmp_path / "evidence.jsonl"
    log = EvidenceLog(path, 500, keep=3, max_age=86_400.0, clock=lambda: now[0])
    for n in range(40):
        log.write([_record(n)])
    old = log.generations()[:-1]
    assert old
    for p in old:
        os.utime(p, (now[0] - 2 * 86_400, now[0] - 2 * 86_400))
    log.write([_record(99)])
    assert all(now[0] - p.stat().st_mtime <= 86_400 for p in log.generations())


def test_filters_by_service_and_time(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    log = EvidenceLog(path, 10_000_000)
    log.write([_record(0, "chat"), _record(1, "mail"), _record(2, "chat")])
    assert [r["n"] for r in read_records(path, service="chat").records] == [0, 2]
    assert [r["n"] for r in read_records(path, since=1_700_000_001.0).records] == [1, 2]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a disk that really fills up."""
    require_root("mounting a tiny tmpfs to fill a disk")
    mount = require_tool("mount")
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    subprocess.run([mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True, timeout=10)
    try:
        yield where
    finally:
        subprocess.run([shutil.which("umount") or "umount", str(where)], check=True, timeout=10)


def test_a_full_disk_drops_records_counts_them_and_recovers(tiny_disk: Path) -> None:
    path = tiny_disk / "evidence.jsonl"
    log = EvidenceLog(path, 10_000_000, keep=0)
    filler = tiny_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"x" * 4096)
    finally:
        os.close(fd)
    assert log.write([_record(n) for n in range(50)]) < 50
    assert log.health.write_errors >= 1 and log.health.dropped >= 1 and log.health.last_error
    data = path.read_bytes() if path.exists() else b""
    assert data == b"" or data.endswith(b"\n")  # what landed is whole records only
    filler.unlink()
    assert log.write([_record(100)]) == 1
    assert log.health.last_error is None
    assert read_records(path).records[-1]["n"] == 100 and read_records(path).skipped == 0
