"""T1 throttling pairs: the same address, the real SNI and a decoy SNI, interleaved.

A policer keyed on the SNI (Twitter in Russia 2021, googlevideo.com 2024)
slows every flow that names the service and no other, so the control is the
same server reached with a harmless name: same path, same server, same
minute. Each arm is a new connection and handshake (a per-flow policer
keeps state per 5-tuple); when T0 saw a slow *transfer* (a policer with a
burst lets handshakes through), it is followed by one ``GET`` of the
resource T0 found slow, with ``Connection: close``, read up to ``READ_CAP``
bytes or ``ARM_SECONDS``, whichever comes first. Handshake-only arms cost a
few KB; reading ones ~120 KB each (what the kernel took in past the cap
counts too). The decoy arm does not verify the certificate (the server has
none for the decoy name); the real arm does, so a slow *interception* box
is not taken for the service.

Bytes are reserved from the daily budget before the first arm and what was
not used is given back at the end, counted by the kernel (``TCP_INFO``), so
the reservation covers what the server sent, not only what we read. The
receive buffer is kept small so a server cannot push much past what we
read before we hang up.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from probe.analysis.goodput import after
from probe.measure import tcp, tcpinfo, tls
from probe.measure.budget import ByteBudget
from probe.measure.exchange import USER_AGENT
from probe.measure.tcp import Connection
from probe.measure.tls import TlsContexts
from probe.measure.trace import Trace
from probe.model import ConfirmObservation, PairArm, PairsObservation, TransferObservation
from probe.vocab import Operation, Purpose

READ_CAP = 48 * 1024  # past a hashlimit policer's smallest burst (16 KiB) with room to see its rate
SKIP = 16 * 1024  # goodput counts after this: slow start and the policer's burst
ARM_SECONDS = 10.0  # cap per arm, whatever the config's HTTP timeout
SPACING = 0.25  # seconds between arms: new flows, not back-to-back retransmission noise
RECEIVE_BUFFER = 64 * 1024  # the kernel doubles it; bounds what a server pushes past READ_CAP
# Per arm: the server's flight (a long chain fits), what we read, what the
# window let through before we hung up, and our own ClientHello and request.
# The reservation is the worst case (a full window in flight as we hang up);
# the charge afterwards is what the kernel received plus a segment train.
HANDSHAKE_ALLOWANCE = 24 * 1024
WINDOW_ALLOWANCE = 2 * RECEIVE_BUFFER
IN_FLIGHT_ALLOWANCE = 16 * 1024
SENT_ALLOWANCE = 2 * 1024
ARM_RESERVE = HANDSHAKE_ALLOWANCE + READ_CAP + WINDOW_ALLOWANCE + SENT_ALLOWANCE
SHAKE_RESERVE = HANDSHAKE_ALLOWANCE + SENT_ALLOWANCE
BUDGET_SPENT = "byte budget spent"


@dataclass
class PairsLog:
    """When pairs ran at each endpoint address, and what they saw: kept across
    cycles (the daemon holds one for its lifetime), so the schedule survives
    and a throttled (or frozen) endpoint is not re-measured every cycle at the
    volunteer's expense."""

    first_seen: dict[str, float] = field(default_factory=dict)
    last: dict[str, tuple[float, PairsObservation]] = field(default_factory=dict)
    confirmed: dict[str, tuple[float, ConfirmObservation]] = field(default_factory=dict)  # T3
    # freeze:PORT's transfers (the check's and its canaries'), by the same key:
    # a clean one stands for ``throttle.every``, a stalled one for an hour.
    freezes: dict[str, tuple[float, tuple[TransferObservation, ...]]] = field(default_factory=dict)


def reserve_for(pairs: int, read: bool) -> int:
    return 2 * pairs * (ARM_RESERVE if read else SHAKE_RESERVE)


def _request(path: str, host: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii", "replace")


async def _read(conn: Connection, deadline: float) -> bool:
    """Read until READ_CAP, EOF or the deadline: a deadline after progress is data, not failure.

    True when the server was done (EOF): nothing more of it was on the way."""
    total = 0
    try:
        async with asyncio.timeout_at(deadline):
            while total < READ_CAP:
                data = await conn.read(min(65536, READ_CAP - total))
                if not data:
                    return True
                total += len(data)
    except TimeoutError:
        if total == 0:
            raise  # nothing at all: a stall, recorded as the arm's failure
    return False


async def _arm(
    trace: Trace,
    address: str,
    port: int,
    sni: str,
    context: ssl.SSLContext,
    path: str | None,
    *,
    decoy: bool,
    connect_timeout: float,
    tls_timeout: float,
    seconds: float,
    route: Mapping[tuple[str, int], tuple[str, int]] | None,
) -> tuple[PairArm, int]:
    """One arm, and the bytes it cost (kernel count, or the allowance where unknown)."""
    started = trace.now()
    observation, conn = await tcp.connect(
        trace, address, port, timeout=connect_timeout, purpose=Purpose.PAIR, route=route
    )
    if conn is None:
        arm = PairArm(sni, decoy, started, failure=observation.failure, error=observation.error)
        return arm, 0
    cost = ARM_RESERVE if path is not None else SHAKE_RESERVE
    try:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        shake = await tls.handshake(trace, conn, context, sni, timeout=tls_timeout, purpose=Purpose.PAIR)
        if shake.failure is not None:
            arm = PairArm(
                sni,
                decoy,
                started,
                observation.duration,
                shake.duration,
                failure=shake.failure,
                error=shake.error,
                failed_operation=Operation.TLS_HANDSHAKE,
            )
            return arm, SHAKE_RESERVE
        if path is None:
            kernel = tcpinfo.bytes_received(conn.sock)
            if kernel is not None:
                cost = min(SHAKE_RESERVE, kernel + SENT_ALLOWANCE)
            arm = PairArm(sni, decoy, started, observation.duration, shake.duration, shake.bytes_received)
            return arm, cost
        loop = asyncio.get_running_loop()
        with trace.op(
            Operation.TRANSFER,
            transaction=conn.transaction,
            address=address,
            port=port,
            purpose=Purpose.PAIR,
            detail=f"GET {path} (SNI {sni})",
        ) as op:
            conn.op = op
            await conn.write(_request(path, sni))
            complete = await _read(conn, loop.time() + seconds)
        conn.op = None
        kernel = tcpinfo.bytes_received(conn.sock)
        event = next(
            e
            for e in reversed(trace.events)
            if e.transaction == conn.transaction and e.operation is Operation.TRANSFER
        )
        goodput, rates = after(event.samples, SKIP)
        if goodput is None and op.received >= READ_CAP:
            # Too fast to sample: the whole read over the whole op (request
            # and server think time included) is a lower bound of its rate,
            # which only ever makes the decoy look slower than it was.
            goodput = op.received / max(op.duration, 0.001)
        if kernel is not None:
            # What arrived (read or not), what we sent, and the window in flight at hang-up.
            in_flight = 0 if complete else IN_FLIGHT_ALLOWANCE
            cost = min(ARM_RESERVE, kernel + op.sent + SENT_ALLOWANCE + in_flight)
        arm = PairArm(
            sni,
            decoy,
            started,
            observation.duration,
            shake.duration,
            shake.bytes_received,
            op.received,
            op.duration,
            goodput,
            rates,
            op.failure,
            op.error,
            Operation.TRANSFER if op.failure is not None else None,
        )
        return arm, cost
    finally:
        conn.abort()


async def measure_pairs(
    trace: Trace,
    contexts: TlsContexts,
    budget: ByteBudget,
    *,
    address: str,
    port: int,
    host: str,
    decoy_sni: str,
    path: str | None,
    pairs: int,
    reason: str,
    connect_timeout: float,
    tls_timeout: float,
    seconds: float = ARM_SECONDS,
    route: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    spacing: float = SPACING,
) -> PairsObservation:
    """``pairs`` interleaved real/decoy arms to ``address``, inside the day's byte budget;
    ``path`` None: handshakes only."""
    reserved = reserve_for(pairs, path is not None)
    if pairs <= 0 or not budget.take(reserved):
        return PairsObservation(address, port, host, decoy_sni, reason, skipped=BUDGET_SPENT)
    arms: list[PairArm] = []
    used = reserved  # until the arms finish: cancelled mid-arm, nothing is given back
    spent = 0
    try:
        for index in range(2 * pairs):
            if index:
                await asyncio.sleep(spacing)
            decoy = index % 2 == 1
            arm, cost = await _arm(
                trace,
                address,
                port,
                decoy_sni if decoy else host,
                contexts.inspect if decoy else contexts.verify,
                path,
                decoy=decoy,
                connect_timeout=connect_timeout,
                tls_timeout=tls_timeout,
                seconds=min(seconds, ARM_SECONDS),
                route=route,
            )
            arms.append(arm)
            spent += cost
            if arm.failure is not None and arm.failed_operation is None:
                break  # no connection at all: the TCP check tells that story, stop spending
        used = min(reserved, spent)
    finally:
        budget.give_back(reserved - used)
    return PairsObservation(address, port, host, decoy_sni, reason, tuple(arms), reserved=reserved)
