"""A real watchdog stack on loopback, for the live end-to-end test.

    msgprobe demo  ──scrape──►  Prometheus agent (vantage xa-1) ──remote write──┐
    msgprobe demo  ──scrape──►  Prometheus agent (vantage xb-1) ──remote write──┤
                                                                                 ▼
                  central store: Prometheus (remote-write receiver, the msgprobe rules)
                              or VictoriaMetrics + vmalert (victoria_stack.py)

Each volunteer runs its own agent, so each agent here is the shipped
deploy/volunteer/prometheus-agent.yml with its vantage identity in the
environment, as in the compose file; only addresses, intervals and the token
path differ. The central server loads the shipped rule files with only the
evaluation interval shortened, and MessengerNewBlock's ``for`` (so that the
test sees it fire, not only pend; the promtool tests hold the real 5m), and
notifies a loopback stand-in for Alertmanager (notifier.py). Every process
listens on 127.0.0.1 on a port the kernel picked, keeps its data in a
temporary directory, and is killed when the stack closes, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.deploy_files import AGENT_CONFIG, CENTRAL_CONFIG, rule_files
from tests.deploy.notifier import NotifierSink

EVALUATION_INTERVAL = "1s"
# A matcher for the series the agents wrote, not those the central store's rules
# write (ALERTS, and the recorded msgprobe:… series, which keep the vantage's labels).
WRITTEN = '__name__!~"ALERTS.*|.*:.*"'
# MessengerNewBlock's `for` in the live copy: long enough to be seen pending, short enough to fire.
SHORT_FOR = {"MessengerNewBlock": "20s"}
SCRAPE_INTERVAL = "1s"
DEMO_INTERVAL = "2s"
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Vantage:
    id: str
    country: str
    asn: str


# ISO 3166 user-assigned codes and documentation ASNs (RFC 5398): nobody's real network.
VANTAGES = (Vantage("xa-1", "XA", "64500"), Vantage("xb-1", "XB", "64501"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text)


@dataclass
class Stack:
    workdir: Path
    processes: list[Process] = field(default_factory=list)
    central_url: str = ""  # where queries go: Prometheus's or VictoriaMetrics's HTTP API
    rules_url: str = ""  # who evaluates the rules: central Prometheus or vmalert (its /api/v1/alerts)
    backend: str = "prometheus"
    demos: dict[str, str] = field(default_factory=dict)  # vantage id -> demo base URL
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # after the processes
    notifier: NotifierSink = field(default_factory=NotifierSink)  # the evaluator's Alertmanager

    def notifier_address(self) -> str:
        """The Alertmanager stand-in's host:port, started on first use and stopped at close."""
        if self.notifier.server is None:
            self.notifier.start()
            self.cleanups.append(self.notifier.stop)
        return self.notifier.address

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env={**os.environ, **(env or {})},
            )
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def wait_ready(self, proc: Process, url: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}\n{proc.tail(40)}")
            if http_get(url, timeout=2)[0] == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name} not ready at {url} after {STARTUP_TIMEOUT}s\n{proc.tail(40)}")

    def close(self) -> None:
        # Senders before receivers, each gone before the next is told: an agent's
        # or vmalert's last flush then finds its store alive instead of retrying
        # into a closed port until it is killed.
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                proc.popen.terminate()
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)
        for cleanup in self.cleanups:
            cleanup()

    # --- the central store's HTTP API (Prometheus's; VictoriaMetrics speaks it too) ---

    def api(self, path: str, base: str = "", **params: str) -> Any:
        url = f"{base or self.central_url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url, timeout=10)
        if status != 200:
            raise AssertionError(f"GET {url}: HTTP {status}: {body[:500]!r}")
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, seconds: int = 60, step: str = "2s") -> list[dict[str, Any]]:
        end = time.time()
        data = self.api("query_range", query=expr, start=f"{end - seconds:.3f}", end=f"{end:.3f}", step=step)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts as the rule evaluator lists them, with ``alertname`` among the labels
        (vmalert names an alert in ``name``, Prometheus only in the labels)."""
        # vmalert answers `"alerts": null` before its first evaluation has found any.
        found: list[dict[str, Any]] = self.api("alerts", base=self.rules_url)["alerts"] or []
        return [{**a, "labels": {"alertname": a.get("name", ""), **a["labels"]}} for a in found]


def rules_with_short_interval(target: Path, drop: tuple[str, ...] = ()) -> list[str]:
    """The shipped rule files, unchanged but for the groups' evaluation interval,
    ``SHORT_FOR`` and the rule fields in ``drop`` (for an evaluator too old to know them)."""
    target.mkdir()
    out = []
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            group["interval"] = EVALUATION_INTERVAL
            for rule in group["rules"]:
                for key in drop:
                    rule.pop(key, None)
                if rule.get("alert") in SHORT_FOR:
                    rule["for"] = SHORT_FOR[rule["alert"]]
        copy = target / path.name
        copy.write_text(yaml.safe_dump(doc, sort_keys=False))
        out.append(str(copy))
    return out


def _central_config(workdir: Path, notifier: str) -> Path:
    doc = yaml.safe_load(CENTRAL_CONFIG.read_text())
    doc["global"]["evaluation_interval"] = EVALUATION_INTERVAL
    doc["rule_files"] = rules_with_short_interval(workdir / "rules")
    (manager,) = doc["alerting"]["alertmanagers"]
    manager["static_configs"] = [{"targets": [notifier]}]
    # Nothing to scrape here: the data comes by remote write.
    doc["scrape_configs"] = []
    path = workdir / "central.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _agent_config(workdir: Path, vantage: Vantage, demo_port: int, write_url: str) -> Path:
    doc = yaml.safe_load(AGENT_CONFIG.read_text())
    doc["global"]["scrape_interval"] = SCRAPE_INTERVAL
    doc["global"]["scrape_timeout"] = SCRAPE_INTERVAL
    (job,) = doc["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{demo_port}"]}]
    (remote,) = doc["remote_write"]
    remote["url"] = write_url
    token = workdir / f"token-{vantage.id}"
    token.write_text("test-token")
    remote["authorization"]["credentials_file"] = str(token)
    remote["queue_config"]["batch_send_deadline"] = "1s"
    remote["queue_config"]["min_backoff"] = "100ms"
    remote["queue_config"]["max_backoff"] = "1s"
    path = workdir / f"agent-{vantage.id}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# Starts the central store in the stack; returns the remote write URL the agents
# push to and a check that blocks until the store (and its rule evaluator) is ready.
CentralStarter = Callable[[Stack], tuple[str, Callable[[], None]]]


def prometheus_central(prometheus: str) -> CentralStarter:
    def start(stack: Stack) -> tuple[str, Callable[[], None]]:
        port = free_port()
        stack.central_url = stack.rules_url = f"http://127.0.0.1:{port}"
        central = stack.start(
            "central",
            [
                prometheus,
                f"--config.file={_central_config(stack.workdir, stack.notifier_address())}",
                f"--storage.tsdb.path={stack.workdir / 'central-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-remote-write-receiver",
                "--log.level=warn",
            ],
        )
        return stack.central_url + "/api/v1/write", lambda: stack.wait_ready(
            central, f"{stack.central_url}/-/ready"
        )

    return start


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    prometheus: str,
    vantages: tuple[Vantage, ...] = VANTAGES,
    regimes: Mapping[str, str] | None = None,  # vantage id -> `msgprobe demo --regime`
    central: CentralStarter | None = None,  # default: a central Prometheus
) -> Iterator[Stack]:
    stack = Stack(workdir)
    try:
        write_url, central_ready = (central or prometheus_central(prometheus))(stack)
        for vantage in vantages:
            demo_port = free_port()
            regime = (regimes or {}).get(vantage.id, "online")
            demo = stack.start(
                f"demo-{vantage.id}",
                [
                    sys.executable,
                    "-m",
                    "probe",
                    "demo",
                    "--web.listen-address",
                    f"127.0.0.1:{demo_port}",
                    "--interval",
                    DEMO_INTERVAL,
                    "--regime",
                    regime,
                ],
            )
            stack.demos[vantage.id] = f"http://127.0.0.1:{demo_port}"
            agent_port = free_port()
            agent = stack.start(
                f"agent-{vantage.id}",
                [
                    prometheus,
                    # Prometheus 2.x spells agent mode and ${VAR} expansion in
                    # external_labels as feature flags; 3.x (the compose
                    # file's image) has --agent and expands by default.
                    "--enable-feature=agent,expand-external-labels",
                    f"--config.file={_agent_config(workdir, vantage, demo_port, write_url)}",
                    f"--storage.agent.path={workdir / ('agent-data-' + vantage.id)}",
                    f"--web.listen-address=127.0.0.1:{agent_port}",
                    "--storage.remote.flush-deadline=1s",
                    "--log.level=warn",
                ],
                env={
                    "MSGPROBE_VANTAGE": vantage.id,
                    "MSGPROBE_COUNTRY": vantage.country,
                    "MSGPROBE_ASN": vantage.asn,
                },
            )
            stack.wait_ready(demo, f"http://127.0.0.1:{demo_port}/-/healthy")
            stack.wait_ready(agent, f"http://127.0.0.1:{agent_port}/-/ready")
        central_ready()
        yield stack
    finally:
        stack.close()


def wait_for(check: Callable[[], list[str]], timeout: float, poll: float = 1.0) -> list[str]:
    """Run ``check`` until it reports no problem or ``timeout`` passes; the last problems."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            problems = check()
        except AssertionError as exc:
            problems = [str(exc)]
        if not problems or time.monotonic() >= deadline:
            return problems
        time.sleep(poll)
