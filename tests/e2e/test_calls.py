"""Call reachability (``stun:``) against real UDP sockets on loopback: a relay
that swallows STUN, answers it, answers garbage, cuts a flow off, or is not
there at all, and a neutral STUN server that answers or is silent.

Each scenario runs the whole probe (measure, analyse) on a LoopbackCensor;
the relays are ``probe.testbed.stun.StunServer``s on the services' addresses.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from probe.checks import parse_check
from probe.config.load import load_config
from probe.config.model import Calls, Check, Config
from probe.export.records import result_record
from probe.measure import udp_flow
from probe.measure.budget import ByteBudget
from probe.measure.toolkit import open_toolkit
from probe.measure.trace import Trace
from probe.model import EndpointResult, StunObservation
from probe.runner.cycle import run_cycle
from probe.testbed.config_document import config_document
from probe.testbed.resolver import Answer
from probe.testbed.scenarios import GENUINE_IP, FakeService, LoopbackCensor
from probe.testbed.stun import CutOff, Garbage, Respond, StunServer, Swallow
from probe.vocab import CheckKind, Failure, Method, Operation, Purpose, Status
from tests.e2e.harness import FINGERPRINTS

NEUTRAL_NAME = "stun-neutral.msgprobe.test"
UNKNOWN_NAME = "stun-unknown.msgprobe.test"
# Generous for a loaded machine: a Binding exchange waits timeouts.connect at most.
CONNECT = 1.0


async def _measure(
    fakes: Sequence[FakeService],
    *,
    neutral: StunServer | str | None = "testbed",
    unlisted: Sequence[str] = (),
    budget: ByteBudget | None = None,
    **calls: Any,
) -> dict[str, EndpointResult]:
    """One cycle. ``neutral``: the testbed's answering server, another server, or None (none
    configured). ``unlisted``: services whose stun check points at a port where nothing listens."""
    # A TCP service that works keeps the vantage online: a cycle where nothing
    # at all answers is an offline vantage, every verdict unknown.
    fakes = [*fakes, FakeService("online", checks=("dns", "tcp"))]
    with tempfile.TemporaryDirectory(prefix="msgprobe-calls-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=len(fakes)) as bed:
            services = []
            for fake in fakes:
                service = await bed.add(fake)
                if fake.name in unlisted:
                    (endpoint,) = service.endpoints
                    closed = Check(
                        CheckKind.STUN, port=bed.stun_port + 1, url=f"{endpoint.host}:{bed.stun_port + 1}"
                    )
                    service = replace(
                        service, endpoints=(replace(endpoint, checks=(*endpoint.checks, closed)),)
                    )
                services.append(service)
            config = bed.config(services)
            if isinstance(neutral, StunServer):
                controls: tuple[tuple[str, int], ...] = (neutral.address,)
            elif neutral in (NEUTRAL_NAME, UNKNOWN_NAME):
                # A neutral server by name, resolved as the probe resolves (the lying
                # resolver answers it; the unknown one is NXDOMAIN everywhere).
                bed.resolver.rules[NEUTRAL_NAME] = Answer([GENUINE_IP])
                controls = ((str(neutral), bed.neutral_stun.port),)
            else:
                controls = () if neutral is None else config.calls.stun_controls
            config = replace(
                config,
                timeouts=replace(config.timeouts, connect=CONNECT),
                calls=replace(Calls(stun_controls=controls), **calls),
            )
            async with open_toolkit(config, budget=budget) as kit:
                cycle = await run_cycle(kit, FINGERPRINTS, config.services)
    return {r.service: r for r in cycle.results}


def run(fakes: Sequence[FakeService], **kw: Any) -> dict[str, EndpointResult]:
    return asyncio.run(_measure(fakes, **kw))


def stun_observations(result: EndpointResult) -> list[StunObservation]:
    return [o for o in result.observations.other if isinstance(o, StunObservation)]


def stun_row(result: EndpointResult) -> Any:
    (row,) = [c for c in result.checks if c.check.startswith("stun:")]
    return row


def calls(name: str, rule: object = None, checks: tuple[str, ...] = ("dns", "stun")) -> FakeService:
    return FakeService(name, stun=rule or Respond(), checks=checks)


@pytest.fixture(scope="module")
def demo_like() -> dict[str, EndpointResult]:
    return run(
        [
            calls("relay-silent", Swallow()),
            calls("relay-signature", Swallow(echo=True)),
            calls("relay-ok"),
            calls("relay-with-tcp", Swallow(), checks=("dns", "tcp", "tls", "stun")),
        ]
    )


def test_relay_silent_while_the_neutral_answers_is_udp_blocked(demo_like: dict[str, EndpointResult]) -> None:
    result = demo_like["relay-silent"]
    v = result.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED), v.evidence
    assert "no STUN answer from relay" in v.evidence and "after 3 tries" in v.evidence
    assert f"neutral STUN server {GENUINE_IP}:" in v.evidence and " ms" in v.evidence
    assert "random payload of the same size got no answer either" in v.evidence
    assert [w.kind for w in v.witnesses] == ["control"]
    row = stun_row(result)
    assert row.check == f"stun:relay-silent.msgprobe.test:{row.check.rsplit(':', 1)[1]}"
    assert not row.ok and row.failure == "generic_timeout_error"
    assert row.detail["tries"] == 3 and row.detail["neutral_answered"] is True
    assert row.detail["random_payload"] == "generic_timeout_error"
    # Every datagram is in the trace, with its purpose and bytes.
    sends = [e for e in result.observations.trace if e.operation is Operation.UDP_SEND]
    assert {e.purpose for e in sends} == {Purpose.CHECK, Purpose.RANDOM_PAYLOAD, Purpose.NEUTRAL}
    assert all(e.bytes_sent == 20 for e in sends)


def test_random_payload_answered_says_signature_filtering(demo_like: dict[str, EndpointResult]) -> None:
    v = demo_like["relay-signature"].verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED), v.evidence
    assert "STUN is filtered by its signature" in v.evidence
    assert stun_row(demo_like["relay-signature"]).detail["random_payload"] == "answered"


def test_both_answering_is_ok_and_costs_one_datagram(demo_like: dict[str, EndpointResult]) -> None:
    result = demo_like["relay-ok"]
    assert result.verdict.status is Status.OK, result.verdict
    row = stun_row(result)
    assert row.ok and row.failure is None and row.detail["rtt_ms"] is not None
    assert row.detail["attributes"] == ["0x0020"]  # XOR-MAPPED-ADDRESS: its type, never its value
    assert "neutral" not in row.detail and "random_payload" not in row.detail
    sends = [e for e in result.observations.trace if e.operation is Operation.UDP_SEND]
    assert len(sends) == 1


def test_udp_kind_runs_beside_tcp_without_touching_it(demo_like: dict[str, EndpointResult]) -> None:
    result = demo_like["relay-with-tcp"]
    assert result.verdict.method is Method.UDP_BLOCKED
    kinds = [c.check.split(":")[0] for c in result.checks]
    assert kinds == ["dns", "tcp", "tls", "stun"] and all(c.ok for c in result.checks[:3])
    connects = [e for e in result.observations.trace if e.operation is Operation.CONNECT]
    assert len(connects) == 1  # the tcp check's own; the UDP port opened no TCP connection


def test_the_volunteers_address_never_leaves(demo_like: dict[str, EndpointResult]) -> None:
    # On loopback the probe's source is 127.0.0.1: the address every answer mapped.
    for result in demo_like.values():
        assert not re.search(r"127\.0\.0\.1\b", json.dumps(result_record(result)))


def test_both_silent_is_unreachable_not_blocked() -> None:
    async def scenario() -> dict[str, EndpointResult]:
        async with StunServer(GENUINE_IP, rule=Swallow()) as silent:
            return await _measure([calls("both-silent", Swallow())], neutral=silent)

    v = asyncio.run(scenario())["both-silent"].verdict
    assert (v.status, v.method) == (Status.UNREACHABLE, None), v.evidence
    assert "no neutral STUN server answered either" in v.evidence


def test_no_neutral_configured_is_unreachable() -> None:
    v = run([calls("no-neutral", Swallow())], neutral=None)["no-neutral"].verdict
    assert (v.status, v.method) == (Status.UNREACHABLE, None), v.evidence
    assert "calls.stun_controls" in v.evidence


def test_icmp_port_unreachable_is_port_unreachable_not_refused() -> None:
    result = run([FakeService("nothing-there", checks=("dns",))], unlisted=("nothing-there",))[
        "nothing-there"
    ]
    v = result.verdict
    assert (v.status, v.method, v.failure) == (Status.UNREACHABLE, None, Failure.PORT_UNREACHABLE.value)
    row = stun_row(result)
    assert row.failure == "port_unreachable" and row.detail["tries"] == 1
    assert "neutral" not in row.detail  # an ICMP answer needs no witness to be reported


@pytest.mark.parametrize(
    ("kind", "ignored"),
    [
        ("not-stun", "not STUN"),
        ("wrong-id", "wrong transaction id"),
        ("oversized", "oversized datagram (over 1500 bytes)"),
        ("malformed", "malformed STUN (length)"),
    ],
)
def test_garbage_replies_do_not_count_and_do_not_crash(kind: str, ignored: str) -> None:
    result = run([calls("garbage", Garbage(kind))])["garbage"]
    v = result.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED), v.evidence
    assert ignored in v.evidence
    assert stun_row(result).detail["ignored"] == [ignored]


def test_a_flood_of_wrong_answers_ends_the_exchange() -> None:
    result = run([calls("flood", Garbage("flood"))])["flood"]
    (o,) = stun_observations(result)
    assert o.relay.failure is Failure.UNKNOWN and "more than 32 datagrams" in (o.relay.error or "")
    assert o.relay.duration < CONNECT  # it gave up at once instead of reading on


def test_flow_cut_off_after_25_packets_is_udp_blocked() -> None:
    result = run([calls("cut-off", CutOff(25))], flow=True, flow_seconds=2.0, flow_bytes=40_000)["cut-off"]
    v = result.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED), v.evidence
    assert "25 of the first 25 requests answered, then none of the last" in v.evidence
    row = stun_row(result)
    assert row.detail["flow"]["answered"] == 25 and row.detail["flow"]["sent"] > 50
    assert row.detail["neutral_flow"]["answered"] == row.detail["neutral_flow"]["sent"]


def test_clean_flow_is_ok_and_within_its_bounds() -> None:
    budget = ByteBudget(1_000_000)
    result = run([calls("flow-ok")], flow=True, flow_seconds=1.0, flow_bytes=20_000, budget=budget)["flow-ok"]
    assert result.verdict.status is Status.OK, result.verdict
    (o,) = stun_observations(result)
    assert o.flow is not None and o.neutral_flow is not None
    assert o.flow.answered == o.flow.sent > 0 and o.flow.stopped == "time"
    moved = sum(f.bytes_sent + f.bytes_received for f in (o.flow, o.neutral_flow))
    assert moved <= 20_000 and budget.used == moved  # the unused part went back


def test_flow_skipped_when_the_budget_is_spent() -> None:
    result = run([calls("broke")], flow=True, flow_seconds=1.0, budget=ByteBudget(100))["broke"]
    assert result.verdict.status is Status.OK
    assert stun_row(result).detail["flow_skipped"] == "the day's byte budget is spent"


def test_paced_flow_bounds_counted_at_the_server() -> None:
    async def scenario() -> tuple[int, int, int, int]:
        async with StunServer("127.0.0.1") as by_bytes, StunServer("127.0.0.1") as by_time:
            trace = Trace()
            small = await udp_flow.paced_flow(trace, "127.0.0.1", by_bytes.port, seconds=5.0, max_bytes=1_000)
            timed = await udp_flow.paced_flow(
                trace, "127.0.0.1", by_time.port, seconds=1.0, max_bytes=200_000
            )
            assert small.stopped == "bytes" and timed.stopped == "time"
            return (
                by_bytes.bytes_received + by_bytes.bytes_sent,
                by_time.requests,
                timed.sent,
                small.sent,
            )

    moved, requests, sent, small_sent = asyncio.run(scenario())
    assert moved <= 1_000 and small_sent < 20
    # 50 a second for 1 s: never more (plus the first at t=0), fewer only on a starved loop.
    assert requests == sent and 25 <= sent <= 51


def test_stun_check_syntax() -> None:
    assert parse_check("stun:chat.example:3478", "chat.example") == Check(
        CheckKind.STUN, port=3478, url="chat.example:3478"
    )
    assert parse_check("stun:3478", "chat.example").label == "stun:chat.example:3478"
    assert parse_check("stun:[2001:db8::1]:3478", "2001:db8::1").label == "stun:[2001:db8::1]:3478"
    with pytest.raises(ValueError, match=r"STUN host 'other.example' is not the endpoint 'chat.example'"):
        parse_check("stun:other.example:3478", "chat.example")
    with pytest.raises(ValueError, match=r"needs HOST:PORT \(or PORT\) with a port 1-65535"):
        parse_check("stun:chat.example:99999", "chat.example")


def test_config_document_carries_the_neutral_servers(tmp_path: Path) -> None:
    # The daemon test runs the probe in another process from this document.
    async def scenario() -> tuple[tuple[tuple[str, int], ...], Config]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            config = bed.config([await bed.add(calls("calls-blocked", Swallow()))])
            path = tmp_path / "probe.yaml"
            path.write_text(yaml.safe_dump(config_document(config)), encoding="utf-8")
            return config.calls.stun_controls, load_config(path)

    controls, loaded = asyncio.run(scenario())
    assert controls == ((GENUINE_IP, controls[0][1]),) and loaded.calls.stun_controls == controls
    (check,) = [c for c in loaded.services[0].endpoints[0].checks if c.kind == CheckKind.STUN]
    assert check.label.startswith("stun:calls-blocked.msgprobe.test:")


def test_a_neutral_server_by_name_is_resolved_by_the_probe() -> None:
    v = run([calls("by-name", Swallow())], neutral=NEUTRAL_NAME)["by-name"].verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED), v.evidence
    assert f"neutral STUN server {NEUTRAL_NAME} ({GENUINE_IP}:" in v.evidence
    unknown = run([calls("unknown-name", Swallow())], neutral=UNKNOWN_NAME)["unknown-name"].verdict
    assert (unknown.status, unknown.method) == (Status.UNREACHABLE, None), unknown.evidence
    assert f"no neutral STUN server resolved here ({UNKNOWN_NAME})" in unknown.evidence
