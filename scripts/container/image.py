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

The raw variant (EXTRAS="[raw]") reuses the daemon run here: raw_image.py.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.container import bases
from scripts.container.engine import Engine
from scripts.container.steps import StepFailed, log, netns_get, run, wait_for

TAG = "msgprobe:ci"
NAME = "msgprobe-ci"
VOLUME = "msgprobe-ci-state"
HERE = Path(__file__).resolve().parent
LOOPBACK_CONFIG = HERE / "loopback-probe.yaml"
SHELLS = ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/busybox", "/usr/bin/busybox")
# As deploy/README.md runs the image, plus no network at all.
LOCKED_DOWN = (
    "--network",
    "none",
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
)
PYTHON = "/opt/msgprobe/bin/python"


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


def build(engine: Engine, context: Path, tag: str = TAG, extras: str = "") -> int:
    """Build the Dockerfile as `tag`; the image's size in bytes."""
    engine.docker(
        "build",
        "--network",
        "host",  # there is no bridge: the build stage reaches the mirrors through the host's network
        "--build-arg",
        f"BUILD_IMAGE={bases.BUILD_IMAGE}",
        "--build-arg",
        f"RUNTIME_IMAGE={bases.RUNTIME_IMAGE}",
        "--build-arg",
        f"EXTRAS={extras}",
        "-t",
        tag,
        context,
        timeout=400,
    )
    return int(engine.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)


@dataclass
class RunReport:
    image_bytes: int
    uid: str
    cap_eff: str
    healthy_after_s: float
    evidence_records: int
    volume_mode: str  # the fresh named volume's, from the image's mount point
    root_write_errno: int
    stop_s: float


@dataclass
class Daemon:
    """A daemon container started from an image, up and healthy."""

    name: str
    volume: str
    pid: int
    healthy_after_s: float
    volume_dir: Path

    @property
    def evidence(self) -> Path:
        return self.volume_dir / "evidence.jsonl"


def start_daemon(
    engine: Engine, work: Path, tag: str, name: str, volume: str, config_text: str, *extra: str
) -> Daemon:
    """`tag`'s daemon, LOCKED_DOWN plus `extra`, with a fresh named volume and
    `config_text` mounted as its probe.yaml; returned once Docker says healthy."""
    config = work / f"{name}.yaml"
    config.write_text(config_text)
    config.chmod(0o644)  # deploy/README.md: a mounted probe.yaml must be readable by uid 65532
    engine.docker("volume", "create", volume)
    started = time.monotonic()
    engine.docker(
        "run",
        "--detach",
        "--name",
        name,
        *LOCKED_DOWN,
        *extra,
        "--volume",
        f"{volume}:/var/lib/msgprobe",
        "--volume",
        f"{config}:/etc/msgprobe/probe.yaml:ro",
        # The image's HEALTHCHECK command, asked every second instead of 30.
        "--health-interval",
        "1s",
        tag,
    )
    pid = int(engine.docker("inspect", "-f", "{{.State.Pid}}", name).stdout)

    def answers_healthy() -> tuple[bool, str]:
        code, body = netns_get(pid, "http://127.0.0.1:9490/-/healthy")
        return code == 200, f"{code} {body}"

    wait_for(f"{name}: /-/healthy answers 200", answers_healthy, timeout=60)

    def docker_says_healthy() -> tuple[bool, str]:
        state = json.loads(engine.docker("inspect", "-f", "{{json .State}}", name).stdout)
        if not state.get("Running"):
            raise StepFailed(f"container stopped: {engine.docker('logs', name, check=False).stderr[-2000:]}")
        return state.get("Health", {}).get("Status") == "healthy", json.dumps(state.get("Health"))[-800:]

    wait_for(f"{name}: HEALTHCHECK healthy", docker_says_healthy, timeout=60)
    healthy_after = time.monotonic() - started
    volume_dir = Path(engine.docker("volume", "inspect", "-f", "{{.Mountpoint}}", volume).stdout.strip())
    return Daemon(name, volume, pid, round(healthy_after, 1), volume_dir)


def process_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def wait_for_evidence(daemon: Daemon) -> list[dict[str, Any]]:
    """The evidence log's records, once the first cycle has written one."""

    def written() -> tuple[bool, str]:
        ev = daemon.evidence
        return ev.is_file() and ev.stat().st_size > 0, str(list(daemon.volume_dir.iterdir()))

    wait_for(f"{daemon.name}: evidence in the volume", written, timeout=60)
    return [json.loads(line) for line in daemon.evidence.read_text().splitlines() if line]


def stop_daemon(engine: Engine, daemon: Daemon) -> float:
    """`docker stop`, which must take under 2 s (the daemon stops on SIGTERM);
    then the container and its volume are removed. The seconds it took."""
    start = time.monotonic()
    engine.docker("stop", "--time", "10", daemon.name)
    stop_s = time.monotonic() - start
    if stop_s >= 2:
        raise StepFailed(f"docker stop took {stop_s:.1f} s: the daemon does not stop on SIGTERM")
    exit_code = engine.docker("inspect", "-f", "{{.State.ExitCode}}", daemon.name).stdout.strip()
    tail = _log_tail(engine, daemon.name)
    log(f"{daemon.name} stopped in {stop_s:.2f} s, exit code {exit_code}; logs: {tail}")
    engine.docker("rm", "-v", daemon.name)
    engine.docker("volume", "rm", daemon.volume)
    return round(stop_s, 2)


def check_run(engine: Engine, work: Path) -> RunReport:
    daemon = start_daemon(engine, work, TAG, NAME, VOLUME, LOOPBACK_CONFIG.read_text())
    status = process_status(daemon.pid)
    uid, cap_eff = status["Uid"], status["CapEff"]
    if uid.split() != ["65532"] * 4:
        raise StepFailed(f"the container runs as {uid}, not 65532")
    if int(cap_eff, 16) != 0:
        raise StepFailed(f"CapEff {cap_eff}: the container has capabilities")
    if status["NoNewPrivs"] != "1":
        raise StepFailed("no_new_privs is not set")
    records = len(wait_for_evidence(daemon))
    owner = daemon.evidence.stat().st_uid
    if owner != 65532:
        raise StepFailed(f"evidence.jsonl belongs to uid {owner}")
    volume = daemon.volume_dir.stat()
    volume_mode = oct(volume.st_mode & 0o777)
    if volume_mode != "0o755" or (volume.st_uid, volume.st_gid) != (65532, 65532):
        raise StepFailed(f"the default image's fresh volume is {volume_mode} {volume.st_uid}:{volume.st_gid}")
    _var_lib_untouched(engine)

    root_errno = _root_write_errno(engine)
    for probe_path in SHELLS:
        _no_such_path(engine, probe_path)
    shell = engine.docker("exec", NAME, "sh", "-c", "true", check=False)
    if shell.returncode == 0:
        raise StepFailed("`sh` ran inside the container")

    stop_s = stop_daemon(engine, daemon)
    size = int(engine.docker("image", "inspect", "-f", "{{.Size}}", TAG).stdout)
    return RunReport(size, uid, cap_eff, daemon.healthy_after_s, records, volume_mode, root_errno, stop_s)


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


def _var_lib_untouched(engine: Engine) -> None:
    """The mount point is copied with its parent (see the Dockerfile): the
    runtime's own /var/lib must still be root's 0755, not 65532's."""
    code = "import os; s = os.stat('/var/lib'); print(s.st_uid, s.st_gid, oct(s.st_mode & 0o7777))"
    seen = engine.docker("exec", NAME, PYTHON, "-c", code).stdout.strip()
    if seen != "0 0 0o755":
        raise StepFailed(f"/var/lib in the image is {seen}, not root's 0755")


def _no_such_path(engine: Engine, path: str) -> None:
    code = f"import os, sys\nsys.exit(1 if os.path.lexists({path!r}) else 0)\n"
    found = engine.docker("exec", NAME, "/opt/msgprobe/bin/python", "-c", code, check=False)
    if found.returncode != 0:
        raise StepFailed(f"{path} exists in the image: it must have no shell")


def _log_tail(engine: Engine, name: str) -> str:
    logs = engine.docker("logs", "--tail", "3", name, check=False)
    return (logs.stdout + logs.stderr).strip().replace("\n", " | ")[-600:]
