"""The censor's DPI box: reads the client's first flight, finds the TLS SNI
or the HTTP Host, and passes, resets, stalls or answers for the server.

Like a real middlebox it acts on the name alone: the same box passes a
decoy SNI or Host untouched, which is what lets the probe tell a name-based
block from a dead server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from dataclasses import dataclass, field

from probe.testbed.connections import Tasks, cancel_all, tracked
from probe.testbed.replies import Blockpage, Redirect, reason

__all__ = ["Action", "Blockpage", "CensorProxy", "Freeze", "Pass", "Redirect", "Reset", "Stall", "Throttle"]

FIRST_FLIGHT_TIMEOUT = 5.0
MAX_FIRST_FLIGHT = 16384
ANSWER_LINGER = 2.0  # how long an injected answer waits for the client to hang up
HANDSHAKE, CLIENT_HELLO, SERVER_NAME = 0x16, 1, 0
HTTP_METHOD = re.compile(rb"[A-Z]{1,16}( |\Z)")  # what a request line can start with


@dataclass(frozen=True)
class Pass:
    """Splice the connection to the backend, first flight included."""


@dataclass(frozen=True)
class Reset:
    """Send RST once the ClientHello or the request head has arrived."""


@dataclass(frozen=True)
class Stall:
    """Read and discard everything, answer nothing, until the client gives up."""


@dataclass(frozen=True)
class Throttle:
    """Splice, policing each direction to ``rate`` bytes a second after ``burst``
    bytes: the SNI-triggered throttler of Twitter 2021 (~128 kbit/s both ways)."""

    rate: int = 16_000
    burst: int = 4096


@dataclass(frozen=True)
class Freeze:
    """Splice the first ``after`` bytes of each direction, then carry nothing and
    send nothing, no reset either: the 2025 "16 KB" freeze of foreign hosting."""

    after: int = 16_384


Action = Pass | Reset | Stall | Blockpage | Redirect | Throttle | Freeze
SPLICE_CHUNK = 1460  # one segment at a time, so a policed rate is smooth rather than bursty


def client_hello_sni(data: bytes) -> str | bool | None:
    """The SNI (lower-case) of the ClientHello that ``data`` starts with.

    False while more bytes are needed; None when there is none to find (no
    SNI, or not a ClientHello). The hello may span several TLS records
    (RFC 8446 5.1 allows a handshake message to be fragmented), which is how
    some circumvention tools hide the SNI from DPI that reads one record.
    """
    hello, at = b"", 0
    while True:
        if len(data) < at + 5:
            return False
        if data[at] != HANDSHAKE:
            return None
        length = struct.unpack("!H", data[at + 3 : at + 5])[0]
        if len(data) < at + 5 + length:
            return False
        hello += data[at + 5 : at + 5 + length]
        at += 5 + length
        if len(hello) >= 4 and len(hello) >= 4 + int.from_bytes(hello[1:4], "big"):
            break
    if hello[0] != CLIENT_HELLO:
        return None
    try:
        return _sni(hello)
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def _sni(hello: bytes) -> str | None:
    at = 4 + 2 + 32  # handshake header, legacy version, random
    at += 1 + hello[at]  # session id
    at += 2 + struct.unpack("!H", hello[at : at + 2])[0]  # cipher suites
    at += 1 + hello[at]  # compression methods
    end = at + 2 + struct.unpack("!H", hello[at : at + 2])[0]
    at += 2
    while at + 4 <= end:
        kind, size = struct.unpack("!HH", hello[at : at + 4])
        at += 4
        if kind == SERVER_NAME:  # list length, then entries: type, name length, name
            entries, stop = at + 2, at + 2 + struct.unpack("!H", hello[at : at + 2])[0]
            while entries + 3 <= stop:
                name_type = hello[entries]
                name_length = struct.unpack("!H", hello[entries + 1 : entries + 3])[0]
                if name_type == 0:  # host_name
                    return hello[entries + 3 : entries + 3 + name_length].decode("ascii").lower()
                entries += 3 + name_length
            return None
        at += size
    return None


def http_host(data: bytes) -> str | bool | None:
    """The Host (lower-case, without port) of the HTTP request head ``data`` starts with.

    False while more bytes are needed; None when there is none to find (no
    Host header, or not HTTP at all: then the box need not wait for a head
    that will never come)."""
    if not HTTP_METHOD.match(data[:17]):
        return None
    if b"\r\n\r\n" not in data:
        return False
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            host = value.strip().decode("ascii", "replace").lower()
            # [v6]:port or name:port
            return host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
    return None


def _http_response(status: int, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status} {reason(status)}\r\nContent-Type: text/html; charset=utf-8\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


@dataclass
class CensorProxy:
    """A DPI box listening on (host, port), in front of ``backend``.

    A first flight starting with a TLS handshake record is judged by
    ``sni_rules`` (keyed by SNI), anything else by ``host_rules`` (keyed by
    HTTP Host); keys are lower-case, lookups exact; no rule means ``Pass``.
    Both tables may be changed while it serves. A client that sends nothing
    for FIRST_FLIGHT_TIMEOUT is hung up on (FIN)."""

    host: str
    port: int
    backend: tuple[str, int]
    sni_rules: dict[str, Action] = field(default_factory=dict)
    host_rules: dict[str, Action] = field(default_factory=dict)
    # What happens to a name no rule names: an IP-class policy (a freeze of
    # every flow to this address, whatever the SNI) is set here.
    default: Action = field(default_factory=Pass)

    async def __aenter__(self) -> CensorProxy:
        self._tasks: Tasks = set()
        self._server = await asyncio.start_server(self._client, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await cancel_all(self._tasks)
        await self._server.wait_closed()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def _first_flight(self, reader: asyncio.StreamReader) -> tuple[bytes, str | None]:
        data = b""
        async with asyncio.timeout(FIRST_FLIGHT_TIMEOUT):
            while len(data) < MAX_FIRST_FLIGHT:
                chunk = await reader.read(4096)
                if not chunk:
                    return data, None
                data += chunk
                name = client_hello_sni(data) if data[0] == HANDSHAKE else http_host(data)
                if name is not False:
                    return data, name if isinstance(name, str) else None
        return data, None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with tracked(self._tasks, writer):
            data, name = await self._first_flight(reader)
            if not data:
                return  # connected and hung up (a TCP check): nothing to inspect or forward
            rules = self.sni_rules if data[0] == HANDSHAKE else self.host_rules
            await self._act(rules.get(name or "", self.default), data, reader, writer)

    async def _act(
        self, action: Action, data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if isinstance(action, Reset):
            sock = writer.get_extra_info("socket")
            # Linger 0 makes close() send RST instead of FIN: what a DPI box injects.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif isinstance(action, Stall):
            while await reader.read(65536):
                pass  # swallow everything, answer nothing, until the client gives up
        elif isinstance(action, Blockpage):
            await _answer(_http_response(action.status, action.body.encode()), reader, writer)
        elif isinstance(action, Redirect):
            location = f"Location: {action.location}\r\n"
            await _answer(_http_response(action.status, b"", location), reader, writer)
        else:
            await self._splice(data, reader, writer, action)

    async def _splice(
        self,
        data: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        action: Pass | Throttle | Freeze,
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.backend)
        carried = {"up": len(data)}
        if isinstance(action, Freeze):
            up_writer.write(data[: action.after])
        else:
            up_writer.write(data)
        loop = asyncio.get_running_loop()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: str) -> None:
            started = loop.time()
            size = SPLICE_CHUNK if isinstance(action, Throttle) else 65536
            try:
                while chunk := await src.read(size):
                    done = carried.get(way, 0)
                    carried[way] = done + len(chunk)
                    if isinstance(action, Freeze):
                        chunk = chunk[: max(0, action.after - done)]
                        if not chunk:
                            continue  # frozen: read and drop, answer nothing
                    dst.write(chunk)
                    await dst.drain()
                    if isinstance(action, Throttle) and carried[way] > action.burst:
                        due = started + (carried[way] - action.burst) / action.rate
                        await asyncio.sleep(max(0.0, due - loop.time()))
            except OSError:
                pass  # either side reset: the other learns of it by EOF
            finally:
                with contextlib.suppress(OSError):
                    if dst.can_write_eof():
                        dst.write_eof()

        try:
            await asyncio.gather(pump(reader, up_writer, "up"), pump(up_reader, writer, "down"))
        finally:
            up_writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await up_writer.wait_closed()


async def _answer(response: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send an injected response and close gracefully.

    Closing a socket with unread input makes the kernel send RST, which could
    destroy the response before the client reads it; so half-close, then
    drain what the client still sends (a request body) until it hangs up."""
    writer.write(response)
    await writer.drain()
    writer.write_eof()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ANSWER_LINGER):
            while await reader.read(65536):
                pass
