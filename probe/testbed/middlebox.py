"""The censor's DPI box: reads the client's first flight, finds the TLS SNI
or the HTTP Host, and passes, resets, stalls or answers for the server.

Like a real middlebox it acts on the name alone: the same box passes a
decoy SNI or Host untouched, which is what lets the probe tell a name-based
block from a dead server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field

from probe.testbed.connections import Tasks, cancel_all, tracked

FIRST_FLIGHT_TIMEOUT = 5.0
MAX_FIRST_FLIGHT = 16384


@dataclass(frozen=True)
class Pass:
    pass


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class Stall:
    pass


@dataclass(frozen=True)
class Blockpage:
    body: str
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    location: str


Action = Pass | Reset | Stall | Blockpage | Redirect


def client_hello_sni(data: bytes) -> str | bool | None:
    """The SNI of a complete ClientHello; False while more bytes are needed; None without SNI."""
    if len(data) < 5:
        return False
    length = struct.unpack("!H", data[3:5])[0]
    if len(data) < 5 + length:
        return False
    hello = data[5 : 5 + length]
    try:
        if hello[0] != 1:
            return None
        at = 4 + 2 + 32  # handshake header, version, random
        at += 1 + hello[at]  # session id
        at += 2 + struct.unpack("!H", hello[at : at + 2])[0]  # cipher suites
        at += 1 + hello[at]  # compression methods
        end = at + 2 + struct.unpack("!H", hello[at : at + 2])[0]
        at += 2
        while at + 4 <= end:
            kind, size = struct.unpack("!HH", hello[at : at + 4])
            at += 4
            if kind == 0:  # server_name: list length, type, name length, name
                name_length = struct.unpack("!H", hello[at + 3 : at + 5])[0]
                return hello[at + 5 : at + 5 + name_length].decode("ascii", "replace").lower()
            at += size
    except (IndexError, struct.error):
        return None
    return None


def http_host(data: bytes) -> str | bool | None:
    if b"\r\n\r\n" not in data:
        return False
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            return value.strip().decode("ascii", "replace").split(":")[0].lower()
    return None


def _http_response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


@dataclass
class CensorProxy:
    host: str
    port: int
    backend: tuple[str, int]
    sni_rules: dict[str, Action] = field(default_factory=dict)
    host_rules: dict[str, Action] = field(default_factory=dict)

    async def __aenter__(self) -> CensorProxy:
        self._tasks: Tasks = set()
        self._server = await asyncio.start_server(self._client, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await cancel_all(self._tasks)
        await self._server.wait_closed()

    async def _first_flight(self, reader: asyncio.StreamReader) -> tuple[bytes, str | None]:
        data = b""
        async with asyncio.timeout(FIRST_FLIGHT_TIMEOUT):
            while len(data) < MAX_FIRST_FLIGHT:
                chunk = await reader.read(4096)
                if not chunk:
                    return data, None
                data += chunk
                name = client_hello_sni(data) if data[:1] == b"\x16" else http_host(data)
                if name is not False:
                    return data, name if isinstance(name, str) else None
        return data, None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with tracked(self._tasks, writer):
            data, name = await self._first_flight(reader)
            rules = self.sni_rules if data[:1] == b"\x16" else self.host_rules
            await self._act(rules.get(name or "", Pass()), data, reader, writer)

    async def _act(
        self, action: Action, data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if isinstance(action, Reset):
            sock = writer.get_extra_info("socket")
            # Linger 0 makes close() send RST instead of FIN: what a DPI box injects.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif isinstance(action, Stall):
            while await reader.read(4096):
                pass  # swallow everything, answer nothing, until the client gives up
        elif isinstance(action, Blockpage):
            writer.write(_http_response(action.status, "OK", action.body.encode()))
            await writer.drain()
        elif isinstance(action, Redirect):
            writer.write(_http_response(302, "Found", b"", f"Location: {action.location}\r\n"))
            await writer.drain()
        else:
            await self._splice(data, reader, writer)

    async def _splice(self, data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.backend)
        up_writer.write(data)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    if dst.can_write_eof():
                        dst.write_eof()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await up_writer.wait_closed()
