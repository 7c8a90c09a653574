"""TCP step: a three-way handshake to one address and port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from probe.measure.errors import classify
from probe.model import TcpObservation

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(
    address: str,
    port: int,
    *,
    timeout: float,
    t0: float,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[TcpObservation, Stream | None]:
    """Connect and hand the open stream back, so TLS runs on this very connection."""
    started = clock()
    try:
        async with asyncio.timeout(timeout):
            stream = await asyncio.open_connection(address, port)
    except Exception as exc:
        failure, error = classify(exc, keep=(address,))
        return TcpObservation(address, port, started - t0, clock() - started, failure, error), None
    return TcpObservation(address, port, started - t0, clock() - started, None), stream


async def close(stream: Stream | None) -> None:
    if stream is None:
        return
    writer = stream[1]
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass  # a reset on close tells us nothing we need


def abort(stream: Stream) -> None:
    """Drop a connection whose handshake failed: a graceful close would wait
    on a peer that already reset or stalled."""
    stream[1].transport.abort()
