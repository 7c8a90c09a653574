"""Connections told apart in a capture (no network): by this attempt's local ports only."""

from __future__ import annotations

from probe.model import TraceEvent
from probe.raw.capture import Packet
from probe.raw.reset_witness import resets_from
from probe.vocab import Operation, Purpose

SERVER, ME = "10.79.4.10", "10.79.1.2"


def theirs(t: float, local: int, flags: str, ttl: int = 61, payload: bytes = b"") -> Packet:
    return Packet(t, False, SERVER, ME, "tcp", ttl, 0, True, 443, local, flags, 64, payload=payload)


def mine(t: float, local: int, flags: str, payload: bytes = b"") -> Packet:
    return Packet(t, True, ME, SERVER, "tcp", 64, 1, True, local, 443, flags, 64, payload=payload)


def connect(transaction: int, purpose: Purpose) -> TraceEvent:
    return TraceEvent(
        Operation.CONNECT, transaction, 0.0, 0.001, None, address=SERVER, port=443, purpose=purpose
    )


def flow(local: int, t: float, *, rst_ttl: int, payload: bytes) -> list[Packet]:
    handshake = [mine(t, local, "S"), theirs(t + 0.001, local, "SA"), mine(t + 0.002, local, "A")]
    sent = [mine(t + 0.003, local, "PA", payload)] if payload else []
    return [*handshake, *sent, theirs(t + 0.004, local, "R", ttl=rst_ttl)]


def test_each_connect_gets_its_own_flow_and_purpose_and_strangers_are_ignored() -> None:
    hello = b"\x16\x03\x01\x02\x00"
    packets = [
        *flow(
            40000, 1.0, rst_ttl=61, payload=b"GET / HTTP/1.1\r\n"
        ),  # another endpoint's, to the same front end
        *flow(40001, 1.1, rst_ttl=253, payload=hello),  # the check's: forged
        *flow(40002, 1.2, rst_ttl=61, payload=hello),  # the decoy's: the server's own
        *flow(40003, 1.3, rst_ttl=61, payload=b""),  # reset before anything was sent
    ]
    trace = [connect(1, Purpose.CHECK), connect(2, Purpose.DECOY), connect(3, Purpose.INSPECT)]
    found = resets_from(SERVER, packets, trace, {1: 40001, 2: 40002, 3: 40003})
    assert [(r.purpose, r.step, r.resets[0].ttl) for r in found] == [
        ("check", "tls", 253),
        ("decoy", "tls", 61),
        ("inspect", "tcp", 61),
    ]
    check = found[0]
    assert check.synack is not None and check.synack.ttl == 61 and check.trigger_sent
    assert abs(check.resets[0].t - 0.001) < 1e-9  # after the ClientHello, not after the SYN


def test_a_reset_syn_is_compared_with_a_synack_of_another_connection() -> None:
    refused = [mine(2.0, 40010, "S"), theirs(2.001, 40010, "RA")]
    packets = [*flow(40011, 1.0, rst_ttl=61, payload=b"x"), *refused]
    trace = [connect(1, Purpose.CHECK), connect(2, Purpose.CHECK)]
    found = resets_from(SERVER, packets, trace, {1: 40011, 2: 40010})
    closed = next(r for r in found if r.step == "connect")
    assert closed.synack is None and closed.baseline is not None and closed.baseline.ttl == 61
