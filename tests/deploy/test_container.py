"""The image and the volunteer stack, built and run for real by the CI step
scripts/container/run (what it checks: scripts/container/__init__.py and
deploy/README.md, "What is tested where").

Needs root, Debian's docker.io (dockerd and its 20.10 client), debootstrap,
victoria-metrics and IP forwarding off; without them it skips with the
reason, and fails in CI (MSGPROBE_REQUIRE_TOOLS=1). A cold run (no cache in
~/.cache/msgprobe/container) takes ~2-4 minutes, a warm one about two.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_TOOLS, require_root, require_tool
from tests.deploy.deploy_files import REPO

RUN = REPO / "scripts" / "container" / "run"
# The script bounds itself at 600 s (timeout(1) inside `run`); this is the
# backstop should even its teardown hang.
BACKSTOP_S = 720


def _require_engine() -> None:
    require_root("dockerd, debootstrap and nsenter run as root")
    for tool in ("dockerd", "debootstrap", "victoria-metrics", "nsenter"):
        require_tool(tool)
    if not Path("/usr/bin/docker").is_file():
        require_tool("/usr/bin/docker")  # Debian's docker.io client, not another one on PATH
    if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "0":
        message = "net.ipv4.ip_forward is on: the container step refuses to run a bridge-less engine here"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.slow
def test_the_image_and_the_volunteer_stack_run_for_real() -> None:
    _require_engine()
    result = subprocess.run(
        [str(RUN)], cwd=REPO, capture_output=True, text=True, timeout=BACKSTOP_S, check=False
    )
    lines = result.stdout.strip().splitlines()
    assert lines, f"no result from {RUN}: {result.stderr[-3000:]}"
    report = json.loads(lines[-1])
    assert result.returncode == 0 and report["ok"], report.get("error", "") + result.stderr[-3000:]
    run = report["run"]
    assert run["uid"].split() == ["65532"] * 4
    assert int(run["cap_eff"], 16) == 0
    assert run["evidence_records"] >= 1
    assert run["root_write_errno"] == 30  # EROFS, even for uid 0
    assert run["stop_s"] < 2
    assert report["image_mb"] <= 90, f"the image is {report['image_mb']} MB, over its 90 MB budget"
    assert {"volunteer", "watchdog"} <= set(report["compose_config"])
    stack = report["stack"]
    assert stack["labels"] == {"vantage": "ru-example-1", "country": "RU", "asn": "12389"}  # .env.example
    assert stack["series"] > 0
