"""``tcp.freeze`` from recorded transfers: the window, the witnesses, what is never a freeze."""

from __future__ import annotations

from dataclasses import replace

import pytest

from probe.analysis.endpoint import AnalysisInput
from probe.analysis.freeze import FREEZE_FROM, FREEZE_TO, freeze_verdict, in_window, needs_canary_transfer
from probe.checks.analyze import analyze_endpoint
from probe.config.model import Check, Endpoint
from probe.control.api import Answer, Summary, TransferSummary, summarize
from probe.measure.transfer import BUDGET_SPENT
from probe.model import EndpointObservations, TcpObservation, TransferObservation
from probe.vocab import CheckKind, Failure, Method, Purpose, Status
from tests.analysis.observations import ADDR, EXPECTED, FINGERPRINTS, HOST, dns, service

PEER = "control.example:9491"
FROZEN = TransferObservation(
    ADDR, 443, HOST, HOST, Purpose.CHECK, 1.0, 1.6, Failure.TIMEOUT,
    sent=16_384, received=12_432, responses=3, stalled=True, stall_timeout=1.5, target=40_960,
)  # fmt: skip
CARRIED = replace(FROZEN, failure=None, stalled=False, sent=40_960, received=41_420, responses=10)


def _answer(*transfers: TransferSummary) -> Answer:
    return Answer(PEER, Summary(None, (), (), (), transfers))


def _carried_there(address: str = ADDR, port: int = 443) -> Answer:
    return _answer(TransferSummary(address, port, 40_960, 41_420, False, None))


def _canary(**kw: object) -> TransferObservation:
    base = replace(CARRIED, address="198.51.100.7", host="home.example", purpose=Purpose.CANARY)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_freeze_with_a_control_that_carried_it_is_blocked() -> None:
    v = freeze_verdict(FROZEN, [FROZEN], [_carried_there()])
    assert v is not None and (v.status, v.method) == (Status.BLOCKED, Method.TCP_FREEZE)
    assert v.evidence == (
        f"freeze {ADDR}:443: stalled after 12432 bytes received (16384 sent), no reset;"
        f" control peer {PEER} carried 41420 bytes received (40960 sent) from {ADDR}:443"
    )
    assert [w.kind for w in v.witnesses] == ["control"] and v.address == ADDR
    assert v.failure == "generic_timeout_error"


def test_without_a_witness_it_is_unreachable_stalled_after() -> None:
    v = freeze_verdict(FROZEN, [FROZEN], [])
    assert v is not None and (v.status, v.method) == (Status.UNREACHABLE, None)
    assert v.evidence == f"freeze {ADDR}:443: stalled after 12432 bytes received (16384 sent), no reset"


@pytest.mark.parametrize(
    "there",
    [
        TransferSummary("203.0.113.99", 443, 40_960, 41_420, False, None),  # another address
        TransferSummary(ADDR, 80, 40_960, 41_420, False, None),  # another port
        TransferSummary(ADDR, 443, 16_000, 12_000, True, "generic_timeout_error"),  # froze there too
        TransferSummary(ADDR, 443, 4_096, 900, False, "connection_reset"),
    ],
)
def test_a_control_is_a_witness_only_for_the_same_transfer_carried_through(there: TransferSummary) -> None:
    v = freeze_verdict(FROZEN, [FROZEN], [_answer(there)])
    assert v is not None and v.status is Status.UNREACHABLE


def test_a_control_that_froze_too_is_said() -> None:
    there = TransferSummary(ADDR, 443, 16_000, 12_000, True, "generic_timeout_error")
    v = freeze_verdict(FROZEN, [FROZEN], [_answer(there)])
    assert v is not None and v.evidence.endswith("; the control peer stalled too")


def test_a_domestic_canary_that_carried_it_is_a_witness() -> None:
    v = freeze_verdict(FROZEN, [FROZEN, _canary()], [])
    assert v is not None and v.method is Method.TCP_FREEZE
    assert [(w.kind, w.detail) for w in v.witnesses] == [
        ("canary", "canary home.example carried 41420 bytes received (40960 sent) from here")
    ]


def test_a_canary_that_froze_too_is_the_vantages_freeze_even_with_a_control() -> None:
    frozen = _canary(failure=Failure.TIMEOUT, stalled=True, sent=16_384, received=9_000)
    v = freeze_verdict(FROZEN, [FROZEN, frozen], [_carried_there()])
    assert v is not None and (v.status, v.method) == (Status.UNREACHABLE, None)
    assert "canary home.example froze too" in v.evidence and "not this service alone" in v.evidence


def test_a_canary_that_could_not_connect_is_no_witness_either_way() -> None:
    failed = _canary(failure=Failure.CONNECTION_REFUSED, sent=0, received=0, ended="connect failed")
    v = freeze_verdict(FROZEN, [FROZEN, failed], [])
    assert v is not None and v.status is Status.UNREACHABLE and "froze too" not in v.evidence


@pytest.mark.parametrize(
    ("sent", "received", "inside"),
    [
        (4_096, 0, False),  # the first request unanswered: a dead server looks the same
        (4_096, 4_096, True),  # 8 KB both ways together: a cut at ~14 KB on the wire minus a handshake
        (16_384, 12_432, True),
        (36_864, 30_000, True),
        (40_960, 20_000, False),  # past the largest reported cut
    ],
)
def test_the_freeze_window(sent: int, received: int, inside: bool) -> None:
    assert in_window(sent, received) is inside
    o = replace(FROZEN, sent=sent, received=received)
    assert needs_canary_transfer(o) is inside
    v = freeze_verdict(o, [o], [_carried_there()])
    assert v is not None
    assert (v.method is Method.TCP_FREEZE) is inside
    if not inside:
        assert v.status is Status.UNREACHABLE and "outside the freeze window" in v.evidence
        assert f"{FREEZE_FROM}–{FREEZE_TO}" in v.evidence


def test_a_reset_or_an_eof_is_never_a_freeze() -> None:
    for failure in (Failure.CONNECTION_RESET, Failure.EOF):
        o = replace(FROZEN, failure=failure, stalled=False)
        assert not needs_canary_transfer(o)
        v = freeze_verdict(o, [o], [_carried_there()])
        assert v is not None and (v.status, v.method) == (Status.UNREACHABLE, None)
        assert v.evidence.endswith("after 12432 bytes received (16384 sent): not a freeze")


def test_a_carried_or_refused_transfer_proves_nothing() -> None:
    assert freeze_verdict(CARRIED, [CARRIED], []) is None
    refused = TransferObservation(ADDR, 443, HOST, HOST, Purpose.CHECK, 1.0, 0.0, None, ended=BUDGET_SPENT)
    assert freeze_verdict(refused, [refused], [_carried_there()]) is None


def _endpoint() -> Endpoint:
    checks = (
        Check(CheckKind.TCP, port=443),
        Check(CheckKind.TLS, port=443),
        Check(CheckKind.FREEZE, port=443),
    )
    return Endpoint(HOST, checks, expected=EXPECTED)


def _obs(*transfers: TransferObservation, controls: tuple[Answer, ...] = ()) -> EndpointObservations:
    tcp = (TcpObservation(ADDR, 443, 0.1, 0.02, None),)
    answers = (dns(addresses=(ADDR,)), dns(qtype="AAAA"))
    return EndpointObservations("chat", HOST, dns=answers, tcp=tcp, other=transfers, controls=controls)


def test_the_endpoint_verdict_and_its_freeze_row() -> None:
    endpoint = _endpoint()
    inp = AnalysisInput(service(endpoint), endpoint, FINGERPRINTS)
    result = analyze_endpoint(_obs(FROZEN, controls=(_carried_there(),)), inp)
    assert (result.verdict.status, result.verdict.method) == (Status.BLOCKED, Method.TCP_FREEZE)
    (row,) = [r for r in result.checks if r.check == "freeze:443"]
    assert not row.ok and row.failure == "generic_timeout_error" and row.address == ADDR
    assert {k: row.detail[k] for k in ("sent", "received", "stalled")} == {
        "sent": 16_384,
        "received": 12_432,
        "stalled": True,
    }
    ok = analyze_endpoint(_obs(CARRIED), inp)
    assert ok.verdict.status is Status.OK
    assert [r.ok for r in ok.checks if r.check == "freeze:443"] == [True]


def test_the_control_summary_carries_the_transfer_bounded_and_content_free() -> None:
    refused = replace(FROZEN, port=80, stalled=False, failure=None, sent=0, received=0, ended=BUDGET_SPENT)
    canary = _canary()
    summary = summarize(_obs(CARRIED, refused, canary))
    assert summary.transfer == (TransferSummary(ADDR, 443, 40_960, 41_420, False, None),)
    document = summary.to_json()
    assert document["transfer"] == [
        {"address": ADDR, "port": 443, "sent": 40_960, "received": 41_420, "stalled": False, "failure": None}
    ]
    assert Summary.from_json(document) == summary
    # An older control (no "transfer") still parses; a hostile one is refused.
    del document["transfer"]
    assert Summary.from_json(document).transfer == ()
    with pytest.raises(ValueError):
        Summary.from_json({"transfer": [{"address": "not an ip", "port": 1, "sent": 0, "received": 0}]})
    with pytest.raises(ValueError):
        Summary.from_json({"transfer": [{"address": ADDR, "port": 1, "sent": -5, "received": 0}]})
