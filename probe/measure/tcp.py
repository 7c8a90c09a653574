"""TCP step: a three-way handshake to one address and port, and the measured
connection that TLS and HTTP then ride (one connect per address and port).

``Connection`` counts every byte it moves into the operation in progress, so
the trace can tell goodput, time to first byte and "stalled after N bytes"
without a second instrument.
"""

from __future__ import annotations

import asyncio
import ssl

from probe.measure.trace import Op, Trace
from probe.model import TcpObservation
from probe.vocab import Operation, Purpose

READ_CHUNK = 65536


class Connection:
    """An open, measured TCP connection (TLS once ``start_tls`` has run)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        port: int,
        transaction: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.address = address
        self.port = port
        self.transaction = transaction
        self.tls = False
        self.op: Op | None = None  # the operation bytes are counted into

    async def read(self, limit: int = READ_CHUNK) -> bytes:
        data = await self.reader.read(limit)
        if self.op is not None and data:
            self.op.count(received=len(data))
        return data

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        if self.op is not None:
            self.op.count(sent=len(data))
        await self.writer.drain()

    async def start_tls(self, context: ssl.SSLContext, sni: str, timeout: float) -> None:
        await self.writer.start_tls(context, server_hostname=sni, ssl_handshake_timeout=timeout + 1)
        self.tls = True

    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self.writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    def abort(self) -> None:
        """Drop a connection whose handshake or exchange failed: a graceful
        close would wait on a peer that already reset or stalled."""
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            self.abort()  # a reset on close tells us nothing we need


async def connect(
    trace: Trace, address: str, port: int, *, timeout: float, purpose: Purpose = Purpose.CHECK
) -> tuple[TcpObservation, Connection | None]:
    """Connect and hand the open connection back, so TLS runs on this very connection."""
    transaction = trace.transaction()
    stream = None
    with trace.op(
        Operation.CONNECT, transaction=transaction, address=address, port=port, purpose=purpose
    ) as op:
        async with asyncio.timeout(timeout):
            stream = await asyncio.open_connection(address, port, limit=READ_CHUNK)
    observation = TcpObservation(
        address, port, op.started, op.duration, op.failure, op.error, purpose, transaction
    )
    if stream is None:
        return observation, None
    return observation, Connection(stream[0], stream[1], address, port, transaction)
