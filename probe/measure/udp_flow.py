"""A paced UDP flow: Binding Requests at a call's packet rate, to catch a
censor that lets a call start and cuts it off after a few dozen packets
(dpi-ch's "l4-25": ~25 packets, TCP and UDP alike), or degrades it.

Each request has its own transaction id, so every answer says which request
it answers; the flow records how many were answered, the number of the last
one answered, and per second of sending how many went out and came back.
Bounded by time and by bytes moved both ways, whatever the server sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from probe.measure import stun, udp
from probe.measure.trace import Op, Trace
from probe.model import UdpFlow
from probe.vocab import Operation, Purpose

FLOW_RATE = 50.0  # requests per second: a voice call's packet rate
FLOW_GRACE = 1.0  # s to wait for the last answers after the last request


class _Flow:
    """The bookkeeping of one paced flow: which request numbers were answered."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.pending: dict[bytes, int] = {}  # transaction id -> request number (0-based)
        self.sent_at: list[float] = []  # seconds after the start, per request
        self.answered: set[int] = set()
        self.ignored = 0

    def per_second(self) -> tuple[tuple[int, int], ...]:
        seconds = int(self.sent_at[-1]) + 1 if self.sent_at else 0
        table = [[0, 0] for _ in range(seconds)]
        for n, t in enumerate(self.sent_at):
            table[int(t)][0] += 1
            table[int(t)][1] += n in self.answered
        return tuple((a, b) for a, b in table)


async def paced_flow(
    trace: Trace,
    address: str,
    port: int,
    *,
    seconds: float,
    max_bytes: int,
    purpose: Purpose = Purpose.CHECK,
    host: str = "",
    rate: float = FLOW_RATE,
) -> UdpFlow:
    """Binding Requests at ``rate`` per second for ``seconds``, stopping before
    the bytes moved (both ways) would pass ``max_bytes``.

    A censor that cuts a call off after ~25 packets (dpi-ch's "l4-25")
    shows as answers that stop for good part-way; a policer as a falling
    share answered. The caller reserved ``max_bytes`` of the day's budget.
    """
    loop = asyncio.get_running_loop()
    transaction = trace.transaction()
    flow = _Flow(loop.time())
    over = False

    def op(operation: Operation) -> Op:
        return trace.op(
            operation,
            transaction=transaction,
            address=address,
            port=port,
            purpose=purpose,
            detail="paced stun flow",
        )

    sending = op(Operation.UDP_SEND)
    receiving = op(Operation.UDP_RECEIVE)

    async def receive(sock: socket.socket) -> None:
        nonlocal over
        while True:
            data = await udp.receive(loop, sock, 3600.0)
            if data is None:
                continue
            if sending.sent + receiving.received + len(data) > max_bytes:
                over = True  # the bound holds whatever the server sends: stop reading
                return
            receiving.count(received=len(data))
            txid = data[8:20]
            n = flow.pending.get(txid) if len(data) >= stun.HEADER else None
            if n is not None and stun.judge(data, txid).valid:
                flow.answered.add(n)
                del flow.pending[txid]
            else:
                flow.ignored += 1

    with receiving, sending:
        sock = udp.open_socket(address, port)
        reader = asyncio.ensure_future(receive(sock))
        try:
            end = flow.started + seconds
            n = 0
            # Room under the bound for a request and an answer of a few attributes.
            while loop.time() < end and not reader.done():
                if sending.sent + receiving.received + 4 * stun.HEADER > max_bytes:
                    over = True
                    break
                txid = stun.transaction_id()
                flow.pending[txid] = n
                flow.sent_at.append(loop.time() - flow.started)
                udp.send(sock, stun.binding_request(txid), sending)
                n += 1
                await asyncio.sleep(max(0.0, flow.started + n / rate - loop.time()))
            if not reader.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), FLOW_GRACE)
        finally:
            reader.cancel()
            outcome = (await asyncio.gather(reader, return_exceptions=True))[0]
            sock.close()
        if isinstance(outcome, Exception):
            raise outcome  # an ICMP error or a socket failure: recorded on this operation
    failure = sending.failure or receiving.failure
    return UdpFlow(
        address=address,
        port=port,
        purpose=purpose,
        started=sending.started,
        duration=sending.duration,
        sent=len(flow.sent_at),
        answered=len(flow.answered),
        last_answered=max(flow.answered) + 1 if flow.answered else 0,
        per_second=flow.per_second(),
        stopped="failure" if failure is not None else "bytes" if over else "time",
        failure=failure,
        error=sending.error or receiving.error,
        host=host,
        ignored=flow.ignored,
        bytes_sent=sending.sent,
        bytes_received=receiving.received,
    )
