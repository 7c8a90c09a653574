"""Throttling against the loopback censor's real sockets (``Throttle`` policer
keyed on the SNI), and the byte budget counted at a real server.

- T0: a policed HTTPS download that times out after progress reads as a
  slow transfer with its bytes, never ``blocked http.timeout``;
- T1: the throttle check's pairs make it ``blocked throttled`` with the
  decoy as witness; the same service unpoliced is ``ok``, and pairs that run
  on the schedule (no suspicion) find nothing there either;
- the budget: pairs measured again and again against a counting server stop
  before the server has moved more than the day's budget.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from probe.config.model import Throttle as ThrottleConfig
from probe.measure.budget import ByteBudget
from probe.measure.pairs import BUDGET_SPENT, PairsLog, measure_pairs
from probe.measure.tls import TlsContexts
from probe.measure.toolkit import open_toolkit
from probe.measure.trace import Trace
from probe.model import PairsObservation
from probe.runner.cycle import run_cycle
from probe.testbed import TestCA
from probe.testbed.middlebox import Throttle
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import CheckKind, Method, Operation, Status
from tests.e2e.harness import FINGERPRINTS, by_service, run
from tests.netns.serve_throttle import CountingServer

POLICER = Throttle(32_000, 16_384)  # 256 kbit/s after a 16 KiB burst, per direction, per flow


def _pairs(result: Any) -> list[PairsObservation]:
    return [o for o in result.observations.other if isinstance(o, PairsObservation)]


def test_a_policed_download_is_slow_not_an_http_timeout() -> None:
    cycle = by_service(run([FakeService("slow-download", tls=POLICER, checks=("dns", "tls", "https:/huge"))]))
    result = cycle["slow-download"]
    v = result.verdict
    assert (v.status, v.method) == (Status.UNREACHABLE, None), v.evidence
    assert "slow: " in v.evidence and " bytes in " in v.evidence, v.evidence
    (http,) = result.observations.http  # no decoy request ran: a decoy Host proves nothing here
    assert http.slow and http.status == 200 and http.body_length > 16_384
    (row,) = [r for r in result.checks if r.check.startswith("http:")]
    assert row.detail["slow"].startswith("slow: ") and row.detail["body_length"] == http.body_length
    assert row.detail["bytes_received"] > http.body_length  # the head too
    tls_row = next(r for r in result.checks if r.check.startswith("tls:"))
    assert tls_row.detail["handshake_s"] > 0 and tls_row.detail["bytes_received"] > 0


def test_pairs_prove_throttling_and_a_clean_service_stays_ok() -> None:
    checks = ("dns", "tls", "https:/huge", "throttle")
    cycle = by_service(
        run([FakeService("throttled", tls=POLICER, checks=checks), FakeService("fast", checks=checks)])
    )
    throttled = cycle["throttled"]
    v = throttled.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.THROTTLED), (v.evidence, _pairs(throttled))
    assert [w.kind for w in v.witnesses] == ["decoy"] and "example.com" in v.witnesses[0].detail
    (pairs,) = _pairs(throttled)
    assert pairs.reason.startswith("slow transfer") and len(pairs.arms) == 6
    (row,) = [r for r in throttled.checks if r.check.startswith("throttle:")]
    assert not row.ok and row.detail["real_goodput_Bps"] * 10 <= row.detail["decoy_goodput_Bps"]
    # The policer's rate, as the pairs measured it: near 32 kB/s, far from the decoy's.
    assert 16_000 < row.detail["real_goodput_Bps"] < 48_000, row.detail
    fast = cycle["fast"]
    assert fast.verdict.status is Status.OK, fast.verdict
    (skipped,) = _pairs(fast)
    assert skipped.skipped == "not due" and not skipped.arms


async def _scheduled(workdir: Path) -> tuple[Any, PairsLog]:
    async with LoopbackCensor(workdir, max_services=1) as bed:
        service = await bed.add(FakeService("fast", checks=("dns", "tls", "throttle")))
        config = bed.config([service])
        log = PairsLog()
        # Pairs last thought of long ago: the schedule makes them due now.
        address = service.endpoints[0].expected.prefixes[0].network_address
        log.first_seen[f"{service.endpoints[0].host} {address}:{bed.tls_port}"] = time.monotonic() - 1e6
        async with open_toolkit(config, pairs_log=log) as kit:
            cycle = await run_cycle(kit, FINGERPRINTS, config.services)
        return cycle.results[0], log


def test_scheduled_pairs_on_a_clean_service_find_nothing() -> None:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        result, log = asyncio.run(_scheduled(Path(workdir)))
    assert result.verdict.status is Status.OK, result.verdict
    (pairs,) = _pairs(result)
    assert pairs.reason == "scheduled" and len(pairs.arms) == 6
    assert all(a.failure is None and a.transfer_bytes == 0 for a in pairs.arms)  # handshakes only
    assert len(log.last) == 1  # remembered for the next cycle
    transfers = [e for e in result.observations.trace if e.operation is Operation.TRANSFER]
    assert not transfers


async def _spend(workdir: Path, limit: int, runs: int) -> tuple[CountingServer, ByteBudget, list[str | None]]:
    ca = TestCA("msgprobe throttle budget CA")
    bundle = workdir / "ca.pem"
    ca.write_bundle(bundle)
    leaf = ca.issue(["counted.msgprobe.test"])
    budget = ByteBudget(limit)
    contexts = TlsContexts.create(str(bundle))
    outcomes: list[str | None] = []
    async with CountingServer(["127.0.77.60"], leaf.server_context(), size=1024 * 1024) as server:
        for index in range(runs):
            observation = await measure_pairs(
                Trace(),
                contexts,
                budget,
                address="127.0.77.60",
                port=server.port,
                host="counted.msgprobe.test",
                decoy_sni="example.com",
                path="/big" if index % 2 == 0 else None,  # reading arms and handshake-only ones
                pairs=ThrottleConfig().pairs,
                reason="test",
                connect_timeout=2.0,
                tls_timeout=2.0,
                spacing=0.0,
            )
            outcomes.append(observation.skipped)
            assert all(a.failure is None for a in observation.arms), observation.arms
        # Every connection the server saw has been counted once it is closed.
        await server.closed(6 * sum(1 for o in outcomes if o is None), timeout=30.0)
    return server, budget, outcomes


def test_the_daily_byte_budget_is_never_exceeded_at_the_server() -> None:
    limit = 1_500_000
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        server, budget, outcomes = asyncio.run(_spend(Path(workdir), limit, runs=30))
    ran = [o for o in outcomes if o is None]
    assert ran and BUDGET_SPENT in outcomes, outcomes  # it ran, and then it was refused
    assert len(server.connections) == 6 * len(ran)
    assert server.total <= limit, (server.total, limit)
    assert server.total <= budget.used <= limit  # what was charged covers what the server moved
    assert budget.refused > 0


def test_kind_is_registered_with_its_syntax() -> None:
    from probe.checks import REGISTRY, parse_check

    assert parse_check("throttle:443", "chat.example").kind is CheckKind.THROTTLE
    assert REGISTRY["throttle"].methods == (Method.THROTTLED,)
