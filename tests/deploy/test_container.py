"""The image and the volunteer stack, built and run for real by the CI step
scripts/container/run (what it checks: scripts/container/__init__.py and
deploy/README.md, "What is tested where").

Needs root, Debian's docker.io (dockerd and its 20.10 client), debootstrap,
victoria-metrics and IP forwarding off; without them it skips with the
reason, and fails in CI (MSGPROBE_REQUIRE_TOOLS=1). Both images are built
(the default and the raw variant) and both run as daemons. A cold run (no
cache in ~/.cache/msgprobe/container) takes ~3.5 minutes, a warm one ~2.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from scripts.container import image, raw_image
from scripts.container.docs import readme_sections
from tests.conftest import REQUIRE_TOOLS, require_root, require_tool
from tests.deploy.deploy_files import REPO

RUN = REPO / "scripts" / "container" / "run"
# The script bounds itself at 600 s (timeout(1) inside `run`); this is the
# backstop should even its teardown hang.
BACKSTOP_S = 720
NET_RAW = 1 << 13


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
    assert run["volume_mode"] == "0o755"
    assert run["stop_s"] < 2
    assert report["image_mb"] <= 90, f"the image is {report['image_mb']} MB, over its 90 MB budget"
    # The raw variant, as uid 0 (group 65532) holding NET_RAW alone: libpcap
    # is there and compiles filters; without the capability the checks say so.
    raw = report["raw"]
    assert raw["with_net_raw"] == "None" and int(raw["cap_eff_with_net_raw"], 16) == NET_RAW
    assert raw["lo_filter_instructions"] > 0
    assert raw["without_net_raw"] == "needs NET_RAW"
    # Its daemon, raw checks on: writes evidence through the group-writable
    # volume, captures the refused connection's reset on lo, and shows no
    # address but loopback (and the wildcard it listens on).
    daemon = raw["daemon"]
    assert daemon["uid"].split() == ["0"] * 4 and daemon["gid"].split() == ["65532"] * 4
    assert int(daemon["cap_eff"], 16) == NET_RAW
    assert daemon["volume_mode"] == "0o775" and daemon["evidence_owner"] == "0:65532"
    assert daemon["evidence_records"] >= 1
    assert daemon["raw_rows"] and not [r for r in daemon["raw_rows"] if r["failure"]]
    assert any(r["check"] == "raw:reset:9" and r["resets"] >= 1 for r in daemon["raw_rows"])
    assert "127.0.0.1" in daemon["addresses"]
    assert all(ipaddress.ip_address(a).is_loopback or a in ("0.0.0.0", "::") for a in daemon["addresses"])
    assert daemon["stop_s"] < 2
    assert report["raw_image_mb"] <= 120, f"the raw image is {report['raw_image_mb']} MB, over 120 MB"
    assert {"volunteer", "watchdog"} <= set(report["compose_config"])
    stack = report["stack"]
    assert stack["labels"] == {"vantage": "ru-example-1", "country": "RU", "asn": "12389"}  # .env.example
    assert stack["series"] > 0


def _flag_pairs(argv: list[str]) -> set[tuple[str, ...]]:
    """A docker command's options, each with its value when it takes one."""
    out: set[tuple[str, ...]] = set()
    i = 0
    while i < len(argv):
        if argv[i] in ("--read-only", "--rm", "-d"):
            out.add((argv[i],))
            i += 1
        elif argv[i].startswith("-"):
            out.add((argv[i], argv[i + 1]))
            i += 2
        else:
            i += 1
    return out


def test_the_readme_runs_the_raw_variant_as_the_ci_step_does() -> None:
    """deploy/README.md's raw commands carry the flags the container step
    proves (uid 0 in group 65532, NET_RAW alone, read-only root), and its
    check is the step's, verbatim."""
    body = readme_sections()["Raw-packet checks (optional)"]
    runs = [
        shlex.split(line)
        for block in re.findall(r"```sh\n(.*?)```", body, flags=re.DOTALL)
        for line in block.splitlines()
        if line.startswith("docker run")
    ]
    assert len(runs) == 2, runs  # the daemon and the check
    ci = raw_image.AS_RAW_USER + image.LOCKED_DOWN
    wanted = _flag_pairs(list(ci)) - {("--network", "none"), ("--tmpfs", "/tmp")}
    daemon, check = runs
    assert wanted <= _flag_pairs(daemon), wanted - _flag_pairs(daemon)
    assert ("--tmpfs", "/tmp") in _flag_pairs(daemon) and daemon[-1] == "msgprobe:raw"
    assert {("--user", "0:65532"), ("--cap-drop", "ALL"), ("--cap-add", "NET_RAW")} <= _flag_pairs(check)
    assert check[-1] == raw_image.RAW_PROBLEM and check[-3] == "msgprobe:raw"
