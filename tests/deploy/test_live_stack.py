"""Live end-to-end: two msgprobe demo daemons, each scraped by its own
Prometheus agent (the shipped volunteer config) that remote-writes to a
central store with the shipped rules: a Prometheus (remote-write receiver),
then the same checks again on VictoriaMetrics with vmalert. Then every
recording rule, every alert expression and every dashboard query (template
variables filled in as Grafana would) runs against the central API and must
give the values the demo scenario implies. See live_stack.py for the setup.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from importlib import util
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.deploy.deploy_files import (
    TEMPLATE_VALUES,
    PanelQuery,
    panel_queries,
    rules,
    substitute,
    variable_queries,
)
from tests.deploy.live_stack import VANTAGES, WRITTEN, CentralStarter, Stack, running_stack, wait_for
from tests.deploy.victoria_stack import VictoriaTools, victoria_central

pytestmark = pytest.mark.slow

DATA_TIMEOUT = 150.0  # until both vantages' confirmed blocks are in the central store
SETTLE_TIMEOUT = 30.0  # for rules and rates to catch up with data that has arrived
FIRE_TIMEOUT = 90.0  # for MessengerNewBlock's 20 s `for` to pass and the evaluator to notify

# The demo scenario (probe.testbed.scenarios.DEMO): service -> blocking method.
BLOCKED = {
    "dns-nxdomain": "dns.nxdomain",
    "dns-no-answer": "dns.no_answer",
    "dns-refused": "dns.refused",
    "dns-timeout": "dns.timeout",
    "dns-bogon": "dns.bogon",
    "dns-inconsistent": "dns.inconsistent",
    "tls-reset": "tls.reset",
    "tls-timeout": "tls.timeout",
    "tls-mitm": "tls.mitm",
    "http-reset": "http.reset",
    "http-timeout": "http.timeout",
    "http-blockpage": "http.blockpage",
    "http-redirect": "http.redirect",
    "calls-blocked": "udp.blocked",
    # Proven by the demo's control peer.
    "tcp-refused": "tcp.refused",
    "tcp-timeout": "tcp.timeout",
    "http-diff": "http.diff",
    # The kinds DNS/TCP/TLS/HTTP cannot see (calls-blocked: udp.blocked above).
    "tcp-freeze": "tcp.freeze",
    "throttled": "throttled",
}
# Methods with alerts of their own (MessengerThrottled, MessengerCallsBlocked,
# ProbeWhitelistRegime), left out of MessengerNewBlock.
OWN_ALERTS = {"throttled": "MessengerThrottled", "udp.blocked": "MessengerCallsBlocked"}
NEW_BLOCKS = {s: m for s, m in BLOCKED.items() if m not in OWN_ALERTS}
STATUS = {
    **dict.fromkeys(BLOCKED, "blocked"),
    "clean-messenger": "ok",
    "website-down": "down",
}
CODE = {"ok": 1, "down": 2, "unknown": 3, "error": 4, "unreachable": 5, "blocked": 6}
VANTAGE_IDS = {v.id for v in VANTAGES}
SERVICE = TEMPLATE_VALUES["service"]  # the service the service dashboard is looked at with
# Panels about one kind of check, looked at with the demo service that has it.
PANEL_SERVICE = {
    ("msgprobe-service", "Goodput per endpoint"): "throttled",
    ("msgprobe-service", "Call reachability (STUN)"): "calls-blocked",
    ("msgprobe-service", "Packet evidence"): "tls-reset",
}

Result = list[dict[str, Any]]
Expectation = Callable[[Result], list[str]]


# --- reading results --------------------------------------------------------


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def by(result: Result, *labels: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for sample in result:
        key = tuple(sample["metric"].get(label, "") for label in labels)
        assert key not in out, f"two samples for {dict(zip(labels, key, strict=True))}"
        out[key] = value(sample)
    return out


def summed(result: Result, *labels: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for sample in result:
        key = tuple(sample["metric"].get(label, "") for label in labels)
        out[key] = out.get(key, 0.0) + value(sample)
    return out


def vantages_in(result: Result) -> set[str]:
    return {s["metric"].get("vantage", "") for s in result}


# --- expectations: each returns the problems it finds -----------------------


def nonempty(result: Result) -> list[str]:
    return [] if result else ["no data"]


def per_vantage(check: Callable[[float], bool], what: str) -> Expectation:
    """One sample per vantage, each satisfying ``check``."""

    def expect(result: Result) -> list[str]:
        got = by(result, "vantage")
        problems = [] if set(got) == {(v,) for v in VANTAGE_IDS} else [f"vantages {sorted(got)}"]
        problems += [f"{k[0]}: {v} is not {what}" for k, v in got.items() if not check(v)]
        return problems

    return expect


def scalar(check: Callable[[float], bool], what: str) -> Expectation:
    def expect(result: Result) -> list[str]:
        if len(result) != 1:
            return [f"{len(result)} samples, expected one"]
        v = value(result[0])
        return [] if check(v) else [f"{v} is not {what}"]

    return expect


def equals(n: float) -> Callable[[float], bool]:
    return lambda v: v == n


def status_codes(service: str | None = None) -> Expectation:
    """msgprobe:service_status:code for every (vantage, service) of the scenario."""

    def expect(result: Result) -> list[str]:
        got = by(result, "vantage", "service")
        wanted = {
            (v, s): float(CODE[status])
            for v in VANTAGE_IDS
            for s, status in STATUS.items()
            if service is None or s == service
        }
        return [] if got == wanted else [f"got {sorted(got.items())}, want {sorted(wanted.items())}"]

    return expect


def blocked_methods(only_ones: bool, blocks: dict[str, str] = BLOCKED) -> Expectation:
    def expect(result: Result) -> list[str]:
        got = by(result, "vantage", "service", "method")
        ones = {k for k, v in got.items() if v == 1}
        wanted = {(v, s, m) for v in VANTAGE_IDS for s, m in blocks.items()}
        problems = [] if ones == wanted else [f"blocked: missing {wanted - ones}, extra {ones - wanted}"]
        if only_ones and len(got) != len(ones):
            problems.append("samples other than 1")
        return problems

    return expect


def endpoint_blocked_by(method: str) -> Expectation:
    """The one demo service blocked by ``method``, at its one endpoint, in every vantage."""
    (service,) = [s for s, m in BLOCKED.items() if m == method]

    def expect(result: Result) -> list[str]:
        got = by(result, "vantage", "service", "endpoint", "method")
        wanted = {(v, service, f"{service}.msgprobe.test", method): 1.0 for v in VANTAGE_IDS}
        return [] if got == wanted else [f"got {got}, want {wanted}"]

    return expect


def per_vantage_and(label: str, wanted: dict[str, float]) -> Expectation:
    """Exactly these values of ``label`` in every vantage."""

    def expect(result: Result) -> list[str]:
        got = by(result, "vantage", label)
        want = {(v, k): n for v in VANTAGE_IDS for k, n in wanted.items()}
        return [] if got == want else [f"got {got}, want {want}"]

    return expect


def stun_checks_silent(result: Result) -> list[str]:
    # calls-blocked: its relay swallows every datagram.
    got = by(result, "vantage", "endpoint", "check")
    problems = [] if {k[0] for k in got} == VANTAGE_IDS else [f"not every vantage: {got}"]
    return problems + [f"{k}: {v}, want 0" for k, v in got.items() if v != 0 or not k[2].startswith("stun:")]


def empty(result: Result) -> list[str]:
    return [] if not result else [f"expected nothing, got {result[:3]}"]


def service_endpoint_status(status: str, metric: str = "status") -> Expectation:
    def expect(result: Result) -> list[str]:
        got = by(result, "vantage", metric)
        wanted = {(v, status): 1.0 for v in VANTAGE_IDS}
        return [] if got == wanted else [f"got {got}, want {wanted}"]

    return expect


def check_results(result: Result) -> list[str]:
    # tls-reset: DNS and TCP succeed, the TLS handshake is reset.
    got = by(result, "vantage", "check")
    problems = [] if {k[0] for k in got} == VANTAGE_IDS else ["not every vantage"]
    for (vantage, check), v in got.items():
        want = 0.0 if check.startswith(("tls", "http")) else 1.0
        if v != want:
            problems.append(f"{vantage} {check}: {v}, want {want}")
    if not any(c.startswith("tls") for _, c in got):
        problems.append("no tls check")
    return problems


def latencies(result: Result) -> list[str]:
    finite = [s for s in result if math.isfinite(value(s))]
    problems = [] if vantages_in(finite) == VANTAGE_IDS else [f"finite values only for {vantages_in(finite)}"]
    problems += [f"{s['metric']}: negative" for s in finite if value(s) < 0]
    return problems


def failures_include(failure: str) -> Expectation:
    def expect(result: Result) -> list[str]:
        got = by(result, "vantage", "failure")
        return [f"{v}: no {failure}" for v in VANTAGE_IDS if got.get((v, failure), 0) <= 0]

    return expect


def recent_timestamps_ms(result: Result) -> list[str]:
    now_ms = time.time() * 1000
    problems = [] if vantages_in(result) == VANTAGE_IDS else ["not every vantage"]
    problems += [
        f"{value(s)} not within the last 10 minutes" for s in result if not 0 < now_ms - value(s) < 600_000
    ]
    return problems


def has_version(result: Result) -> list[str]:
    problems = [] if vantages_in(result) == VANTAGE_IDS else ["not every vantage"]
    return problems + [f"{s['metric']}: no version" for s in result if not s["metric"].get("version")]


def failures_per_vantage(result: Result) -> list[str]:
    got = summed(result, "vantage", "failure")
    return [
        f"{v}: no failures counted"
        for v in VANTAGE_IDS
        if not any(k[0] == v and n > 0 for k, n in got.items())
    ]


# Every panel's expected instant value, by (dashboard uid, panel title, refId).
PANELS: dict[tuple[str, str, str], Expectation] = {
    ("msgprobe-fleet", "Vantages online", "A"): scalar(equals(2), "2"),
    ("msgprobe-fleet", "Vantages offline", "A"): scalar(equals(0), "0"),
    ("msgprobe-fleet", "Services blocked somewhere", "A"): scalar(equals(len(BLOCKED)), str(len(BLOCKED))),
    ("msgprobe-fleet", "Blocks (service × vantage)", "A"): scalar(equals(2 * len(BLOCKED)), "one per pair"),
    ("msgprobe-fleet", "Service × vantage", "A"): status_codes(),
    ("msgprobe-fleet", "Current blocks", "A"): blocked_methods(only_ones=True),
    ("msgprobe-fleet", "Blocked services per vantage", "A"): per_vantage(
        equals(len(BLOCKED)), str(len(BLOCKED))
    ),
    ("msgprobe-fleet", "Service status over time", "A"): status_codes(),
    ("msgprobe-service", "Status per vantage", "A"): status_codes(SERVICE),
    ("msgprobe-service", "Endpoints now", "A"): service_endpoint_status("blocked"),
    ("msgprobe-service", "Blocked endpoints and methods", "A"): service_endpoint_status(
        BLOCKED[SERVICE], "method"
    ),
    ("msgprobe-service", "Blocking methods over time", "A"): lambda r: (
        [] if by(r, "method") == {(BLOCKED[SERVICE],): 2.0} else [f"got {by(r, 'method')}"]
    ),
    ("msgprobe-service", "Checks per endpoint", "A"): check_results,
    ("msgprobe-service", "Check latency (p50, p90 over 1h)", "A"): latencies,
    ("msgprobe-service", "Check latency (p50, p90 over 1h)", "B"): latencies,
    ("msgprobe-service", "Failures per hour", "A"): failures_include("connection_reset"),
    ("msgprobe-service", "Last status change", "A"): recent_timestamps_ms,
    ("msgprobe-service", "Latest raw status (unconfirmed)", "A"): service_endpoint_status("blocked"),
    ("msgprobe-probe-health", "Scrape", "A"): per_vantage(equals(1), "up"),
    ("msgprobe-probe-health", "Vantage online", "A"): per_vantage(equals(1), "online"),
    ("msgprobe-probe-health", "Since last cycle", "A"): per_vantage(lambda v: -5 < v < 60, "under a minute"),
    ("msgprobe-probe-health", "Uptime", "A"): per_vantage(lambda v: 0 <= v < 3600, "since the test began"),
    ("msgprobe-probe-health", "Version and identity", "A"): has_version,
    ("msgprobe-probe-health", "Cycle duration", "A"): per_vantage(lambda v: 0 < v < 60, "a cycle's length"),
    ("msgprobe-probe-health", "Cycles per hour", "A"): per_vantage(lambda v: v > 0, "positive"),
    ("msgprobe-probe-health", "Check failures per hour", "A"): failures_per_vantage,
    ("msgprobe-probe-health", "Series per vantage", "A"): per_vantage(lambda v: v > 100, "the demo's series"),
    ("msgprobe-probe-health", "Config reload", "A"): per_vantage(equals(1), "successful"),
    ("msgprobe-probe-health", "Control peers answering", "A"): per_vantage(equals(1), "the demo's peer"),
    # Throttling, calls and regimes.
    # Goodput of the throttled service's real SNI: the demo's censor polices it to 32 kB/s.
    ("msgprobe-service", "Goodput per endpoint", "A"): per_vantage(lambda v: 0 < v < 100_000, "policed"),
    ("msgprobe-service", "Call reachability (STUN)", "A"): stun_checks_silent,
    ("msgprobe-fleet", "Vantage regime", "A"): per_vantage(equals(1), "online"),
    ("msgprobe-fleet", "Call reachability per service", "A"): per_vantage_and(
        "service", {"calls-blocked": 0}
    ),
    ("msgprobe-probe-health", "Throttle byte budget", "A"): per_vantage(lambda v: v > 0, "spent by the demo"),
    ("msgprobe-probe-health", "Throttle byte budget", "B"): per_vantage(equals(5_000_000), "the default cap"),
    ("msgprobe-probe-health", "Domestic canaries", "A"): per_vantage_and(
        "canary", {"max.msgprobe.test": 1, "ya.msgprobe.test": 1}
    ),
    # Packet witnesses. The demo runs no raw check (its config leaves `raw` off: NET_RAW is
    # not the demo's to assume, and loopback has no routers to walk), so both families must
    # be absent, not 0: a 0 would claim the packets were looked at and found genuine.
    ("msgprobe-service", "Packet evidence", "A"): empty,
    ("msgprobe-service", "Packet evidence", "B"): empty,
}

RULES: dict[str, Expectation] = {
    "msgprobe:service_status:code": status_codes(),
    "msgprobe:service_blocked_by_method:max": blocked_methods(only_ones=False),
    "msgprobe:services_blocked:sum": per_vantage(equals(len(BLOCKED)), str(len(BLOCKED))),
    "msgprobe:check_duration_seconds:p50_1h": latencies,
    "msgprobe:check_duration_seconds:p90_1h": latencies,
    "msgprobe:check_failures:increase1h": failures_per_vantage,
    # Every confirmed block is new: nothing was blocked an hour ago (no data then);
    # throttling and blocked calls have alerts of their own.
    "MessengerNewBlock": blocked_methods(only_ones=True, blocks=NEW_BLOCKS),
    "MessengerThrottled": endpoint_blocked_by("throttled"),
    "MessengerCallsBlocked": endpoint_blocked_by("udp.blocked"),
    "ProbeWhitelistRegime": empty,  # the demo vantages are online
    # Nothing was lifted, both vantages agree, every probe is up, measuring and online.
    "MessengerBlockLifted": empty,
    "MessengerUnreachableOnlyHere": empty,
    "ProbeDown": empty,
    "ProbeStale": empty,
    "ProbeNotMeasuring": empty,
    "ProbeVantageOffline": empty,
    "ProbeControlUnreachable": empty,
}


# --- the stack --------------------------------------------------------------


# The central store: a Prometheus, or VictoriaMetrics with vmalert (victoria_stack.py).
# Module-scoped and run one after the other: pytest closes one stack before it
# starts the next, so the two never load the machine at once.
BACKENDS = ("prometheus", "victoria-metrics")


def _central(backend: str) -> CentralStarter | None:
    if backend == "prometheus":
        return None
    return victoria_central(VictoriaTools(require_tool("victoria-metrics"), require_tool("vmalert")))


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if util.find_spec("probe.cli") is None:
        pytest.skip("msgprobe daemon not available")
    prometheus = require_tool("prometheus")  # the agents
    central = _central(request.param)
    workdir: Path = tmp_path_factory.mktemp(f"stack-{request.param}")
    with running_stack(workdir, prometheus, central=central) as s:

        def arrived() -> list[str]:
            # Every confirmed block, the slow ones too (throttle pairs run at the policed rate).
            got = by(s.query("msgprobe_service_blocked == 1"), "vantage", "service")
            wanted = {(v, service): 1.0 for v in VANTAGE_IDS for service in BLOCKED}
            return [] if got == wanted else [f"blocked: missing {sorted(wanted.keys() - got.keys())}"]

        problems = wait_for(arrived, DATA_TIMEOUT)
        if problems:
            pytest.fail(f"no confirmed verdicts centrally after {DATA_TIMEOUT}s: {problems}\n{s.logs()}")
        yield s


def _settle(stack: Stack, checks: dict[str, Callable[[], list[str]]]) -> None:
    def run_all() -> list[str]:
        problems = []
        for name, check in checks.items():
            problems += [f"{name}: {p}" for p in check()]
        return problems

    problems = wait_for(run_all, SETTLE_TIMEOUT)
    assert not problems, "\n".join(problems) + "\n" + stack.logs()


def test_verdicts_arrive_with_the_vantage_labels_and_nothing_else(stack: Stack) -> None:
    # The fixture waited for the blocks only; the ok and down verdicts and `up`
    # may be a remote-write batch behind them: wait for each, never for a time.
    wanted = {
        (v.id, v.country, v.asn, s): 1.0 if status == "blocked" else 0.0
        for v in VANTAGES
        for s, status in STATUS.items()
    }

    def verdicts() -> list[str]:
        got = by(stack.query("msgprobe_service_blocked"), "vantage", "country", "asn", "service")
        return [] if got == wanted else [f"got {sorted(got.items())}"]

    def shipped() -> list[str]:
        # write_relabel_configs: only msgprobe's series and `up` leave the agent.
        written = stack.query(f'count by (__name__) ({{__name__=~".+", {WRITTEN}}})')
        names = {s["metric"]["__name__"] for s in written}
        problems = [f"{n} not arrived" for n in ("up", "msgprobe_endpoint_status") if n not in names]
        return problems + [
            f"shipped {n}" for n in sorted(names) if n != "up" and not n.startswith("msgprobe_")
        ]

    def up_per_vantage() -> list[str]:
        got = by(stack.query('up{job="msgprobe", instance="msgprobe"}'), "vantage", "country", "asn")
        want = {(v.id, v.country, v.asn): 1.0 for v in VANTAGES}
        return [] if got == want else [f"up: {got}"]

    _settle(stack, {"verdicts": verdicts, "shipped": shipped, "up": up_per_vantage})
    # The identity comes from the agent, never as a clashing scraped label.
    assert not stack.query('{__name__=~"msgprobe_.+", exported_country!=""}')


def test_every_recording_rule_and_alert_expression_gives_the_scenario(stack: Stack) -> None:
    shipped = rules()
    assert {r.name for r in shipped} == set(RULES), "every rule needs an expectation here"

    def checking(name: str, expr: str) -> Callable[[], list[str]]:
        return lambda: RULES[name](stack.query(expr))

    checks = {r.name: checking(r.name, r.expr) for r in shipped}
    # The recorded series themselves, as dashboards read them.
    checks |= {f"recorded {r.name}": checking(r.name, r.name) for r in shipped if r.kind == "record"}
    _settle(stack, checks)


ALERTED = {"MessengerNewBlock", *OWN_ALERTS.values()}


def test_new_blocks_are_pending_until_their_for_then_firing(stack: Stack) -> None:
    def alerts() -> list[str]:
        active = stack.alerts()
        new = [a for a in active if a["labels"]["alertname"] in ALERTED]
        got = {
            (a["labels"]["alertname"], a["labels"]["vantage"], a["labels"]["service"], a["labels"]["method"])
            for a in new
        }
        wanted = {
            (OWN_ALERTS.get(m, "MessengerNewBlock"), v, s, m) for v in VANTAGE_IDS for s, m in BLOCKED.items()
        }
        problems = [] if got == wanted else [f"missing {wanted - got}, extra {got - wanted}"]
        # MessengerNewBlock's `for` is 20 s in the live copy: pending, then firing (the next test);
        # the own alerts keep their shipped `for`, longer than this test.
        problems += [f"{a['labels']}: {a['state']}" for a in new if a["state"] not in {"pending", "firing"}]
        for a in new:
            vantage = next(v for v in VANTAGES if v.id == a["labels"]["vantage"])
            if (a["labels"]["country"], a["labels"]["asn"]) != (vantage.country, vantage.asn):
                problems.append(f"{a['labels']}: wrong identity")
            if a["labels"]["severity"] != "warning" or a["labels"]["category"] != "censorship":
                problems.append(f"{a['labels']}: routing labels")
        others = {a["labels"]["alertname"] for a in active} - ALERTED
        return problems + ([f"unexpected alerts {others}"] if others else [])

    def alerts_series() -> list[str]:
        # Prometheus writes ALERTS itself; vmalert writes it by remote write, a flush later.
        pending = stack.query('ALERTS{alertname="MessengerNewBlock", alertstate=~"pending|firing"}')
        return [] if len(pending) == 2 * len(NEW_BLOCKS) else [f"ALERTS: {len(pending)} series"]

    _settle(stack, {"alerts": alerts, "ALERTS": alerts_series})


def test_new_blocks_fire_and_reach_the_notifier(stack: Stack) -> None:
    wanted = {(v, s) for v in VANTAGE_IDS for s in NEW_BLOCKS}

    def fired() -> list[str]:
        firing = {
            (a["labels"]["vantage"], a["labels"]["service"])
            for a in stack.alerts()
            if a["labels"]["alertname"] == "MessengerNewBlock" and a["state"] == "firing"
        }
        sent = {
            (a["labels"].get("vantage"), a["labels"].get("service"))
            for a in stack.notifier.alerts()
            if a.get("labels", {}).get("alertname") == "MessengerNewBlock"
        }
        problems = [f"not firing: {sorted(wanted - firing)}"] if wanted - firing else []
        problems += [f"not sent to the notifier: {sorted(wanted - sent)}"] if wanted - sent else []
        return problems + ([f"sent for no block: {sorted(sent - wanted)}"] if sent - wanted else [])

    problems = wait_for(fired, FIRE_TIMEOUT)
    assert not problems, "\n".join(problems) + "\n" + stack.logs()


def _panel_check(stack: Stack, q: PanelQuery) -> list[str]:
    service = PANEL_SERVICE.get((q.dashboard, q.panel), SERVICE)
    expr = substitute(q.expr, {**TEMPLATE_VALUES, "service": service})
    problems = PANELS[(q.dashboard, q.panel, q.ref)](stack.query(expr))
    if not q.instant:  # Grafana asks time series panels for a range
        problems += [f"range: {p}" for p in nonempty(stack.query_range(expr))]
    return problems


def test_every_dashboard_query_gives_the_scenario(stack: Stack) -> None:
    queries = panel_queries()
    assert {(q.dashboard, q.panel, q.ref) for q in queries} == set(PANELS), (
        "every panel needs an expectation here"
    )

    def checking(q: PanelQuery) -> Callable[[], list[str]]:
        return lambda: _panel_check(stack, q)

    _settle(stack, {q.id: checking(q) for q in queries})


def test_every_dashboard_variable_lists_the_fleet(stack: Stack) -> None:
    wanted = {
        "country": {v.country for v in VANTAGES},
        "asn": {v.asn for v in VANTAGES},
        "vantage": VANTAGE_IDS,
        "service": set(STATUS),
    }

    def variables() -> list[str]:
        problems = []
        for v in variable_queries():
            # What Grafana's label_values(selector, label) asks Prometheus.
            got = set(stack.api(f"label/{v.label}/values", **{"match[]": substitute(v.metric_selector)}))
            if got != wanted[v.name]:
                problems.append(f"{v.dashboard} ${v.name}: {sorted(got)}")
        return problems

    _settle(stack, {"variables": variables})


def test_series_per_vantage(stack: Stack, record_property: Callable[[str, object], None]) -> None:
    # Reported, for the series budget in deploy/README.md (21 demo endpoints here).
    got: dict[tuple[str, ...], float] = {}

    def counted() -> list[str]:
        got.clear()
        got.update(by(stack.query('count by (vantage) ({__name__=~"msgprobe_.+|up"})'), "vantage"))
        problems = [] if set(got) == {(v,) for v in VANTAGE_IDS} else [f"vantages {sorted(got)}"]
        return problems + [
            f"{k[0]}: {n} series for 21 endpoints" for k, n in got.items() if not 100 < n < 3000
        ]

    _settle(stack, {"series": counted})
    for (vantage,), n in got.items():
        record_property(f"series_{stack.backend}_{vantage}", n)
