"""Hostile servers: what a network operator who controls every byte can send.

Each behaviour is one plain-TCP (HTTP) or UDP (DNS) server on a loopback
address. They never end on their own: a 1 GB body is streamed for as long
as the client reads, a slowloris head trickles forever. The probe's bounds
(body cap, header limits, timeouts, redirect limit, DNS parsing) are what
must end each exchange; the tests hold it to that in time and memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from probe.testbed.connections import Tasks, cancel_all, tracked

Writer = asyncio.StreamWriter
Behaviour = Callable[[asyncio.StreamReader, Writer], Awaitable[None]]
GIB = 1 << 30
CHUNK = 65536


async def _head(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        async with asyncio.timeout(5):
            await reader.readuntil(b"\r\n\r\n")


async def _stream(writer: Writer, chunk: bytes, total: int) -> None:
    sent = 0
    while sent < total:
        writer.write(chunk)
        await writer.drain()
        sent += len(chunk)


async def huge_body(reader: asyncio.StreamReader, writer: Writer) -> None:
    await _head(reader)
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {GIB}\r\nContent-Type: text/html\r\n\r\n".encode())
    await _stream(writer, b"<p>" + b"x" * (CHUNK - 3), GIB)


async def gzip_bomb(reader: asyncio.StreamReader, writer: Writer) -> None:
    """1 GiB of zeros, gzip-encoded (about 1 MB on the wire), streamed as it is compressed."""
    await _head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/html\r\n\r\n")
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    for _ in range(GIB // len(zeros)):
        piece = packer.compress(zeros)
        if piece:
            writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0)  # zeros compress to almost nothing: yield, or this server hogs the loop
    writer.write(packer.flush())
    await writer.drain()


async def slowloris(reader: asyncio.StreamReader, writer: Writer) -> None:
    await _head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        writer.write(b"X")
        await writer.drain()
        await asyncio.sleep(0.2)


async def redirect_loop(reader: asyncio.StreamReader, writer: Writer) -> None:
    await _head(reader)
    writer.write(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    await _head(reader)  # keep-alive: the next hop may ride this connection
    writer.write(b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def endless_header_line(reader: asyncio.StreamReader, writer: Writer) -> None:
    await _head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
    await _stream(writer, b"a" * CHUNK, 100 << 20)


async def many_headers(reader: asyncio.StreamReader, writer: Writer) -> None:
    await _head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for start in range(0, 100_000, 1000):
        writer.write(b"".join(b"X-H%d: v\r\n" % n for n in range(start, start + 1000)))
        await writer.drain()
    writer.write(b"Content-Length: 0\r\n\r\n")
    await writer.drain()


async def garbage(reader: asyncio.StreamReader, writer: Writer) -> None:
    await _head(reader)
    await _stream(writer, os.urandom(CHUNK), 8 << 20)


async def bad_chunking(reader: asyncio.StreamReader, writer: Writer) -> None:
    await _head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZZ\r\nmore\r\n")
    await writer.drain()
    await asyncio.sleep(3600)


async def garbage_tls(reader: asyncio.StreamReader, writer: Writer) -> None:
    """Answers a ClientHello with random bytes where the ServerHello belongs."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await reader.read(CHUNK)
    await _stream(writer, os.urandom(CHUNK), 1 << 20)


HTTP_BEHAVIOURS: dict[str, Behaviour] = {
    "huge-body": huge_body,
    "gzip-bomb": gzip_bomb,
    "slowloris": slowloris,
    "redirect-loop": redirect_loop,
    "endless-header-line": endless_header_line,
    "many-headers": many_headers,
    "garbage": garbage,
    "bad-chunking": bad_chunking,
}


@dataclass
class HostileServer:
    host: str
    behaviour: Behaviour
    port: int = 0
    _tasks: Tasks = field(default_factory=set)

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await cancel_all(self._tasks)
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        async with tracked(self._tasks, writer):
            with contextlib.suppress(OSError):
                await self.behaviour(reader, writer)


class GarbageDns(asyncio.DatagramProtocol):
    """A resolver that answers every query with random bytes (and, every other
    time, with a reply too large for any real answer)."""

    def __init__(self) -> None:
        self.count = 0

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.count += 1
        size = 60_000 if self.count % 2 else 40
        # The query's id first, so it is not simply dropped as unrelated.
        self.transport.sendto(data[:2] + os.urandom(size), addr)
