"""UDP exchanges for call reachability: a STUN Binding Request with
retransmissions and a random payload of the same size (the paced flow is
``probe.measure.udp_flow``).

One connected UDP socket per exchange, read on the event loop. Connecting
matters twice: the kernel then delivers only the server's datagrams, and an
ICMP port unreachable comes back as ECONNREFUSED on the next receive, which
is raised as ``PortUnreachable`` (``port_unreachable``, not TCP's
``connection_refused``).

Retransmissions follow RFC 5389 §7.2.1 scaled into the check's timeout: the
interval doubles after each copy (RTO, 2·RTO, …), with RTO chosen so that
``tries`` copies fit in the first half of the window and the rest is left for
the last answer to arrive. Every copy carries the same transaction id, so an
answer to any copy counts and the RTT is measured from the first.

A hostile server cannot make us crash or read forever: each datagram is
judged (``probe.measure.stun.judge``), at most ``MAX_IGNORED`` that do not
count are read before the exchange gives up, and nothing of a STUN answer is
kept but its type, attribute types and size (no mapped address).

The local socket name is never read: the volunteer's address stays out.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

from probe.measure import stun
from probe.measure.errors import PortUnreachable, ProtocolViolation
from probe.measure.trace import Op, Trace
from probe.model import UdpExchange
from probe.vocab import Operation, Purpose

MAX_IGNORED = 32  # datagrams that are not our answer, read before giving up
MAX_IGNORED_KEPT = 8  # distinct reasons kept on an observation


def open_socket(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((address, port))  # no packet: it fixes the peer, so ICMP errors reach us
    except BaseException:
        sock.close()
        raise
    return sock


def _refused(exc: OSError) -> OSError:
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return PortUnreachable(errno.ECONNREFUSED, "ICMP port unreachable")
    return exc


def send(sock: socket.socket, data: bytes, op: Op) -> None:
    try:
        sock.send(data)
    except OSError as exc:
        raise _refused(exc) from exc
    op.count(sent=len(data))


async def receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, wait: float) -> bytes | None:
    """One datagram, or None if none arrived within ``wait`` seconds."""
    try:
        return await asyncio.wait_for(loop.sock_recv(sock, stun.MAX_DATAGRAM + 1), max(0.0, wait))
    except TimeoutError:
        return None
    except OSError as exc:
        raise _refused(exc) from exc


def send_times(timeout: float, tries: int) -> list[float]:
    """When each copy goes out (seconds after the first): 0, RTO, 3·RTO, 7·RTO…"""
    rto = timeout / 2 / max(1, (2 ** (tries - 1)) - 1) if tries > 1 else timeout
    return [rto * ((2**i) - 1) for i in range(max(1, tries))]


Judge = Callable[[bytes], stun.Reply]


async def _exchange(
    trace: Trace,
    address: str,
    port: int,
    payload: bytes,
    judge: Judge,
    *,
    timeout: float,
    tries: int,
    purpose: Purpose,
    host: str,
    what: str,
) -> UdpExchange:
    loop = asyncio.get_running_loop()
    transaction = trace.transaction()
    plan = send_times(timeout, tries)
    ignored: list[str] = []
    answer: stun.Reply | None = None
    rtt: float | None = None
    sent = 0
    sock: socket.socket | None = None

    def op(operation: Operation) -> Op:
        return trace.op(
            operation, transaction=transaction, address=address, port=port, purpose=purpose, detail=what
        )

    with op(Operation.UDP_RECEIVE) as receiving:
        sends: list[Op] = []
        try:
            sock = open_socket(address, port)
            start = loop.time()
            deadline = start + timeout
            not_counted = 0
            while answer is None:
                now = loop.time()
                if now >= deadline:
                    raise TimeoutError(f"no answer after {sent} datagrams")
                if sent < len(plan) and now >= start + plan[sent]:
                    failed: OSError | None = None
                    with op(Operation.UDP_SEND) as sending:
                        sends.append(sending)
                        try:
                            send(sock, payload, sending)
                        except OSError as exc:
                            failed = exc
                            raise
                    if failed is not None:
                        raise failed  # recorded on the send; the exchange ends the same way
                    sent += 1
                    continue
                until = start + plan[sent] if sent < len(plan) else deadline
                data = await receive(loop, sock, min(until, deadline) - now)
                if data is None:
                    continue
                receiving.count(received=len(data))
                reply = judge(data)
                if reply.valid:
                    answer, rtt = reply, loop.time() - start
                    break
                problem = reply.problem or "not counted"
                if problem not in ignored and len(ignored) < MAX_IGNORED_KEPT:
                    ignored.append(problem)
                not_counted += 1
                if not_counted > MAX_IGNORED:
                    raise ProtocolViolation(f"more than {MAX_IGNORED} datagrams that are not an answer")
        finally:
            if sock is not None:
                sock.close()
        if answer is not None and answer.message_type is not None:
            receiving.detail = f"{what}: answer type 0x{answer.message_type:04x}, {answer.size} bytes"
    return UdpExchange(
        address=address,
        port=port,
        purpose=purpose,
        started=receiving.started,
        duration=receiving.duration,
        failure=receiving.failure,
        error=receiving.error,
        host=host,
        tries=sent,
        rtt=rtt,
        response_type=answer.message_type if answer else None,
        attributes=answer.attributes if answer else (),
        response_size=answer.size if answer else 0,
        ignored=tuple(ignored),
        bytes_sent=sum(s.sent for s in sends),
        bytes_received=receiving.received,
    )


async def stun_binding(
    trace: Trace,
    address: str,
    port: int,
    *,
    timeout: float,
    tries: int,
    purpose: Purpose = Purpose.CHECK,
    host: str = "",
) -> UdpExchange:
    """A Binding Request (fresh transaction id) until a valid answer or ``timeout``."""
    txid = stun.transaction_id()
    return await _exchange(
        trace,
        address,
        port,
        stun.binding_request(txid),
        lambda data: stun.judge(data, txid),
        timeout=timeout,
        tries=tries,
        purpose=purpose,
        host=host,
        what="stun binding request",
    )


def _anything(data: bytes) -> stun.Reply:
    return stun.Reply(True, None, size=len(data))


async def random_datagram(
    trace: Trace, address: str, port: int, *, timeout: float, tries: int
) -> UdpExchange:
    """A random payload of a Binding Request's size: does any datagram (or ICMP) come back?

    A relay that ignores it is normal; what matters is the contrast with
    STUN: an answer or an ICMP error here while STUN gets silence means the
    path lets UDP through and drops STUN by its signature."""
    return await _exchange(
        trace,
        address,
        port,
        stun.random_payload(stun.HEADER),
        _anything,
        timeout=timeout,
        tries=tries,
        purpose=Purpose.RANDOM_PAYLOAD,
        host="",
        what=f"random payload, {stun.HEADER} bytes",
    )
