"""A private Docker engine: Debian's dockerd started by hand, torn down by PID.

No init system runs here, and the machine's network must not change: no
bridge, no iptables rules, no IP forwarding. Containers then have either
no network (`--network none`) or an internal compose network, and nothing
they send can leave the machine. With forwarding already on in the root
namespace that last promise would not hold, so we refuse to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from scripts.container.steps import StepFailed, log, run, wait_for

# Debian's 20.10 client; /usr/local/bin/docker may be another, newer client
# whose API version this engine does not speak.
DOCKER = "/usr/bin/docker"
DOCKERD = "dockerd"


class Engine:
    """dockerd with its data, exec root and socket under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_root = root / "data"
        self.exec_root = root / "exec"
        self.socket = root / "docker.sock"
        self.config = root / "docker-config"  # DOCKER_CONFIG: the compose plugin lives here
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.config),
            "DOCKER_BUILDKIT": "0",  # BuildKit would fetch the `# syntax=` frontend from a registry
        }

    def start(self) -> None:
        if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "0":
            raise StepFailed("net.ipv4.ip_forward is on: containers could route out; not starting dockerd")
        if shutil.which(DOCKERD) is None or not Path(DOCKER).is_file():
            raise StepFailed("dockerd or /usr/bin/docker missing: apt-get install docker.io")
        for d in (self.data_root, self.exec_root, self.config):
            d.mkdir(parents=True, exist_ok=True)
        log_file = (self.root / "dockerd.log").open("wb")
        self.proc = subprocess.Popen(
            [
                DOCKERD,
                f"--data-root={self.data_root}",
                f"--exec-root={self.exec_root}",
                f"--pidfile={self.root / 'dockerd.pid'}",
                f"--host=unix://{self.socket}",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=overlay2",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our SIGINT is ours to handle, not dockerd's
        )
        log_file.close()

        def answers() -> tuple[bool, str]:
            if self.proc is not None and self.proc.poll() is not None:
                raise StepFailed(f"dockerd exited {self.proc.returncode}: {self.log_tail()}")
            info = self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
            return info.returncode == 0, info.stdout + info.stderr

        took = wait_for("dockerd answers", answers, timeout=60)
        version = self.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
        log(f"dockerd {version} up in {took:.1f} s")

    def log_tail(self) -> str:
        path = self.root / "dockerd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def docker(
        self,
        *args: str | Path,
        timeout: float = 120,
        check: bool = True,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [DOCKER, *args],
            timeout=timeout,
            check=check,
            stdin=stdin,
            cwd=cwd,
            env={**self.env, **(env or {})},
        )

    def stop(self) -> None:
        """Stop every container, then dockerd by its PID; unmount what it
        leaves behind (the nsfs mount of its default netns, any overlay)."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False, timeout=20).stdout.split()
            if ids:
                self.docker("rm", "-f", "-v", *ids, check=False, timeout=60)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log("dockerd ignored SIGTERM for 20 s: killing it")
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # containerd-shim processes run in their own sessions; one left over
        # would hold the mounts below.
        deadline = time.monotonic() + 10
        while _processes_under(self.exec_root) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in _processes_under(self.exec_root):
            log(f"killing leftover engine process {pid}")
            os.kill(pid, signal.SIGKILL)
        unmount_under(self.root)


def _processes_under(path: Path) -> list[int]:
    """PIDs whose command line names `path` (the shims and containerd)."""
    out = []
    needle = str(path).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "cmdline").read_bytes():
                out.append(int(proc.name))
        except OSError:
            continue
    return out


def unmount_under(root: Path) -> None:
    """Lazily unmount every mount below `root`, deepest first."""
    prefix = str(root.resolve()) + "/"
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target.startswith(prefix):
            mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        result = run(["umount", "-l", target], check=False, timeout=20)
        if result.returncode != 0:
            log(f"umount {target}: {result.stderr.strip()}")
