"""The registry of check kinds: every kind is complete, and a new kind is one module.

``head_kind`` (one module, one table entry) is parsed from a catalog,
measured on the loopback censor's real sockets, analysed, tracked and
exported, without any other file of the probe knowing it exists.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from probe.checks import REGISTRY, applicable_methods, parse_check, usage
from probe.checks.spec import CheckSpec, PortContext
from probe.config.catalog import load_catalog
from probe.config.model import Check, Config
from probe.export.metrics import SnapshotCollector
from probe.export.records import result_record
from probe.measure.toolkit import open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.runner.tracker import Tracker
from probe.testbed.middlebox import Reset
from probe.testbed.scenarios import DEMO, FakeService, LoopbackCensor
from probe.vocab import CheckKind, Method, Status
from tests.checks import head_kind
from tests.e2e.harness import FINGERPRINTS

# Scenarios beyond the demo that exercise a kind the demo does not.
EXTRA = (
    FakeService("post-clean", checks=("dns", "tcp", "http_post")),
    FakeService("freeze-clean", checks=("dns", "tcp", "tls", "freeze")),
    FakeService("stun-clean", checks=("dns", "stun")),
    FakeService("throttle-clean", checks=("dns", "tls", "throttle")),
)
_SYMBOLS = {
    "dns": "dns",
    "tcp": "tcp",
    "tls": "tls",
    "https": "http",
    "http": "http",
    "http_post": "http_post",
    "freeze": "freeze",
    "stun": "stun",
    "throttle": "throttle",
}


@pytest.fixture
def with_head(monkeypatch: pytest.MonkeyPatch) -> Iterator[CheckSpec]:
    monkeypatch.setitem(REGISTRY, head_kind.KIND, head_kind.SPEC)
    yield head_kind.SPEC


def test_every_registered_kind_has_usage_methods_rows_and_a_testbed_scenario() -> None:
    scenario_kinds = {_SYMBOLS[c.split(":")[0]] for fake in DEMO + EXTRA for c in fake.checks}
    for kind, spec in REGISTRY.items():
        assert spec.kind == kind
        assert spec.usage in usage()
        assert all(isinstance(m, Method) for m in spec.methods), kind
        assert callable(spec.rows) and callable(spec.findings)
        assert kind in scenario_kinds, f"no testbed scenario measures {kind}"
    # Every method a kind can prove is shown on the censor's sockets: by a demo
    # scenario (tests/e2e/test_censor.py), the injector (tests/e2e/test_dns_injection.py),
    # or with a control peer (tests/e2e/test_controls.py).
    from tests.e2e.test_censor import BLOCKED
    from tests.e2e.test_controls import PROVEN
    from tests.e2e.test_freeze import PROVEN as FREEZE_PROVEN

    shown = {*BLOCKED.values(), Method.DNS_INJECTED, *PROVEN, *FREEZE_PROVEN}
    for method in {m for spec in REGISTRY.values() for m in spec.methods}:
        assert method in shown, method


def test_each_kind_yields_rows_on_the_censor() -> None:
    _, cycle = asyncio.run(_cycle([FakeService("clean-messenger"), *EXTRA], extra_checks=()))
    kinds = {row.check.split(":")[0] for r in cycle.results for row in r.checks}
    assert kinds == set(REGISTRY) - {head_kind.KIND}
    assert all(r.verdict.status is Status.OK for r in cycle.results), [r.verdict for r in cycle.results]


def test_a_new_kind_is_parsed_from_the_catalog(with_head: CheckSpec, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "services:\n  - name: chat\n    endpoints:\n"
        "      - host: chat.example\n        checks: [dns, 'head:80']\n"
    )
    (service,) = load_catalog(catalog)
    assert service.endpoints[0].checks[1] == Check(head_kind.KIND, port=80)
    assert service.endpoints[0].checks[1].label == "head:80"
    assert "head:PORT" in usage()
    with pytest.raises(ValueError, match=r"needs a port"):
        parse_check("head:x", "chat.example")


def test_a_new_kind_is_measured_analysed_tracked_and_exported(with_head: CheckSpec) -> None:
    config, cycle = asyncio.run(_cycle([FakeService("clean-messenger")], extra_checks=("head",)))
    (result,) = cycle.results
    assert result.verdict.status is Status.OK, result.verdict
    head_rows = [row for row in result.checks if row.check.startswith("head:")]
    assert head_rows and all(row.ok for row in head_rows)
    (observation,) = [o for o in result.observations.other if isinstance(o, head_kind.HeadObservation)]
    assert observation.status_line.startswith("HTTP/1.")
    # Its request rode the TCP check's own connection: one connect for the port.
    port = head_rows[0].check.split(":")[1]
    connects = [e for e in result.observations.trace if e.operation == "connect" and str(e.port) == port]
    assert len(connects) == 1
    assert json.dumps(result_record(result))  # schema 2 renders what the kind recorded

    endpoint = config.services[0].endpoints[0]
    assert Method.HTTP_RESET in applicable_methods(endpoint)
    tracker = Tracker(config, started=0.0)
    tracker.apply(cycle)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: tracker.snapshot))
    labels = {"service": "clean-messenger", "endpoint": endpoint.host, "check": head_rows[0].check}
    assert registry.get_sample_value("msgprobe_check_success", labels) == 1.0


def test_a_kind_that_raises_costs_only_its_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(ctx: PortContext, check: Check) -> None:
        raise RuntimeError("a bug in a new kind")

    monkeypatch.setitem(REGISTRY, head_kind.KIND, replace(head_kind.SPEC, run=boom))
    fakes = [FakeService("clean-messenger"), FakeService("tls-reset", tls=Reset())]
    _, cycle = asyncio.run(_cycle(fakes, extra_checks=("head",), only="clean-messenger"))
    by = {r.service: r for r in cycle.results}
    broken = by["clean-messenger"].verdict
    assert (broken.status, broken.evidence) == (Status.ERROR, "probe error: RuntimeError")
    assert by["tls-reset"].verdict.method is Method.TLS_RESET
    assert cycle.vantage_online


async def _cycle(
    fakes: list[FakeService], *, extra_checks: tuple[str, ...], only: str = ""
) -> tuple[Config, CycleResult]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=len(fakes)) as bed:
            services = [await bed.add(f) for f in fakes]
            if extra_checks:
                services = [
                    s
                    if only and s.name != only
                    else replace(
                        s,
                        endpoints=tuple(
                            replace(e, checks=(*e.checks, Check(head_kind.KIND, port=bed.http_port)))
                            for e in s.endpoints
                        ),
                    )
                    for s in services
                ]
            config = bed.config(services)
            async with open_toolkit(config) as kit:
                return config, await run_cycle(kit, FINGERPRINTS, config.services)


def test_builtin_kinds_are_the_vocabulary() -> None:
    assert set(REGISTRY) == {k.value for k in CheckKind}
