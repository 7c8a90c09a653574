"""A measured transfer: ~40 KB up and ~40 KB down over one open connection,
in small writes, recording where it stalls (``freeze:PORT``, method ``tcp.freeze``).

The 2025 Russian "TCP 16-20" / "l4-25" filter freezes a flow to foreign
hosting after ~14–34 KB (~25 packets), in both directions, silently: no RST,
no FIN, the packets just stop (controls-throttling.md B5). A check that only
connects or fetches one small page never gets that far, so it reads as ok;
an app that syncs media or history hangs.

Why HTTP/1.1 keep-alive requests: they are what every web server on the
port already speaks, so the transfer needs no cooperative server and looks
like a browser on the wire. Each request is padded with an ``X-Pad`` header
to ``REQUEST_SIZE`` bytes (dpi-detector's TCP16 test pads 16 keep-alive
requests with 4,000 bytes), so the upload reaches the target whatever the
server answers, and the responses (GETs of the same path, repeated) carry
what comes down. Writes go out in ``WRITE_CHUNK`` pieces on a TCP_NODELAY
socket (``tcp.connect`` sets it), one segment each, as dpi-ch's l4-25 prober
does: a filter that counts packets sees them all.

Bounds, whatever the server does (huge or endless bodies, garbage, one byte
a second): at most ``TARGET + REQUEST_SIZE`` bytes up and ``TARGET +
RESPONSE_ROOM`` down (the target plus one request or one response), at most
``MAX_REQUESTS`` requests, ``MAX_DURATION`` seconds, a small receive buffer
so a server cannot push much past what we read, and every one of those
bytes reserved from the daily ``ByteBudget`` first: a reservation the budget
cannot cover means the transfer does not run at all. What it cost (the
kernel's count where it has one) is charged and the rest given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

import h11

from probe.measure import tcpinfo
from probe.measure.budget import ByteBudget
from probe.measure.exchange import USER_AGENT
from probe.measure.tcp import READ_CHUNK, Connection
from probe.measure.trace import Trace
from probe.model import TransferObservation
from probe.vocab import Failure, Operation, Purpose

TARGET = 40_960  # bytes per direction: past the largest reported freeze point (~34 KB)
REQUEST_SIZE = 4_096  # one padded request (dpi-detector pads with 4,000 bytes)
WRITE_CHUNK = 512  # bytes per write: ~80 segments up, so a per-packet cut-off shows
RESPONSE_ROOM = 16_384  # what one response may bring beyond the target before we stop reading
MAX_HEAD = 16_384  # bytes of one response's head (h11's incomplete-event bound)
MAX_REQUESTS = 64  # a server answering a few bytes each time cannot keep us asking forever
# Stall: no byte moved for max(3 x RTT, 1.5 s), capped at 12 s (dpi-detector's
# TCP16 read timeout). Three round trips cover a server's think time and a
# retransmission; the floor keeps a loopback or LAN RTT from turning a busy
# server into a "stall"; the cap keeps a satellite link's RTT from hiding one.
STALL_RTTS = 3.0
STALL_FLOOR = 1.5
STALL_CAP = 12.0
# The whole transfer: 90 KB at the 128 kbit/s of a policed flow take ~6 s; a
# slowloris server that trickles a byte just inside the stall timeout is cut here.
MAX_DURATION = 20.0
# The receive buffer is kept small: what a server pushes past what we read
# (it arrives, and the volunteer pays for it) is bounded by the window it
# advertises, and the kernel doubles the value set.
RECEIVE_BUFFER = 64 * 1024
WINDOW_ALLOWANCE = 2 * RECEIVE_BUFFER  # worst case in flight, where the kernel cannot count
IN_FLIGHT_ALLOWANCE = 16 * 1024  # what may still arrive after we hang up mid-response


def reservation(target: int = TARGET) -> int:
    """Every byte one transfer may cost: the target each way, one request, one response, a window."""
    return target + REQUEST_SIZE + target + RESPONSE_ROOM + WINDOW_ALLOWANCE


RESERVATION = reservation()

BUDGET_SPENT = "byte budget spent"
TARGET_REACHED = "target reached"
SERVER_CLOSED = "server closed the connection"
REQUEST_BOUND = "request bound reached"  # responses too small to bring the target down in bounds
RESPONSE_BOUND = "response over the bound"
# Endings after which the server had nothing more on the way to us.
CLEAN_ENDS = frozenset({TARGET_REACHED, SERVER_CLOSED, REQUEST_BOUND})


def stall_timeout(rtt: float | None) -> float:
    return min(STALL_CAP, max(STALL_FLOOR, STALL_RTTS * (rtt or 0.0)))


@dataclass
class _Progress:
    stall: float
    stalled: bool = False
    responses: int = 0
    ended: str = ""


def _request(path: str, host: str, size: int) -> tuple[h11.Request, h11.EndOfMessage]:
    """A GET padded with ``X-Pad`` to ``size`` bytes on the wire (never less than its headers)."""
    headers = [
        ("Host", host),
        ("User-Agent", USER_AGENT),
        ("Accept", "*/*"),
        ("Accept-Encoding", "identity"),  # what comes down is what we count
        ("Connection", "keep-alive"),
    ]
    bare = h11.Connection(h11.CLIENT).send(h11.Request(method="GET", target=path, headers=headers)) or b""
    pad = size - len(bare) - len(b"X-Pad: \r\n")
    if pad > 0:
        headers.append(("X-Pad", "0" * pad))
    return h11.Request(method="GET", target=path, headers=headers), h11.EndOfMessage()


async def _read(conn: Connection, limit: int, progress: _Progress) -> bytes:
    try:
        async with asyncio.timeout(progress.stall):
            return await conn.read(limit)
    except TimeoutError:
        progress.stalled = True  # no reset, no EOF: the bytes just stopped
        raise


async def _send(conn: Connection, data: bytes, progress: _Progress) -> None:
    for at in range(0, len(data), WRITE_CHUNK):
        try:
            async with asyncio.timeout(progress.stall):
                await conn.write(data[at : at + WRITE_CHUNK])
        except TimeoutError:
            progress.stalled = True  # the send buffer stayed full: nothing is acknowledged
            raise


async def _response(h: h11.Connection, conn: Connection, progress: _Progress, down_cap: int) -> bool:
    """Read one response to its end; False when the transfer must stop after it."""
    op = conn.op
    assert op is not None
    eof = False
    while True:
        try:
            event = h.next_event()
        except h11.RemoteProtocolError:
            if eof:  # the peer hung up mid-response: an EOF, not garbage
                raise EOFError("connection closed before the response was complete") from None
            raise
        if event is h11.NEED_DATA:
            room = down_cap - op.received
            if room <= 0:
                progress.ended = RESPONSE_BOUND
                return False
            data = await _read(conn, min(READ_CHUNK, room), progress)
            eof = not data
            if eof and h.their_state is h11.SEND_RESPONSE:
                raise EOFError("connection closed before any response")
            h.receive_data(data)
        elif isinstance(event, h11.EndOfMessage):
            progress.responses += 1
            if h.their_state is not h11.DONE or h.our_state is not h11.DONE:
                progress.ended = SERVER_CLOSED
                return False
            h.start_next_cycle()
            return True
        elif isinstance(event, h11.ConnectionClosed):
            progress.ended = SERVER_CLOSED
            return False
        # Response heads, informational responses and body data: only their bytes matter.


async def _exchange(conn: Connection, path: str, host: str, target: int, progress: _Progress) -> None:
    op = conn.op
    assert op is not None
    h = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    up_cap, down_cap = target + REQUEST_SIZE, target + RESPONSE_ROOM
    while True:
        if op.sent >= target and op.received >= target:
            progress.ended = TARGET_REACHED
            return
        request, end = _request(path, host, REQUEST_SIZE if op.sent < target else 0)
        wire = (h.send(request) or b"") + (h.send(end) or b"")
        if progress.responses >= MAX_REQUESTS or op.sent + len(wire) > up_cap:
            progress.ended = REQUEST_BOUND
            return
        await _send(conn, wire, progress)
        if not await _response(h, conn, progress, down_cap):
            return


def _cost(conn: Connection, sent: int, received: int, before: int | None, ended: str) -> int:
    """What the transfer cost the volunteer: what we sent, and what arrived
    (the kernel's count, TLS records and unread bytes included), plus what
    may still be on its way when we hang up before the server was done."""
    after = tcpinfo.bytes_received(conn.sock)
    clean = ended in CLEAN_ENDS
    if before is None or after is None:
        return sent + received + (0 if clean else WINDOW_ALLOWANCE)
    return sent + max(received, after - before) + (0 if clean else IN_FLIGHT_ALLOWANCE)


async def transfer(
    trace: Trace,
    conn: Connection,
    *,
    host: str,
    sni: str | None,
    budget: ByteBudget,
    rtt: float | None,
    path: str = "/",
    purpose: Purpose = Purpose.CHECK,
    target: int = TARGET,
) -> TransferObservation:
    """Move ``target`` bytes each way over ``conn`` (consumed: the caller aborts it after)."""
    progress = _Progress(stall_timeout(rtt))
    reserved = reservation(target)
    if not budget.take(reserved):
        return TransferObservation(
            conn.address, conn.port, host, sni, purpose, trace.now(), 0.0, None,
            stall_timeout=progress.stall, rtt=rtt, target=target, ended=BUDGET_SPENT,
            transaction=conn.transaction,
        )  # fmt: skip
    op = trace.op(
        Operation.TRANSFER,
        transaction=conn.transaction,
        address=conn.address,
        port=conn.port,
        purpose=purpose,
        detail=f"GET {path} keep-alive, {target} bytes each way",
    )
    charged = reserved  # until it is counted: cancelled midway, nothing is given back
    with contextlib.suppress(OSError):
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    before = tcpinfo.bytes_received(conn.sock)
    try:
        with op:
            conn.op = op
            async with asyncio.timeout(MAX_DURATION):
                await _exchange(conn, path, host, target, progress)
        charged = min(reserved, _cost(conn, op.sent, op.received, before, progress.ended))
    finally:
        conn.op = None
        budget.give_back(reserved - charged)
    if op.failure is Failure.TIMEOUT and not progress.stalled and not progress.ended:
        progress.ended = f"did not finish within {MAX_DURATION:g} s"
    return TransferObservation(
        address=conn.address,
        port=conn.port,
        host=host,
        sni=sni,
        purpose=purpose,
        started=op.started,
        duration=op.duration,
        failure=op.failure,
        error=op.error,
        sent=op.sent,
        received=op.received,
        responses=progress.responses,
        stalled=progress.stalled,
        stall_timeout=progress.stall,
        rtt=rtt,
        target=target,
        ended=progress.ended,
        transaction=conn.transaction,
        charged=charged,
    )
