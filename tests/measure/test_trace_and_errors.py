"""The one classification boundary and the trace that uses it, as tables."""

from __future__ import annotations

import asyncio
import errno
import ssl

import dns.exception
import h11
import pytest

from probe.measure.errors import ProtocolViolation, classify, is_network_fact
from probe.measure.trace import Trace
from probe.vocab import Failure, Operation


def _verify_error(code: int) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError("certificate verify failed")
    exc.verify_code = code
    return exc


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (TimeoutError(), Failure.TIMEOUT),
        (dns.exception.Timeout(), Failure.TIMEOUT),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), Failure.CONNECTION_REFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), Failure.CONNECTION_RESET),
        (OSError(errno.EHOSTUNREACH, "no route"), Failure.HOST_UNREACHABLE),
        (OSError(errno.ENETUNREACH, "no network"), Failure.NETWORK_UNREACHABLE),
        (_verify_error(62), Failure.SSL_INVALID_HOSTNAME),
        (_verify_error(20), Failure.SSL_UNKNOWN_AUTHORITY),
        (_verify_error(10), Failure.SSL_INVALID_CERTIFICATE),
        (ssl.SSLEOFError(), Failure.EOF),
        (EOFError("closed before any response"), Failure.EOF),
        (asyncio.IncompleteReadError(b"", 10), Failure.EOF),
        (ssl.SSLError(1, "handshake failure"), Failure.SSL_FAILED_HANDSHAKE),
        (h11.RemoteProtocolError("garbage"), Failure.UNKNOWN),
        (ProtocolViolation("bad gzip"), Failure.UNKNOWN),
    ],
)
def test_classify(exc: BaseException, failure: Failure) -> None:
    assert classify(exc)[0] is failure
    assert is_network_fact(exc)


def test_classify_follows_the_cause_chain_and_scrubs_addresses() -> None:
    try:
        try:
            raise ConnectionResetError(errno.ECONNRESET, "reset by 198.51.100.7 for 203.0.113.5")
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        failure, text = classify(outer, keep=("198.51.100.7",))
    assert failure is Failure.CONNECTION_RESET
    assert "203.0.113.5" not in text


@pytest.mark.parametrize("exc", [TypeError("x"), KeyError("y"), AttributeError("z"), ValueError("v")])
def test_bugs_are_not_network_facts(exc: Exception) -> None:
    assert not is_network_fact(exc)


def test_an_operation_records_a_network_fact_and_goes_on() -> None:
    trace = Trace()
    with trace.op(Operation.CONNECT, transaction=trace.transaction(), address="192.0.2.1", port=443) as op:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert op.failure is Failure.CONNECTION_REFUSED
    (event,) = trace.events
    assert (event.operation, event.failure, event.address, event.port) == (
        Operation.CONNECT,
        Failure.CONNECTION_REFUSED,
        "192.0.2.1",
        443,
    )


def test_an_operation_records_a_bug_and_lets_it_propagate() -> None:
    trace = Trace()
    with pytest.raises(KeyError), trace.op(Operation.TLS_HANDSHAKE, transaction=1):
        raise KeyError("a bug")
    (event,) = trace.events
    assert event.error == "probe error: KeyError"


def test_cancellation_is_neither_recorded_nor_swallowed() -> None:
    trace = Trace()
    with pytest.raises(asyncio.CancelledError), trace.op(Operation.CONNECT, transaction=1):
        raise asyncio.CancelledError
    assert trace.events == ()


def test_bytes_are_sampled_and_bounded() -> None:
    ticks = iter(i * 0.01 for i in range(10_000))
    trace = Trace(clock=lambda: next(ticks))
    with trace.op(Operation.HTTP_ROUND_TRIP, transaction=1) as op:
        for _ in range(1000):
            op.count(received=100)
    (event,) = trace.events
    assert event.bytes_received == 100_000
    assert 1 < len(event.samples) <= 257 and event.samples[-1].received == 100_000
    assert op.first_byte is not None
