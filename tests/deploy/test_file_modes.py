"""Every file a container reads is readable by the user it runs as.

The agent runs as nobody (65534) and msgprobe as nonroot (65532); compose
bind-mounts the volunteer's files with the modes they have. A token file
made the way the docs once said, `(umask 077; printf … > secrets/…)`, was
0600 and the agent could not read it: no verdict ever left the vantage.
So the documented setup commands (the compose file's header and
deploy/README.md, parsed, not copied here) run as written in a copy of
deploy/volunteer made as a `git clone` under umask 077 makes it, and each
mounted file must then be readable by its container's user: by its mode
bits, and, as root, by really opening it as that user.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from scripts.container import docs
from tests.deploy.test_dockerfile import final_stage, instructions

# The users the images run as: prom/prometheus's nobody, distroless's nonroot.
USERS = {"agent": 65534, "msgprobe": 65532}


def _clone_like(dest: Path) -> Path:
    """deploy/volunteer as a clone under umask 077 leaves it, with the
    volunteer's own probe.yaml (also 0600) next to the compose file."""
    old = os.umask(0o077)
    try:
        for src in docs.VOLUNTEER.rglob("*"):
            rel = src.relative_to(docs.VOLUNTEER)
            if rel.name in {".env", "probe.yaml", "remote_write_token"} or not src.is_file():
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
        (dest / "probe.yaml").write_text("catalog: builtin\n")
    finally:
        os.umask(old)
    return dest


def _mounted_files(volunteer: Path) -> list[tuple[str, Path]]:
    """(service, host file) for every file bind-mounted into a container:
    the volumes, the secrets, and the optional probe.yaml line the README
    tells volunteers to uncomment."""
    text = (volunteer / "compose.yaml").read_text()
    doc = yaml.safe_load(text)
    out = []
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                out.append((name, volume_path(volunteer, source)))
        for secret in service.get("secrets", []):
            out.append((name, volume_path(volunteer, doc["secrets"][secret]["file"])))
    (optional,) = re.findall(
        r"^\s*#\s*- (\./probe\.yaml):/etc/msgprobe/probe\.yaml:ro$", text, flags=re.MULTILINE
    )
    out.append(("msgprobe", volume_path(volunteer, optional)))
    return out


def volume_path(volunteer: Path, source: str) -> Path:
    return (volunteer / source).resolve()


def _mode_lets_read(path: Path, uid: int) -> bool:
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IRUSR)
    return bool(st.st_mode & stat.S_IROTH)  # the volunteer's group is not the container user's


def _opens_as(path: Path, uid: int) -> subprocess.CompletedProcess[str]:
    """Open `path` as `uid`, the way a bind mount presents it: only the
    file's own mode counts, not the folders above it (a 700 secrets folder
    on the host does not stop the container). An O_PATH descriptor opened
    here is reopened through /proc by a child running as `uid`."""
    fd = os.open(path, os.O_PATH)
    try:
        return subprocess.run(
            # cat, not this venv's Python: /root is closed to other users.
            ["cat", f"/proc/self/fd/{fd}"],
            cwd="/",
            user=uid,
            group=uid,
            extra_groups=[],
            pass_fds=[fd],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.close(fd)


def _unreadable(volunteer: Path, services: set[str]) -> list[str]:
    problems = []
    for service, path in _mounted_files(volunteer):
        if service not in services:
            continue
        uid = USERS[service]
        mode = oct(path.stat().st_mode & 0o777)
        if not _mode_lets_read(path, uid):
            problems.append(f"{path.name} ({mode}) is not readable by {service} (uid {uid})")
        elif os.geteuid() == 0 and (opened := _opens_as(path, uid)).returncode != 0:
            problems.append(f"{path.name} ({mode}): uid {uid} cannot open it: {opened.stderr[-300:]}")
    return problems


@pytest.mark.parametrize(
    ("source", "commands", "services"),
    [
        # The header is the short version: the agent's files. The README
        # also covers the optional probe.yaml.
        ("compose.yaml header", docs.compose_header_commands, {"agent"}),
        ("deploy/README.md", docs.readme_commands, {"agent", "msgprobe"}),
    ],
)
def test_the_documented_setup_leaves_every_mounted_file_readable(
    tmp_path: Path, source: str, commands: Callable[[], list[str]], services: set[str]
) -> None:
    lines = commands()
    assert any("remote_write_token" in line for line in lines), f"{source} no longer makes the token file"
    volunteer = _clone_like(tmp_path / "volunteer")
    assert (
        volunteer / "prometheus-agent.yml"
    ).stat().st_mode & 0o777 == 0o600  # the clone is as strict as it gets
    result = subprocess.run(
        ["bash", "-c", docs.as_script(lines, "test-token")],
        cwd=volunteer,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"{source}: the documented commands fail: {result.stderr}"
    assert (volunteer / "secrets" / "remote_write_token").read_text() == "test-token"
    assert _unreadable(volunteer, services) == [], source
    # The token stays away from other local users: its folder is closed.
    assert (volunteer / "secrets").stat().st_mode & 0o077 == 0, (
        f"{source}: the secrets folder is open to others"
    )


def test_the_check_sees_the_old_umask_077_token(tmp_path: Path) -> None:
    """The defect this file exists for, as the docs once wrote it."""
    volunteer = _clone_like(tmp_path / "volunteer")
    shutil.rmtree(volunteer / "secrets")
    (volunteer / "secrets").mkdir()
    for name in ("prometheus-agent.yml", "probe.yaml"):
        (volunteer / name).chmod(0o644)
    old = "(umask 077; printf '%s' 'TOKEN' > secrets/remote_write_token)"
    subprocess.run(["bash", "-c", old], cwd=volunteer, check=True, timeout=30)
    assert _unreadable(volunteer, {"agent"}) == [
        "remote_write_token (0o600) is not readable by agent (uid 65534)"
    ]
    if os.geteuid() == 0:  # and really opening it as nobody fails, as in the container
        assert _opens_as(volunteer / "secrets" / "remote_write_token", 65534).returncode != 0
        assert _opens_as(volunteer / "prometheus-agent.yml", 65534).returncode == 0


def test_the_image_makes_what_the_runtime_reads_readable() -> None:
    """A umask-077 clone is also the build context: the build stage must
    normalise modes after its last COPY into the tree the runtime receives
    (scripts/container builds from such a clone for real)."""
    ins = instructions()
    build = [i for i in ins if i.stage == 0]
    last_copy = max(n for n, i in enumerate(build) if i.keyword == "COPY" and "/opt/msgprobe" in i.args)
    assert any(
        i.keyword == "RUN" and "chmod -R a+rX /opt/msgprobe" in i.args for i in build[last_copy + 1 :]
    ), "no `chmod -R a+rX /opt/msgprobe` after the last COPY into /opt/msgprobe"
    runtime_copies = [i.args for i in final_stage() if i.keyword == "COPY"]
    assert all(a.startswith("--from=build") for a in runtime_copies), (
        "runtime files come only from the build stage"
    )
