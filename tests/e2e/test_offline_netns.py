"""A vantage with no network at all: the probe runs inside a fresh network
namespace whose only interface (lo) is down. Every packet it tries to send
fails at once inside that namespace; nothing can leave it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.conftest import require_root, require_tool

CONFIG = """
catalog: none
resolvers: [127.0.0.53]
control_resolvers: ["https://127.0.0.54/dns-query"]
timeouts: {dns: 1s, connect: 1s, tls: 1s, http: 1s}
confirm: 1
services:
  - name: chat
    endpoints:
      - {host: chat.msgprobe.test, checks: [dns, "tcp:443", "tls:443"]}
  - name: dc
    endpoints:
      - {host: 127.0.0.9, checks: ["tcp:443", "http_post:http://127.0.0.9/api"]}
"""


def test_probe_in_an_empty_namespace_reports_unknown_never_blocked(tmp_path: Path) -> None:
    require_root("creates a network namespace")
    ip = require_tool("ip")
    name = f"msgprobe-offline-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "offline.yaml"
    config.write_text(CONFIG)
    subprocess.run([ip, "netns", "add", name], check=True)
    try:
        run = subprocess.run(
            [
                ip,
                "netns",
                "exec",
                name,
                sys.executable,
                "-m",
                "probe",
                "once",
                "--config",
                str(config),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
    finally:
        subprocess.run([ip, "netns", "delete", name], check=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["schema"] == 2 and report["vantage_online"] is False
    assert {r["status"] for r in report["results"]} == {"unknown"}
    assert all(r["method"] is None for r in report["results"])
    assert name not in subprocess.run([ip, "netns", "list"], capture_output=True, text=True).stdout
