"""One HTTP/1.1 request and response over a measured connection, with h11.

h11 is sans-IO: it parses what we feed it from the connection the TCP/TLS
check already opened, so the request goes exactly where the probe measured
(OONI's single-use dialers) and not wherever an HTTP client's pool or
resolver would take it. Every bound a hostile server could push on is here:
header bytes (h11's incomplete-event limit), the body cap, bounded
decompression (a gzip bomb inflates to at most the cap), and the caller's
deadline for slow servers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import h11

from probe.measure.errors import ProtocolViolation
from probe.measure.tcp import Connection

BODY_CAP = 512 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 64
# A common browser's User-Agent: a probe that names itself on the wire is
# easy for a censor to single out, and so is the volunteer running it.
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


@dataclass(slots=True)
class Progress:
    """How far a response got, readable after the read was cut short: a
    timeout after the status line and some body is a slow transfer (the
    throttling signature), not silence."""

    status: int | None = None
    body: int = 0  # body bytes received (before decoding)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]  # lower-case names, as sent (at most MAX_HEADERS)
    body: bytes  # decoded, at most BODY_CAP
    truncated: bool


class _Decoder:
    """Content-Encoding undone with a hard output bound."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding.strip().lower()
        self._z = None
        if self.encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self._z = zlib.decompressobj()

    def feed(self, data: bytes, room: int) -> bytes:
        if self._z is None:
            return data[:room]
        try:
            return self._z.decompress(data, room)
        except zlib.error as exc:
            raise ProtocolViolation(f"bad {self.encoding} content: {exc}") from None


def _headers(event: h11.Response) -> tuple[tuple[str, str], ...]:
    pairs = list(event.headers)[:MAX_HEADERS]
    return tuple((bytes(n).decode("latin-1").lower(), bytes(v).decode("latin-1")) for n, v in pairs)


async def round_trip(
    conn: Connection,
    method: str,
    target: str,
    host: str,
    *,
    body: bytes | None = None,
    progress: Progress | None = None,
) -> Response:
    """Send one request and read the response, its body up to BODY_CAP.

    ``progress``, when given, is kept up to date as the response arrives."""
    progress = progress if progress is not None else Progress()
    h = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    headers = [
        ("Host", host),
        ("User-Agent", USER_AGENT),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Connection", "keep-alive"),
    ]
    if body is not None:
        headers.append(("Content-Length", str(len(body))))
    wire = h.send(h11.Request(method=method, target=target, headers=headers)) or b""
    if body is not None:
        wire += h.send(h11.Data(data=body)) or b""
    wire += h.send(h11.EndOfMessage()) or b""
    await conn.write(wire)
    response: h11.Response | None = None
    decoder = _Decoder("")
    chunks: list[bytes] = []
    size = 0
    eof = False
    while True:
        try:
            event = h.next_event()
        except h11.RemoteProtocolError:
            if eof:  # the peer hung up mid-message: that is an EOF, not garbage
                raise EOFError("connection closed before the response was complete") from None
            raise
        if event is h11.NEED_DATA:
            data = await conn.read()
            eof = not data
            if eof and response is None:
                raise EOFError("connection closed before any response")
            h.receive_data(data)
        elif isinstance(event, h11.Response):
            response = event
            progress.status = event.status_code
            encoding = dict(_headers(event)).get("content-encoding", "")
            decoder = _Decoder(encoding)
        elif isinstance(event, h11.Data):
            progress.body += len(event.data)
            piece = decoder.feed(bytes(event.data), BODY_CAP + 1 - size)
            chunks.append(piece)
            size += len(piece)
            if size > BODY_CAP:
                break
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
    if response is None:  # pragma: no cover - h11 yields a Response before Data or EndOfMessage
        raise ProtocolViolation("no response")
    content = b"".join(chunks)
    return Response(response.status_code, _headers(response), content[:BODY_CAP], size > BODY_CAP)
