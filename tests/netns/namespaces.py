"""Network namespaces for tests: create, run processes in, and always remove.

The building blocks every namespace test network shares (``tests.netns.topology``'s
four namespaces, ``tests.netns.path``'s five): ``ip`` and ``iptables`` commands,
children whose output is read with bounded waits, and a removal that tries
everything and then reports what failed.

Safety: veths are created inside the namespaces (``veth``), never in the
host's. Namespaces are named ``PREFIX<pid>-<random>-<role>``:
``remove_leftovers`` deletes those whose creating process is gone (a run
killed before its cleanup), never those of a run still going.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

PREFIX = "msgprobe-netns-"
ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 10.0  # s for one ip/iptables command
STOP_TIMEOUT = 5.0  # s a server gets to exit on SIGTERM before SIGKILL


def _ip() -> str:
    return shutil.which("ip") or "ip"


def _run(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _netns_names() -> list[str]:
    # "name (id: 3)" or "name" per line
    return [line.split()[0] for line in _run([_ip(), "netns", "list"]).splitlines() if line.strip()]


def ours() -> list[str]:
    """Namespaces of this test network that exist now (any run's)."""
    return [n for n in _netns_names() if n.startswith(PREFIX)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_namespace(name: str) -> None:
    """Stop what still runs in ``name`` (by pid: processes a run of these tests started) and delete it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in _run([_ip(), "netns", "pids", name]).split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while pids and time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
    _run([_ip(), "netns", "delete", name])


def remove_leftovers() -> list[str]:
    """Delete namespaces left by runs whose process is gone; the names deleted."""
    removed = []
    for name in ours():
        pid = name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            delete_namespace(name)
            removed.append(name)
    return removed


class Lines:
    """A child's output stream read by a thread, so that waiting for a line is bounded in time."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, needle: str, timeout: float) -> str:
        """The first line (from now) containing ``needle``; RuntimeError after ``timeout`` s or at EOF."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"stream ended before {needle!r}: {self.seen[-20:]}")
            self.seen.append(line)
            if needle in line:
                return line
        raise RuntimeError(f"no {needle!r} within {timeout:g} s: {self.seen[-20:]}")


@dataclass
class Child:
    """A process started inside one of the namespaces."""

    name: str
    process: subprocess.Popen[str]
    stdout: Lines
    stderr: Lines

    def send(self, line: str, timeout: float = 5.0) -> None:
        """Write a command line; wait for its ``ok`` answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        self.stdout.expect(f"ok {line}", timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


N = TypeVar("N", bound="Namespaces")


@dataclass
class Namespaces:
    """One test network's namespaces (named by ``ROLES``), the processes started in
    them, and their removal; each network subclass adds its links and scenarios."""

    ROLES: ClassVar[tuple[str, ...]] = ()
    tag: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:6]}")
    children: list[Child] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{PREFIX}{self.tag}-{role}"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(self.ns(role) for role in self.ROLES)

    def create(self) -> None:
        raise NotImplementedError

    def ipn(self, ns: str, *args: str) -> str:
        return _run([_ip(), "-n", ns, *args])

    def exec(self, ns: str, *argv: str) -> str:
        return _run([_ip(), "netns", "exec", ns, *argv])

    def add_namespaces(self) -> None:
        for ns in self.namespaces:
            _run([_ip(), "netns", "add", ns])
            self.ipn(ns, "link", "set", "lo", "up")

    def veth(self, a: str, a_if: str, a_ip: str, b: str, b_if: str, b_ip: str) -> None:
        """A /24 link between two namespaces; both ends are born inside them, never in the host's."""
        self.ipn(a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
        for ns, ifname, address in ((a, a_if, a_ip), (b, b_if, b_ip)):
            self.ipn(ns, "addr", "add", f"{address}/24", "dev", ifname)
            self.ipn(ns, "link", "set", ifname, "up")

    def start(self, ns: str, name: str, argv: Sequence[str], *, stdin: bool = False) -> Child:
        process = subprocess.Popen(
            [_ip(), "netns", "exec", ns, *argv],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=python_env(),
        )
        assert process.stdout is not None and process.stderr is not None
        child = Child(name, process, Lines(process.stdout), Lines(process.stderr))
        self.children.append(child)
        return child

    def python(
        self, ns: str, *args: str, timeout: float, wrap: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` inside ``ns``, to completion (bounded by ``timeout``), under ``wrap``
        (e.g. setpriv) when given."""
        return subprocess.run(
            [_ip(), "netns", "exec", ns, *wrap, sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=python_env(),
        )

    def once_in(self, ns: str, config: Path, *, timeout: float, wrap: Sequence[str] = ()) -> dict[str, Any]:
        """``msgprobe once --format json`` in ``ns``: its report (schema 2)."""
        run = self.python(
            ns, "-m", "probe", "once", "--config", str(config), "--format", "json", timeout=timeout, wrap=wrap
        )
        if run.returncode != 0:
            raise AssertionError(f"msgprobe once: exit {run.returncode}: {run.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(run.stdout)
        if report.get("schema") != 2:
            raise AssertionError(f"msgprobe once: not schema 2: {run.stdout[:2000]}")
        return report

    def destroy(self) -> None:
        """Stop every child, then delete every namespace that exists; errors after trying all."""
        problems = []
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as exc:
                problems.append(f"{child.name}: {exc}")
        existing = set(_netns_names())
        for ns in self.namespaces:
            if ns in existing:
                try:
                    delete_namespace(ns)
                except Exception as exc:
                    problems.append(f"{ns}: {exc}")
        if problems:
            raise RuntimeError("; ".join(problems))


@contextlib.contextmanager
def built(net: N) -> Iterator[N]:
    """``net`` created, and removed whatever happens (leftovers of dead runs removed first)."""
    remove_leftovers()
    try:
        net.create()
        yield net
    finally:
        net.destroy()
