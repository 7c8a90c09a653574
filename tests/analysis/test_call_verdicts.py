"""Call verdicts (``probe.analysis.calls``) from invented observations, and the
STUN reply judge (``probe.measure.stun``) from crafted datagrams: pure."""

from __future__ import annotations

import errno
import struct

import pytest

from probe.analysis.calls import calls_verdicts, cut_off, needs_flow, needs_follow_up, relay_verdict
from probe.control.api import Answer, StunSummary, Summary
from probe.measure import stun
from probe.measure.errors import PortUnreachable, classify
from probe.model import StunObservation, UdpExchange, UdpFlow
from probe.testbed.stun import success
from probe.vocab import Failure, Method, Purpose, Status

RELAY = "198.51.100.7"
NEUTRAL = "192.0.2.53"


def exchange(
    failure: Failure | None, purpose: Purpose = Purpose.CHECK, address: str = RELAY, **kw: object
) -> UdpExchange:
    rtt = 0.042 if failure is None else None
    return UdpExchange(address, 3478, purpose, 0.0, 1.0, failure, tries=3, rtt=rtt, **kw)  # type: ignore[arg-type]


def observation(relay: UdpExchange, **kw: object) -> StunObservation:
    return StunObservation("relay.example", relay.address, 3478, relay, **kw)  # type: ignore[arg-type]


SILENT = exchange(Failure.TIMEOUT)
ANSWERING_NEUTRAL = exchange(None, Purpose.NEUTRAL, NEUTRAL, host="stun.example")
SILENT_NEUTRAL = exchange(Failure.TIMEOUT, Purpose.NEUTRAL, NEUTRAL, host="stun.example")


def flow(sent: int, answered: int, last: int, purpose: Purpose = Purpose.CHECK) -> UdpFlow:
    return UdpFlow(RELAY, 3478, purpose, 0.0, 20.0, sent, answered, last, (), "time")


def test_relay_silent_neutral_answers_is_blocked_with_a_control_witness() -> None:
    random = exchange(Failure.TIMEOUT, Purpose.RANDOM_PAYLOAD)
    v = relay_verdict(observation(SILENT, neutral=(ANSWERING_NEUTRAL,), random=random))
    assert v is not None and (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED)
    assert v.evidence.startswith(f"no STUN answer from relay {RELAY}:3478 after 3 tries; ")
    assert f"neutral STUN server stun.example ({NEUTRAL}:3478) answered in 42 ms" in v.evidence
    assert "got no answer either" in v.evidence
    assert [w.kind for w in v.witnesses] == ["control"] and v.address == RELAY


@pytest.mark.parametrize(
    ("random", "says"),
    [
        (exchange(None, Purpose.RANDOM_PAYLOAD), "was answered: STUN is filtered by its signature"),
        (exchange(Failure.PORT_UNREACHABLE, Purpose.RANDOM_PAYLOAD), "got ICMP port unreachable"),
    ],
)
def test_random_payload_getting_through_says_signature(random: UdpExchange, says: str) -> None:
    v = relay_verdict(observation(SILENT, neutral=(ANSWERING_NEUTRAL,), random=random))
    assert v is not None and v.method is Method.UDP_BLOCKED and says in v.evidence


@pytest.mark.parametrize(
    ("obs", "says"),
    [
        (observation(SILENT, neutral=(SILENT_NEUTRAL,)), "no neutral STUN server answered either"),
        (observation(SILENT), "no neutral STUN server is configured (calls.stun_controls)"),
        (observation(SILENT, neutral_unresolved=("stun.example",)), "no neutral STUN server resolved here"),
    ],
)
def test_without_an_answering_neutral_it_is_unreachable(obs: StunObservation, says: str) -> None:
    v = relay_verdict(obs)
    assert v is not None and (v.status, v.method) == (Status.UNREACHABLE, None)
    assert says in v.evidence and v.failure == "generic_timeout_error"


def test_port_unreachable_is_unreachable_never_refused() -> None:
    v = relay_verdict(observation(exchange(Failure.PORT_UNREACHABLE), neutral=(ANSWERING_NEUTRAL,)))
    assert v is not None and (v.status, v.method, v.failure) == (Status.UNREACHABLE, None, "port_unreachable")
    assert not needs_follow_up(exchange(Failure.PORT_UNREACHABLE))


def test_relay_answering_is_no_finding() -> None:
    assert relay_verdict(observation(exchange(None))) is None
    assert needs_follow_up(SILENT) and not needs_follow_up(exchange(None))
    assert (
        needs_flow(exchange(None), True)
        and not needs_flow(SILENT, True)
        and not needs_flow(exchange(None), False)
    )


@pytest.mark.parametrize(
    ("sent", "answered", "last", "is_cut"),
    [
        (1000, 25, 25, True),  # the ~25-packet cut-off
        (1000, 1000, 1000, False),  # clean
        (1000, 500, 999, False),  # a policer: half lost, to the end
        (30, 25, 25, False),  # too short a tail to tell
        (1000, 3, 900, False),  # mostly lost before the last answer: not a cut-off
        (1000, 0, 0, False),  # never answered: the single Binding's business
    ],
)
def test_cut_off_rule(sent: int, answered: int, last: int, is_cut: bool) -> None:
    assert cut_off(flow(sent, answered, last)) is is_cut


def test_flow_cut_off_needs_the_neutral_flow_as_witness() -> None:
    relay = exchange(None)
    carried = flow(1000, 1000, 1000, Purpose.NEUTRAL)
    v = relay_verdict(observation(relay, flow=flow(1000, 25, 25), neutral_flow=carried))
    assert v is not None and (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED)
    assert "25 of the first 25 requests answered, then none of the last 975" in v.evidence
    both = relay_verdict(observation(relay, flow=flow(1000, 25, 25), neutral_flow=flow(1000, 25, 25)))
    assert both is not None and both.status is Status.UNREACHABLE
    alone = relay_verdict(observation(relay, flow=flow(1000, 25, 25)))
    assert alone is not None and alone.status is Status.UNREACHABLE


def test_another_relay_answering_hides_unproven_failures_but_keeps_blocks() -> None:
    ok = observation(exchange(None, address="198.51.100.8"))
    unproven = observation(SILENT)
    blocked = observation(SILENT, neutral=(ANSWERING_NEUTRAL,))
    assert calls_verdicts([ok, unproven]) == []
    assert [v.method for v in calls_verdicts([ok, blocked])] == [Method.UDP_BLOCKED]
    assert [v.status for v in calls_verdicts([unproven])] == [Status.UNREACHABLE]


TXID = bytes(range(12))


def test_a_binding_response_is_judged_without_keeping_the_mapped_address() -> None:
    reply = stun.judge(success(TXID, "203.0.113.77", 40000), TXID)
    assert reply.valid and reply.success and reply.attributes == (stun.XOR_MAPPED_ADDRESS,)
    assert reply.size == 32
    # Nothing of the address survives: not the address, not its XOR-ed bytes.
    text = repr(reply)
    assert "203.0.113.77" not in text and "40000" not in text
    assert set(reply.__slots__) == {"valid", "problem", "message_type", "attributes", "size"}  # type: ignore[attr-defined]


def _header(kind: int, length: int, txid: bytes = TXID, cookie: int = stun.MAGIC_COOKIE) -> bytes:
    return struct.pack("!HHI", kind, length, cookie) + txid


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "short datagram (0 bytes)"),
        (b"\x01" * 19, "short datagram (19 bytes)"),
        (b"\x00" * 2000, "oversized datagram (over 1500 bytes)"),
        (_header(0x0101, 0, cookie=0x12345678), "not STUN"),
        (b"\xc0" + _header(0x0101, 0)[1:], "not STUN"),
        (_header(0x0101, 8), "malformed STUN (length)"),
        (_header(0x0101, 0, txid=b"\xff" * 12), "wrong transaction id"),
        (_header(0x0101, 4) + struct.pack("!HH", 0x0020, 8), "malformed STUN (attribute overruns)"),
        (_header(0x0001, 0), "not a Binding response (type 0x0001)"),
    ],
)
def test_what_does_not_count(data: bytes, problem: str) -> None:
    reply = stun.judge(data, TXID)
    assert not reply.valid and reply.problem == problem


def test_binding_request_is_the_bare_header_and_random_payload_never_parses() -> None:
    request = stun.binding_request(TXID)
    assert request == bytes.fromhex("0001 0000 2112a442") + TXID
    for _ in range(64):
        payload = stun.random_payload(stun.HEADER)
        assert len(payload) == 20 and payload[0] >= 0xC0
        assert stun.judge(payload, payload[8:20]).problem == "not STUN"


def test_icmp_port_unreachable_on_udp_is_not_tcps_connection_refused() -> None:
    assert (
        classify(PortUnreachable(errno.ECONNREFUSED, "ICMP port unreachable"))[0] is Failure.PORT_UNREACHABLE
    )
    assert classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))[0] is Failure.CONNECTION_REFUSED


def test_no_route_to_the_relay_is_no_block_and_needs_no_witness() -> None:
    no_route = exchange(Failure.NETWORK_UNREACHABLE, address="2001:db8::7")
    assert not needs_follow_up(no_route)
    v = relay_verdict(observation(no_route, neutral=(ANSWERING_NEUTRAL,)))
    assert v is not None and (v.status, v.failure) == (Status.UNREACHABLE, "network_unreachable")


def test_a_neutral_of_another_address_family_is_no_witness() -> None:
    silent_v6 = exchange(Failure.TIMEOUT, address="2001:db8::7")
    v = relay_verdict(observation(silent_v6, neutral=(ANSWERING_NEUTRAL,)))
    assert v is not None and (v.status, v.method) == (Status.UNREACHABLE, None)
    assert "of the relay's address family (IPv6)" in v.evidence


def _peer(answered: bool, address: str = RELAY) -> Answer:
    summary = Summary(
        None, (), (), (), stun=(StunSummary(address, 3478, answered, None if answered else "x"),)
    )
    return Answer("control.example:9491", summary)


def test_a_relay_silent_at_the_control_peer_too_is_down_not_blocked() -> None:
    # A relay that needs the app's own handshake answers no plain Binding Request anywhere.
    v = relay_verdict(observation(SILENT, neutral=(ANSWERING_NEUTRAL,)), (_peer(False),))
    assert v is not None and v.status is Status.DOWN and v.method is None
    assert "silent at control peer control.example:9491 too" in v.evidence


def test_a_relay_answering_the_control_peer_is_a_second_witness() -> None:
    v = relay_verdict(observation(SILENT, neutral=(ANSWERING_NEUTRAL,)), (_peer(True),))
    assert v is not None and (v.status, v.method) == (Status.BLOCKED, Method.UDP_BLOCKED)
    assert [w.kind for w in v.witnesses] == ["control", "control"]
    assert "got a STUN answer from the relay" in v.evidence


def test_a_peer_that_measured_another_address_changes_nothing() -> None:
    v = relay_verdict(observation(SILENT, neutral=(ANSWERING_NEUTRAL,)), (_peer(False, "192.0.2.99"),))
    assert v is not None and v.status is Status.BLOCKED and len(v.witnesses) == 1


def test_the_stun_summary_round_trips_and_never_carries_an_address_of_ours() -> None:
    summary = Summary(None, (), (), (), stun=(StunSummary(RELAY, 3478, True, None),))
    assert Summary.from_json(summary.to_json()) == summary
