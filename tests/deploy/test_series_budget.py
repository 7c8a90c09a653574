"""The series budget per vantage that deploy/README.md promises, recomputed
from the built-in catalog with the daemon's own exporter, so the figure a
watchdog sizes the central store with cannot silently go stale."""

from __future__ import annotations

import re
from importlib import util

import pytest

from tests.deploy.deploy_files import DEPLOY

# Series that appear only after the first cycle (not in the initial render):
# the cycle's own gauges, the daemon's byte budget, and `up`, which the agent adds.
AFTER_FIRST_CYCLE = (
    "msgprobe_cycle_duration_seconds",
    "msgprobe_last_cycle_timestamp_seconds",
    "msgprobe_vantage_online",
    "msgprobe_throttle_budget_used_bytes",
    "msgprobe_throttle_budget_bytes",
)


def _readme_figures() -> tuple[int, int]:
    text = (DEPLOY / "README.md").read_text()
    m = re.search(r"<!-- series-budget: steady=(\d+) worst=(\d+) -->", text)
    assert m, "deploy/README.md must state the budget in its series-budget marker"
    return int(m[1]), int(m[2])


def budget() -> tuple[int, int, int]:
    """(steady, worst, endpoints) for the built-in catalog."""
    if util.find_spec("probe.runner.tracker") is None:
        pytest.skip("msgprobe daemon not available")
    from probe.config.load import load_config
    from probe.export.metrics import render_families
    from probe.runner.tracker import Tracker
    from probe.vocab import Failure, Regime

    config = load_config(None)
    initial = sum(len(f.samples) for f in render_families(Tracker(config, started=0.0).snapshot))
    endpoints = [e for s in config.services for e in s.endpoints]
    checks = sum(len(e.checks) for e in endpoints)
    service_checks = len({(s.name, c.label) for s in config.services for e in s.endpoints for c in e.checks})
    steady = (
        initial
        + checks  # msgprobe_check_success, once a result exists
        + len(endpoints)  # msgprobe_endpoint_last_change_timestamp_seconds
        + len(endpoints)  # msgprobe_endpoint_goodput_bytes_per_second, once a result exists
        + len(Regime)  # msgprobe_vantage_regime, a state set
        + len(config.canaries)  # msgprobe_canary_up (none without a country; 4 for RU)
        + len(AFTER_FIRST_CYCLE)
        + 1  # up
    )
    # msgprobe_checks_total grows one series per (service, check, failure) seen.
    worst = steady + service_checks * len(Failure)
    return steady, worst, len(endpoints)


def test_readme_budget_matches_the_built_in_catalog() -> None:
    steady, worst, endpoints = budget()
    stated_steady, stated_worst = _readme_figures()
    # Rounded up in the README, but not by much: it is what watchdogs plan with.
    assert steady <= stated_steady <= steady * 1.1, f"steady state is {steady} series ({endpoints} endpoints)"
    assert worst <= stated_worst <= worst * 1.1, f"worst case is {worst} series"


def _raw_figures() -> tuple[int, int]:
    text = (DEPLOY / "README.md").read_text()
    m = re.search(r"<!-- series-budget-raw: per-endpoint=(\d+) catalog=(\d+) -->", text)
    assert m, "deploy/README.md must state what the raw checks add in its series-budget-raw marker"
    return int(m[1]), int(m[2])


def test_readme_states_what_the_packet_witnesses_add() -> None:
    # Every endpoint checked for both kinds and traced: the most the raw checks can add.
    if util.find_spec("probe.runner.tracker") is None:
        pytest.skip("msgprobe daemon not available")
    from dataclasses import replace

    from probe.analysis.censor_hop import CensorHop
    from probe.config.load import load_config
    from probe.export.metrics import render_families
    from probe.runner.tracker import Tracker
    from probe.state import CensorTrace, Snapshot

    snapshot = Tracker(load_config(None), started=0.0).snapshot
    witnessed = replace(
        snapshot,
        endpoints=tuple(
            replace(
                e,
                packets_checked=("dns", "reset"),
                packets_injected=("reset",),
                censor=CensorTrace(1.0, CensorHop(3, "reset", "10.0.0.1", None)),
            )
            for e in snapshot.endpoints
        ),
    )

    def count(s: Snapshot) -> int:
        return sum(len(f.samples) for f in render_families(s))

    added = count(witnessed) - count(snapshot)
    per_endpoint, catalog = _raw_figures()
    assert added == per_endpoint * len(snapshot.endpoints) == catalog
