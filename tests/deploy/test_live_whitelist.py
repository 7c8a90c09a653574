"""Live end-to-end for the whitelist regime: one `msgprobe demo` online and one
behind the demo's white-list censor (`--regime whitelist`: only the domestic
canaries get through), each with its own agent, into one central Prometheus
with the shipped rules. The regime must be one ProbeWhitelistRegime for that
vantage, never a new block per service nor an offline vantage, while the
online vantage's blocks stay new blocks. See live_stack.py for the setup.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import util
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.deploy.deploy_files import panel_queries, rules, substitute
from tests.deploy.live_stack import Stack, Vantage, running_stack, wait_for

pytestmark = pytest.mark.slow

DATA_TIMEOUT = 90.0  # until both vantages' regimes and confirmed verdicts are in the central store
SETTLE_TIMEOUT = 30.0

# ISO 3166 user-assigned codes and documentation ASNs (RFC 5398): nobody's real network.
ONLINE = Vantage("xa-1", "XA", "64500")
WHITELISTED = Vantage("xc-1", "XC", "64502")
CANARIES = {"max.msgprobe.test", "ya.msgprobe.test"}  # probe.testbed.whitelist.CANARIES

Result = list[dict[str, Any]]


def _by(result: Result, *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(s["metric"].get(label, "") for label in labels): float(s["value"][1]) for s in result}


def _alert_expr(name: str) -> str:
    (rule,) = [r for r in rules() if r.name == name]
    return rule.expr


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if util.find_spec("probe.cli") is None:
        pytest.skip("msgprobe daemon not available")
    prometheus = require_tool("prometheus")
    workdir: Path = tmp_path_factory.mktemp("whitelist-stack")
    vantages = (ONLINE, WHITELISTED)
    with running_stack(workdir, prometheus, vantages, {WHITELISTED.id: "whitelist"}) as s:

        def arrived() -> list[str]:
            regimes = _by(s.query("msgprobe_vantage_regime == 1"), "vantage", "regime")
            blocked = _by(s.query('msgprobe_service_blocked{service="tls-reset"}'), "vantage")
            want = {(ONLINE.id, "online"): 1.0, (WHITELISTED.id, "whitelist"): 1.0}
            problems = [] if regimes == want else [f"regimes {regimes}"]
            return problems + (
                [] if blocked == {(ONLINE.id,): 1.0, (WHITELISTED.id,): 1.0} else [f"{blocked}"]
            )

        problems = wait_for(arrived, DATA_TIMEOUT)
        if problems:
            pytest.fail(f"no regimes centrally after {DATA_TIMEOUT}s: {problems}\n{s.logs()}")
        yield s


def _settle(stack: Stack, check: Any) -> None:
    problems = wait_for(check, SETTLE_TIMEOUT)
    assert not problems, "\n".join(problems) + "\n" + stack.logs()


def test_the_regime_is_one_alert_for_its_vantage_only(stack: Stack) -> None:
    def check() -> list[str]:
        got = _by(stack.query(_alert_expr("ProbeWhitelistRegime")), "vantage", "country", "asn")
        want = {(WHITELISTED.id, WHITELISTED.country, WHITELISTED.asn): 1.0}
        problems = [] if got == want else [f"ProbeWhitelistRegime: {got}"]
        alerts = [
            a for a in stack.api("alerts")["alerts"] if a["labels"]["alertname"] == "ProbeWhitelistRegime"
        ]
        states = {(a["labels"]["vantage"], a["state"]) for a in alerts}
        # `for: 15m` is longer than this test: pending (firing only on a very slow machine).
        if {v for v, _ in states} != {WHITELISTED.id} or not {s for _, s in states} <= {"pending", "firing"}:
            problems.append(f"alerts {states}")
        for a in alerts:
            if (a["labels"]["severity"], a["labels"]["category"]) != ("warning", "censorship"):
                problems.append(f"{a['labels']}: routing labels")
        return problems

    _settle(stack, check)


def test_no_block_per_service_and_no_offline_vantage_under_the_regime(stack: Stack) -> None:
    def check() -> list[str]:
        problems = []
        new = _by(stack.query(_alert_expr("MessengerNewBlock")), "vantage", "service", "method")
        if any(v == WHITELISTED.id for v, _, _ in new):
            problems.append(
                f"new blocks from the whitelisted vantage: {sorted(k for k in new if k[0] == WHITELISTED.id)}"
            )
        if (ONLINE.id, "tls-reset", "tls.reset") not in new:
            problems.append(f"the online vantage's blocks are no longer new: {sorted(new)}")
        for name in ("ProbeVantageOffline", "MessengerUnreachableOnlyHere", "MessengerBlockLifted"):
            fired = {s["metric"].get("vantage") for s in stack.query(_alert_expr(name))}
            if WHITELISTED.id in fired:
                problems.append(f"{name} for the whitelisted vantage")
        # Under the regime, what is blocked is blocked by `whitelist`, and nothing else.
        methods = {
            k[1] for k, v in _by(stack.query(f'msgprobe_endpoint_blocked{{vantage="{WHITELISTED.id}"}}'),
                                 "endpoint", "method").items() if v == 1
        }  # fmt: skip
        if methods != {"whitelist"}:
            problems.append(f"methods in the whitelisted vantage: {methods}")
        return problems

    _settle(stack, check)


def test_the_regime_and_canary_panels_show_it(stack: Stack) -> None:
    (regime,) = [q for q in panel_queries() if q.panel == "Vantage regime"]
    (canaries,) = [q for q in panel_queries() if q.panel == "Domestic canaries"]

    def check() -> list[str]:
        problems = []
        got = _by(stack.query(substitute(regime.expr)), "vantage")
        if got != {(ONLINE.id,): 1.0, (WHITELISTED.id,): 2.0}:  # 1 online, 2 whitelist
            problems.append(f"Vantage regime: {got}")
        up = _by(stack.query(substitute(canaries.expr)), "vantage", "canary")
        want = {(v.id, c): 1.0 for v in (ONLINE, WHITELISTED) for c in CANARIES}
        if up != want:
            problems.append(f"Domestic canaries: {up}")
        return problems

    _settle(stack, check)
