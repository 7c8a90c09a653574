"""T3, the throttling confirmation: a bounded download and upload at a control
peer, with the endpoint's real name as SNI and with the decoy.

The peer (``msgprobe control`` abroad) accepts any SNI and its certificate
is not checked here (it cannot name the messenger): what is measured is
whether the path slows a flow *because of the name in its ClientHello*,
which the messenger's own servers cannot show for downloads (they serve
nothing to a decoy). Per arm: ``GET /v1/source?bytes=DOWNLOAD`` and
``POST /v1/sink`` of ``UPLOAD`` bytes, each on a new connection (a
per-flow policer keys on the 5-tuple), at most ``ARM_SECONDS`` each,
goodput counted after the first ``SKIP`` bytes (slow start, the policer's
burst). The send buffer is kept small so an upload's pace is the path's,
not the kernel's buffer filling. Bytes come out of the daily budget first.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from probe.analysis.goodput import after, rate
from probe.control.client import Peer
from probe.measure import tcp, tls
from probe.measure.budget import ByteBudget
from probe.measure.tcp import Connection
from probe.measure.tls import TlsContexts
from probe.measure.trace import Op, Trace
from probe.model import ConfirmArm, ConfirmObservation, Sample, TraceEvent
from probe.vocab import Failure, Operation, Purpose

DOWNLOAD = 128 * 1024
UPLOAD = 64 * 1024
SKIP = 32 * 1024
ARM_SECONDS = 10.0
SEND_BUFFER = 16 * 1024
CHUNK = 4096
HEAD_CAP = 16 * 1024
# Worst case per arm: both transfers, two handshakes, heads, a window in flight.
ARM_RESERVE = DOWNLOAD + UPLOAD + 2 * 24 * 1024 + 2 * HEAD_CAP + 128 * 1024
NOT_HTTPS = "control peer {peer} is not https: T3 needs TLS to name the service in its SNI"


def reserve_for(pairs: int) -> int:
    return 2 * pairs * ARM_RESERVE


def _target(peer: Peer) -> tuple[str, int] | None:
    parts = urlsplit(peer.config.url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    return parts.hostname, parts.port or 443


def _head(method: str, path: str, host: str, token: str, length: int | None = None) -> bytes:
    extra = f"Content-Length: {length}\r\n" if length is not None else ""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"{extra}Connection: close\r\n\r\n"
    ).encode("ascii", "replace")


async def _open(
    trace: Trace,
    address: str,
    port: int,
    sni: str,
    context: TlsContexts,
    timeout: float,
    route: Mapping[tuple[str, int], tuple[str, int]] | None,
) -> tuple[Connection | None, Failure | None, str | None]:
    observation, conn = await tcp.connect(
        trace, address, port, timeout=timeout, purpose=Purpose.CONTROL_TRANSFER, route=route
    )
    if conn is None:
        return None, observation.failure, observation.error
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    shake = await tls.handshake(
        trace, conn, context.inspect, sni, timeout=timeout, purpose=Purpose.CONTROL_TRANSFER
    )
    if shake.failure is not None:
        return None, shake.failure, shake.error
    return conn, None, None


def _samples(trace: Trace, transaction: int) -> tuple[Sample, ...]:
    event: TraceEvent = next(
        e
        for e in reversed(trace.events)
        if e.transaction == transaction and e.operation is Operation.TRANSFER
    )
    return event.samples


@contextlib.contextmanager
def _transfer(trace: Trace, conn: Connection, detail: str) -> Iterator[Op]:
    """One transfer op on ``conn``: its reads and writes are counted into it."""
    with trace.op(
        Operation.TRANSFER,
        transaction=conn.transaction,
        address=conn.address,
        port=conn.port,
        purpose=Purpose.CONTROL_TRANSFER,
        detail=detail,
    ) as op:
        conn.op = op
        try:
            yield op
        finally:
            conn.op = None


async def _download(trace: Trace, conn: Connection, host: str, token: str) -> tuple[int, float | None]:
    with _transfer(trace, conn, f"GET /v1/source?bytes={DOWNLOAD}") as op:
        await conn.write(_head("GET", f"/v1/source?bytes={DOWNLOAD}", host, token))
        total = 0
        try:
            async with asyncio.timeout(ARM_SECONDS):
                while total < DOWNLOAD + HEAD_CAP:
                    data = await conn.read(65536)
                    if not data:
                        break
                    total += len(data)
        except TimeoutError:
            if total == 0:
                raise
    goodput, _ = after(_samples(trace, conn.transaction), SKIP)
    if goodput is None and op.received >= DOWNLOAD:
        # Too fast to sample: the whole op is a lower bound, which only makes the decoy look slower.
        goodput = op.received / max(op.duration, 0.001)
    return op.received, goodput


async def _upload(trace: Trace, conn: Connection, host: str, token: str) -> tuple[int, float | None]:
    with _transfer(trace, conn, f"POST /v1/sink ({UPLOAD} bytes)") as op:
        async with asyncio.timeout(ARM_SECONDS):
            await conn.write(_head("POST", "/v1/sink", host, token, UPLOAD))
            chunk = b"\0" * CHUNK
            for _ in range(UPLOAD // CHUNK):
                await conn.write(chunk)
            await conn.read(HEAD_CAP)  # the peer answers once it has it all: the upload is done
    # Kernel buffers swallow an upload at once: its end is the peer's answer
    # (it answers once it has every byte), its start the moment SKIP bytes
    # had been handed over.
    crossed = next((s for s in _samples(trace, conn.transaction) if s.sent >= SKIP), None)
    goodput = None
    if crossed is not None and op.sent >= UPLOAD:
        goodput = rate(op.sent - crossed.sent, op.started + op.duration - crossed.t)
    if goodput is None and op.sent >= UPLOAD and op.failure is None:
        # Handed over in one go (no sample past SKIP): request to answer, over all of it.
        goodput = rate(op.sent, op.duration)
    return op.sent, goodput


async def _arm(
    trace: Trace,
    peer: Peer,
    address: str,
    port: int,
    sni: str,
    decoy: bool,
    contexts: TlsContexts,
    timeout: float,
    route: Mapping[tuple[str, int], tuple[str, int]] | None,
) -> ConfirmArm:
    host = urlsplit(peer.config.url).netloc
    results: list[tuple[int, float | None]] = []
    for step in (_download, _upload):
        conn, failure, error = await _open(trace, address, port, sni, contexts, timeout, route)
        if conn is None:
            return ConfirmArm(sni, decoy, failure=failure, error=error)
        try:
            results.append(await step(trace, conn, host, peer.token))
        except (OSError, EOFError) as exc:
            return ConfirmArm(sni, decoy, failure=Failure.UNKNOWN, error=type(exc).__name__)
        finally:
            conn.abort()
    (down, down_rate), (up, up_rate) = results
    return ConfirmArm(sni, decoy, down, down_rate, up, up_rate)


async def measure_confirm(
    trace: Trace,
    contexts: TlsContexts,
    budget: ByteBudget,
    peer: Peer,
    *,
    address: str,
    host: str,
    decoy_sni: str,
    pairs: int,
    timeout: float,
    route: Mapping[tuple[str, int], tuple[str, int]] | None = None,
) -> ConfirmObservation:
    name = peer.config.name
    target = _target(peer)
    if target is None:
        return ConfirmObservation(address, host, decoy_sni, name, skipped=NOT_HTTPS.format(peer=name))
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target[0], target[1], type=socket.SOCK_STREAM)
    except OSError:
        infos = []
    if not infos:
        return ConfirmObservation(address, host, decoy_sni, name, skipped="control peer did not resolve")
    peer_address = str(infos[0][4][0])
    reserved = reserve_for(pairs)
    if pairs <= 0 or not budget.take(reserved):
        return ConfirmObservation(address, host, decoy_sni, name, skipped="byte budget spent")
    arms = []
    spent = reserved
    try:
        for index in range(2 * pairs):
            decoy = index % 2 == 1
            arms.append(
                await _arm(
                    trace,
                    peer,
                    peer_address,
                    target[1],
                    decoy_sni if decoy else host,
                    decoy,
                    contexts,
                    timeout,
                    route,
                )
            )
        spent = min(reserved, sum(a.download_bytes + a.upload_bytes + 64 * 1024 for a in arms))
    finally:
        budget.give_back(reserved - spent)
    return ConfirmObservation(address, host, decoy_sni, name, tuple(arms), reserved=reserved)
