"""The peer-control test network: four network namespaces, nothing else.

::

    client ─────────── censor ─────────── servers ─────────── control
    10.77.1.2   10.77.1.1    10.77.2.1    10.77.2.2   10.77.3.1    10.77.3.2
    (the probe)     (router: ip_forward,     (genuine services,       (msgprobe control
                     iptables per scenario)   resolvers; forwards      on :9491)
                                              client <-> control)

The servers' addresses (``CHAT_IP`` …) sit on the servers' link to the
censor. The control reaches them on its own link, never through the censor;
the client reaches everything, the control included, only through the
censor, so a censor rule can drop the control too.

Safety: the veths are created inside the namespaces (``ip -n A link add …
peer … netns B``), never in the host's namespace; every route is a
10.77.0.0/16 route (no default route anywhere), so a packet to any other
address fails inside its namespace. Nothing here runs in the host's
namespace but ``ip`` and ``iptables`` applied to these namespaces.

Namespaces are named ``PREFIX<pid>-<random>-<role>``: ``remove_leftovers``
deletes those whose creating process is gone (a run killed before its
cleanup), never those of a run still going.
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
from typing import IO, Any

PREFIX = "msgprobe-netns-"
ROOT = Path(__file__).resolve().parents[2]

CLIENT_IP = "10.77.1.2"
CENSOR_CLIENT_IP = "10.77.1.1"
CENSOR_SERVERS_IP = "10.77.2.1"
SERVERS_IP = "10.77.2.2"
SERVERS_CONTROL_IP = "10.77.3.1"
CONTROL_IP = "10.77.3.2"
CONTROL_PORT = 9491

CHAT_IP = "10.77.2.10"  # HTTPS 443 + HTTP 80
WEB_IP = "10.77.2.11"  # HTTP 80, the genuine page
BLOCKPAGE_IP = "10.77.2.20"  # HTTP 80, a censor's page no fingerprint knows
DYNAMIC_IP = "10.77.2.30"  # HTTP 80, a page that changes on every request
DOH_IP = "10.77.2.44"  # the probe's control resolver (DoH 443)
DNS_IP = "10.77.2.53"  # the network's resolver
LYING_DNS_IP = "10.77.2.54"  # forges chat's name to FORGED_IP
FORGED_IP = "10.77.2.99"  # present, nothing listens
SERVICE_IPS = (CHAT_IP, WEB_IP, BLOCKPAGE_IP, DYNAMIC_IP, DOH_IP, DNS_IP, LYING_DNS_IP, FORGED_IP)
NAMES = {
    "chat.msgprobe.test": CHAT_IP,
    "web.msgprobe.test": WEB_IP,
    "news.msgprobe.test": DYNAMIC_IP,
    "canary.msgprobe.test": SERVERS_IP,
}

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


@dataclass
class Network:
    """The four namespaces, their links and routes; ``censor_rule`` sets the scenario."""

    tag: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:6]}")
    children: list[Child] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{PREFIX}{self.tag}-{role}"

    @property
    def client(self) -> str:
        return self.ns("client")

    @property
    def censor(self) -> str:
        return self.ns("censor")

    @property
    def servers(self) -> str:
        return self.ns("servers")

    @property
    def control(self) -> str:
        return self.ns("control")

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.client, self.censor, self.servers, self.control)

    def ipn(self, ns: str, *args: str) -> str:
        return _run([_ip(), "-n", ns, *args])

    def exec(self, ns: str, *argv: str) -> str:
        return _run([_ip(), "netns", "exec", ns, *argv])

    def create(self) -> None:
        ip = _ip()
        for ns in self.namespaces:
            _run([ip, "netns", "add", ns])
            self.ipn(ns, "link", "set", "lo", "up")
        links = [
            (self.client, "c-cs", CLIENT_IP, self.censor, "cs-c", CENSOR_CLIENT_IP),
            (self.censor, "cs-s", CENSOR_SERVERS_IP, self.servers, "s-cs", SERVERS_IP),
            (self.servers, "s-ct", SERVERS_CONTROL_IP, self.control, "ct-s", CONTROL_IP),
        ]
        for a, a_if, a_ip, b, b_if, b_ip in links:
            # Both ends are born inside the namespaces: no veth ever exists in the host's.
            self.ipn(a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
            for ns, ifname, address in ((a, a_if, a_ip), (b, b_if, b_ip)):
                self.ipn(ns, "addr", "add", f"{address}/24", "dev", ifname)
                self.ipn(ns, "link", "set", ifname, "up")
        for address in SERVICE_IPS:
            self.ipn(self.servers, "addr", "add", f"{address}/24", "dev", "s-cs")
        self.ipn(self.client, "route", "add", "10.77.0.0/16", "via", CENSOR_CLIENT_IP)
        self.ipn(self.censor, "route", "add", "10.77.3.0/24", "via", SERVERS_IP)
        self.ipn(self.servers, "route", "add", "10.77.1.0/24", "via", CENSOR_SERVERS_IP)
        self.ipn(self.control, "route", "add", "10.77.0.0/16", "via", SERVERS_CONTROL_IP)
        for router in (self.censor, self.servers):
            # Written from inside the router's namespace: /proc/sys/net is that namespace's
            # (and sh is everywhere, procps's sysctl is not).
            self.exec(router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")

    def censor_rule(self, *rule: str) -> None:
        """One iptables rule in the censor, e.g. ``("-A", "FORWARD", "-d", ip, "-j", "DROP")``."""
        self.exec(self.censor, "iptables", "-w", "5", *rule)

    def flush_censor(self) -> None:
        for table in ("filter", "nat"):
            self.exec(self.censor, "iptables", "-w", "5", "-t", table, "-F")
            self.exec(self.censor, "iptables", "-w", "5", "-t", table, "-X")

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

    def start_servers(
        self,
        module: str,
        workdir: Path,
        *,
        addresses: Sequence[str] = (),
        args: Sequence[str] = (),
        stdin: bool = False,
        timeout: float = 30.0,
        name: str = "servers",
    ) -> Child:
        """``python -m MODULE --workdir DIR`` in the servers namespace, on ``addresses``
        added to its link to the censor (beyond SERVICE_IPS), once it says ``ready``."""
        for address in addresses:
            self.ipn(self.servers, "addr", "add", f"{address}/24", "dev", "s-cs")
        argv = [sys.executable, "-m", module, "--workdir", str(workdir), *args]
        child = self.start(self.servers, name, argv, stdin=stdin)
        child.stdout.expect("ready", timeout)
        return child

    @contextlib.contextmanager
    def flushed(self) -> Iterator[Network]:
        """The network with a censor that has no rule, before and after the block."""
        self.flush_censor()
        try:
            yield self
        finally:
            self.flush_censor()

    def once(self, config: Path, *, timeout: float = 60.0) -> dict[str, Any]:
        """``msgprobe once --format json`` in the client namespace: its report (schema 2)."""
        run = self.python(
            self.client, "-m", "probe", "once", "--config", str(config), "--format", "json", timeout=timeout
        )
        if run.returncode != 0:
            raise AssertionError(f"msgprobe once: exit {run.returncode}: {run.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(run.stdout)
        if report.get("schema") != 2:
            raise AssertionError(f"msgprobe once: not schema 2: {run.stdout[:2000]}")
        return report

    def python(self, ns: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` inside ``ns``, to completion (bounded by ``timeout``)."""
        return subprocess.run(
            [_ip(), "netns", "exec", ns, sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=python_env(),
        )

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
def network() -> Iterator[Network]:
    """A fresh network, removed whatever happens (leftovers of dead runs removed first)."""
    remove_leftovers()
    net = Network()
    try:
        net.create()
        yield net
    finally:
        net.destroy()
