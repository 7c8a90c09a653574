"""The live stack's central store on VictoriaMetrics: a single-node
victoria-metrics receiving the agents' remote writes, and vmalert evaluating
the shipped rule files against it (see live_stack.py for the agents).

    agents ──remote write──► victoria-metrics ◄──query── vmalert ──notify──► sink
                                    ▲                       │
                                    └── remote write ───────┘  (recorded series, ALERTS)

vmalert writes what the recording rules compute, and the ALERTS series,
back into VictoriaMetrics (-remoteWrite.url), and restores alert state from
it on restart (-remoteRead.url), as in deploy/watchdog/victoriametrics/.
Its notifier is the stack's loopback sink (tests/deploy/notifier.py), as
the central Prometheus's is.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.live_stack import (
    EVALUATION_INTERVAL,
    CentralStarter,
    Stack,
    free_port,
    rules_with_short_interval,
)

# Rule fields newer than Debian's vmalert 1.79.5: it rejects a rule file
# that has them ("unknown fields in rule: keep_firing_for"); vmalert ≥ 1.90
# and the compose file's image know them.
NEWER_RULE_FIELDS = ("keep_firing_for",)


@dataclass(frozen=True)
class VictoriaTools:
    victoria_metrics: str
    vmalert: str


def dry_run(vmalert: str, rule_paths: list[str]) -> subprocess.CompletedProcess[str]:
    """vmalert's own parser and template check on rule files, evaluating nothing."""
    return subprocess.run(
        [vmalert, "-dryRun", *(f"-rule={p}" for p in rule_paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def unsupported_fields(vmalert: str, rule_paths: list[str]) -> tuple[str, ...]:
    """The NEWER_RULE_FIELDS this vmalert rejects in these files (none on a current vmalert)."""
    result = dry_run(vmalert, rule_paths)
    if result.returncode == 0:
        return ()
    return tuple(f for f in NEWER_RULE_FIELDS if f"unknown fields in rule: {f}" in result.stderr)


def victoria_args(binary: str, data: Path, port: int) -> list[str]:
    return [
        binary,
        f"-storageDataPath={data}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=1d",
        # Samples are visible to queries at once (default: 30 s later), and no
        # response cache holds an answer from before the data arrived.
        "-search.latencyOffset=1s",
        "-search.disableCache",
        "-loggerLevel=WARN",
    ]


def victoria_central(tools: VictoriaTools) -> CentralStarter:
    def start(stack: Stack) -> tuple[str, Callable[[], None]]:
        vm_port, alert_port = free_port(), free_port()
        stack.backend = "victoria-metrics"
        stack.central_url = f"http://127.0.0.1:{vm_port}"
        stack.rules_url = f"http://127.0.0.1:{alert_port}"
        vm = stack.start(
            "victoria-metrics", victoria_args(tools.victoria_metrics, stack.workdir / "vm-data", vm_port)
        )
        shipped = rules_with_short_interval(stack.workdir / "rules-probe")
        rules = rules_with_short_interval(
            stack.workdir / "rules", drop=unsupported_fields(tools.vmalert, shipped)
        )
        stack.wait_ready(vm, f"{stack.central_url}/health")  # vmalert checks its datasource at start
        alert = stack.start(
            "vmalert",
            [
                tools.vmalert,
                *(f"-rule={r}" for r in rules),
                f"-datasource.url={stack.central_url}",
                f"-remoteWrite.url={stack.central_url}",
                f"-remoteRead.url={stack.central_url}",
                f"-notifier.url=http://{stack.notifier_address()}",
                f"-evaluationInterval={EVALUATION_INTERVAL}",
                "-remoteWrite.flushInterval=1s",
                f"-httpListenAddr=127.0.0.1:{alert_port}",
                "-loggerLevel=WARN",
            ],
        )
        return stack.central_url + "/api/v1/write", lambda: stack.wait_ready(
            alert, f"{stack.rules_url}/health"
        )

    return start
