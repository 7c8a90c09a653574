"""Resolvers that answer with CNAMEs only: a chain is followed across queries
(bounded), and a resolver that answers every name that way (the canary
included) is broken, not censoring: never ``dns.no_answer``."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from probe.measure.toolkit import open_toolkit
from probe.model import EndpointResult
from probe.runner.cycle import run_cycle
from probe.testbed.resolver import Answer, Cname, Unrelated
from probe.testbed.scenarios import CANARY, FakeService, LoopbackCensor
from probe.vocab import Failure, Method, Operation, Purpose, Status
from tests.e2e.harness import FINGERPRINTS

Rules = Callable[[LoopbackCensor, str], None]


def _measure(fake: FakeService, rules: Rules) -> EndpointResult:
    async def go() -> EndpointResult:
        with tempfile.TemporaryDirectory(prefix="msgprobe-cname-") as workdir:
            async with LoopbackCensor(Path(workdir), max_services=1) as bed:
                service = await bed.add(fake)
                rules(bed, str(service.expected.prefixes[0].network_address))
                config = bed.config([service])
                async with open_toolkit(config) as kit:
                    cycle = await run_cycle(kit, FINGERPRINTS, config.services)
                return cycle.results[0]

    return asyncio.run(go())


def test_a_chain_answered_one_link_at_a_time_is_followed() -> None:
    edge = "edge.linked.msgprobe.test"

    def rules(bed: LoopbackCensor, ip: str) -> None:
        bed.resolver.rules["linked.msgprobe.test"] = Cname(edge)
        bed.resolver.rules[edge] = Answer([ip])

    result = _measure(FakeService("linked"), rules)
    assert result.verdict.status is Status.OK, result.verdict
    (a,) = [o for o in result.observations.dns if o.role == "probe" and o.qtype == "A"]
    assert a.cnames == (edge,) and a.addresses
    queries = [e.detail for e in result.observations.trace if e.operation is Operation.DNS_QUERY]
    assert any(d.startswith(f"{edge} A") for d in queries), queries


def test_a_resolver_answering_every_name_with_a_dead_cname_blocks_nothing() -> None:
    def rules(bed: LoopbackCensor, ip: str) -> None:
        bed.resolver.rules["chatty.msgprobe.test"] = Cname("nowhere.isp.test")
        bed.resolver.rules[CANARY] = Cname("nowhere.isp.test")
        bed.resolver.rules["nowhere.isp.test"] = Answer([])  # an empty NOERROR at the end of the chain

    result = _measure(FakeService("chatty"), rules)
    assert result.verdict.status is not Status.BLOCKED, result.verdict
    assert "answers no other name" in result.verdict.evidence


def test_a_dead_cname_for_one_name_while_the_canary_resolves_is_no_answer() -> None:
    def rules(bed: LoopbackCensor, ip: str) -> None:
        bed.resolver.rules["sunk.msgprobe.test"] = Cname("sinkhole.isp.test")
        bed.resolver.rules["sinkhole.isp.test"] = Answer([])

    result = _measure(FakeService("sunk"), rules)
    assert (result.verdict.status, result.verdict.method) == (Status.BLOCKED, Method.DNS_NO_ANSWER)
    assert {w.kind for w in result.verdict.witnesses} >= {"control", "canary"}


def test_a_cname_loop_ends() -> None:
    def rules(bed: LoopbackCensor, ip: str) -> None:
        bed.resolver.rules["loop.msgprobe.test"] = Cname("a.loop.test")
        bed.resolver.rules["a.loop.test"] = Cname("b.loop.test")
        bed.resolver.rules["b.loop.test"] = Cname("a.loop.test")

    result = _measure(FakeService("loop"), rules)
    queries = [e for e in result.observations.trace if e.operation is Operation.DNS_QUERY]
    assert len(queries) <= 2 * (1 + 4) + 4  # A and AAAA, each at most 4 links, plus control and canary
    assert result.verdict.status is not Status.ERROR


def test_records_owned_by_another_name_are_never_adopted() -> None:
    def rules(bed: LoopbackCensor, ip: str) -> None:
        bed.resolver.rules["stray.msgprobe.test"] = Unrelated("elsewhere.isp.test", [ip])

    result = _measure(FakeService("stray"), rules)
    (a,) = [o for o in result.observations.dns if o.role == "probe" and o.qtype == "A"]
    assert a.addresses == () and a.failure is Failure.DNS_NO_ANSWER
    assert not [o for o in result.observations.tcp if o.purpose is Purpose.CHECK]  # nothing connected to
    assert (result.verdict.status, result.verdict.method) == (Status.BLOCKED, Method.DNS_NO_ANSWER)
