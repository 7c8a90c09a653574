"""The committed Dockerfile, built from a umask-077 copy and run locked down.

A volunteer whose umask is 077 clones a tree of 0600 files; the legacy
builder copies them with those modes, and the runtime user (65532) could
not read what root-owned 0600 files the build stage made. So the build
context here is made that way on purpose: if the image runs, the Dockerfile
normalises modes itself.

The container runs as the README says a volunteer runs it, plus
`--network none` (nothing leaves it) and a loopback-only config mounted at
/etc/msgprobe/probe.yaml (one endpoint on 127.0.0.1, refused: a non-ok
result, so the evidence log gets a record), instead of the real catalog.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.container import bases
from scripts.container.engine import Engine
from scripts.container.steps import StepFailed, log, netns_get, run, wait_for

TAG = "msgprobe:ci"
NAME = "msgprobe-ci"
VOLUME = "msgprobe-ci-state"
HERE = Path(__file__).resolve().parent
LOOPBACK_CONFIG = HERE / "loopback-probe.yaml"
SHELLS = ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/busybox", "/usr/bin/busybox")


def copy_as_cloned_with_umask_077(repo: Path, dest: Path) -> int:
    """The files git knows (tracked, and new ones not ignored: uncommitted
    work is what is being tested), written the way `git clone` writes them
    under umask 077: files 0600 (0700 if executable), directories 0700."""
    listed = run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    old = os.umask(0o077)
    count = 0
    try:
        for rel in sorted(set(filter(None, listed.stdout.split("\0")))):
            src, dst = repo / rel, dest / rel
            if not src.is_symlink() and not src.is_file():
                continue  # deleted in the work tree
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                dst.symlink_to(os.readlink(src))
            else:
                dst.write_bytes(src.read_bytes())
                if os.access(src, os.X_OK):
                    dst.chmod(0o700)
            count += 1
    finally:
        os.umask(old)
    return count


def build(engine: Engine, context: Path) -> float:
    start = time.monotonic()
    engine.docker(
        "build",
        "--network",
        "host",  # there is no bridge: the build stage reaches the mirrors through the host's network
        "--build-arg",
        f"BUILD_IMAGE={bases.BUILD_IMAGE}",
        "--build-arg",
        f"RUNTIME_IMAGE={bases.RUNTIME_IMAGE}",
        "-t",
        TAG,
        context,
        timeout=400,
    )
    return time.monotonic() - start


@dataclass
class RunReport:
    image_bytes: int
    uid: str
    cap_eff: str
    healthy_after_s: float
    evidence_records: int
    root_write_errno: int
    stop_s: float


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def check_run(engine: Engine, work: Path) -> RunReport:
    config = work / "probe.yaml"
    config.write_text(LOOPBACK_CONFIG.read_text())
    config.chmod(0o644)  # deploy/README.md: a mounted probe.yaml must be readable by uid 65532
    engine.docker("volume", "create", VOLUME)
    started = time.monotonic()
    engine.docker(
        "run",
        "--detach",
        "--name",
        NAME,
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--volume",
        f"{VOLUME}:/var/lib/msgprobe",
        "--volume",
        f"{config}:/etc/msgprobe/probe.yaml:ro",
        # The image's HEALTHCHECK command, asked every second instead of 30.
        "--health-interval",
        "1s",
        TAG,
    )
    pid = int(engine.docker("inspect", "-f", "{{.State.Pid}}", NAME).stdout)
    status = _status(pid)
    uid, cap_eff = status["Uid"], status["CapEff"]
    if uid.split() != ["65532"] * 4:
        raise StepFailed(f"the container runs as {uid}, not 65532")
    if int(cap_eff, 16) != 0:
        raise StepFailed(f"CapEff {cap_eff}: the container has capabilities")
    if "NoNewPrivs:\t1" not in Path(f"/proc/{pid}/status").read_text():
        raise StepFailed("no_new_privs is not set")

    def answers_healthy() -> tuple[bool, str]:
        code, body = netns_get(pid, "http://127.0.0.1:9490/-/healthy")
        return code == 200, f"{code} {body}"

    wait_for("/-/healthy answers 200", answers_healthy, timeout=60)

    def docker_says_healthy() -> tuple[bool, str]:
        state = json.loads(engine.docker("inspect", "-f", "{{json .State}}", NAME).stdout)
        if not state.get("Running"):
            raise StepFailed(f"container stopped: {engine.docker('logs', NAME, check=False).stderr[-2000:]}")
        return state.get("Health", {}).get("Status") == "healthy", json.dumps(state.get("Health"))[-800:]

    wait_for("HEALTHCHECK healthy", docker_says_healthy, timeout=60)
    healthy_after = time.monotonic() - started
    volume_dir = Path(engine.docker("volume", "inspect", "-f", "{{.Mountpoint}}", VOLUME).stdout.strip())
    evidence = volume_dir / "evidence.jsonl"

    def evidence_written() -> tuple[bool, str]:
        return evidence.is_file() and evidence.stat().st_size > 0, str(list(volume_dir.iterdir()))

    wait_for("evidence in the volume", evidence_written, timeout=60)
    records = len(evidence.read_text().splitlines())
    owner = evidence.stat().st_uid
    if owner != 65532:
        raise StepFailed(f"evidence.jsonl belongs to uid {owner}")

    root_errno = _root_write_errno(engine)
    for probe_path in SHELLS:
        _no_such_path(engine, probe_path)
    shell = engine.docker("exec", NAME, "sh", "-c", "true", check=False)
    if shell.returncode == 0:
        raise StepFailed("`sh` ran inside the container")

    start = time.monotonic()
    engine.docker("stop", "--time", "10", NAME)
    stop_s = time.monotonic() - start
    if stop_s >= 2:
        raise StepFailed(f"docker stop took {stop_s:.1f} s: the daemon does not stop on SIGTERM")
    exit_code = engine.docker("inspect", "-f", "{{.State.ExitCode}}", NAME).stdout.strip()
    log(f"stopped in {stop_s:.2f} s, exit code {exit_code}; logs: {_log_tail(engine)}")
    size = int(engine.docker("image", "inspect", "-f", "{{.Size}}", TAG).stdout)
    engine.docker("rm", "-v", NAME)
    engine.docker("volume", "rm", VOLUME)
    return RunReport(size, uid, cap_eff, round(healthy_after, 1), records, root_errno, round(stop_s, 2))


def _root_write_errno(engine: Engine) -> int:
    """Even uid 0 (no capabilities needed to write a root-owned /) must meet
    EROFS: the root filesystem itself is read-only, not just unwritable by 65532."""
    code = "try:\n open('/ci-write-test', 'w')\nexcept OSError as e:\n print(e.errno)\nelse:\n print(0)"
    errnos = []
    for user in ("65532", "0"):
        out = engine.docker(
            "exec", "--user", user, NAME, "/opt/msgprobe/bin/python", "-c", code
        ).stdout.strip()
        errnos.append(int(out))
    if errnos[1] != 30:  # EROFS
        raise StepFailed(f"writing / as root inside the container gave errno {errnos[1]}, not EROFS")
    return errnos[1]


def _no_such_path(engine: Engine, path: str) -> None:
    code = f"import os, sys\nsys.exit(1 if os.path.lexists({path!r}) else 0)\n"
    found = engine.docker("exec", NAME, "/opt/msgprobe/bin/python", "-c", code, check=False)
    if found.returncode != 0:
        raise StepFailed(f"{path} exists in the image: it must have no shell")


def _log_tail(engine: Engine) -> str:
    logs = engine.docker("logs", "--tail", "3", NAME, check=False)
    return (logs.stdout + logs.stderr).strip().replace("\n", " | ")[-600:]
