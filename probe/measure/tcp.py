"""TCP step: a three-way handshake to one address and port, and the measured
connection that TLS and HTTP then ride (one connect per address and port).

The connection is a non-blocking socket driven by the event loop's reader
and writer callbacks, and TLS is OpenSSL on that socket (``SSLSocket`` in
non-blocking mode), not asyncio's stream and TLS-protocol layers: those copy
every record through memory BIOs in Python, which cost more CPU than the
handshake itself (``make bench`` compares against a blocking socket + ssl
floor). The probe only ever runs one request per connection, so the
streams' buffering and flow control buy nothing here.

``Connection`` counts every byte it moves into the operation in progress, so
the trace can tell goodput, time to first byte and "stalled after N bytes"
without a second instrument.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping

from probe.measure.trace import Op, Trace
from probe.model import TcpObservation
from probe.vocab import Operation, Purpose

READ_CHUNK = 65536
_WANT_READ = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)
_WANT_WRITE = (ssl.SSLWantWriteError,)


class Connection:
    """An open, measured TCP connection (TLS once ``start_tls`` has run)."""

    def __init__(self, sock: socket.socket, address: str, port: int, transaction: int) -> None:
        self.sock = sock
        self.address = address
        self.port = port
        self.transaction = transaction
        self.tls = False
        self.op: Op | None = None  # the operation bytes are counted into
        self._loop = asyncio.get_running_loop()

    async def _ready(self, writable: bool) -> None:
        """Wait until the socket can be read (or written); cancellation-safe."""
        loop, fd = self._loop, self.sock.fileno()
        waiter = loop.create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        if writable:
            loop.add_writer(fd, wake)
        else:
            loop.add_reader(fd, wake)
        try:
            await waiter
        finally:
            if writable:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    async def read(self, limit: int = READ_CHUNK) -> bytes:
        while True:
            try:
                data = self.sock.recv(limit)
            except _WANT_READ:
                await self._ready(writable=False)
                continue
            except _WANT_WRITE:
                await self._ready(writable=True)
                continue
            if self.op is not None and data:
                self.op.count(received=len(data))
            return data

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                await self._ready(writable=True)
                continue
            except ssl.SSLWantReadError:
                await self._ready(writable=False)
                continue
            view = view[sent:]
            if self.op is not None:
                self.op.count(sent=sent)

    async def start_tls(self, context: ssl.SSLContext, sni: str) -> None:
        # wrap_socket takes the file descriptor over: self.sock is the TLS socket from here on.
        self.sock = context.wrap_socket(self.sock, server_hostname=sni, do_handshake_on_connect=False)
        tls_sock = self.sock
        assert isinstance(tls_sock, ssl.SSLSocket)
        while True:
            try:
                tls_sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._ready(writable=False)
            except ssl.SSLWantWriteError:
                await self._ready(writable=True)
        self.tls = True

    def ssl_object(self) -> ssl.SSLSocket | None:
        return self.sock if isinstance(self.sock, ssl.SSLSocket) else None

    def abort(self) -> None:
        """Close at once: the probe never waits on a peer that reset or stalled."""
        self.sock.close()


def _note_local_port(trace: Trace, transaction: int, sock: socket.socket) -> None:
    """The port connect() bound, refused or not (the kernel keeps it until close)."""
    try:
        port = sock.getsockname()[1]
    except OSError:
        return
    if port:
        trace.local_ports[transaction] = port


async def connect(
    trace: Trace,
    address: str,
    port: int,
    *,
    timeout: float,
    purpose: Purpose = Purpose.CHECK,
    route: Mapping[tuple[str, int], tuple[str, int]] | None = None,
) -> tuple[TcpObservation, Connection | None]:
    """Connect and hand the open connection back, so TLS runs on this very connection.

    ``route`` is the simulated network's routing for this vantage (the
    loopback demo's control peer, whose packets to a censored address reach
    the genuine server as they would from an uncensored network); never set
    on a real vantage, and the observation always records ``address``."""
    target = route.get((address, port), (address, port)) if route else (address, port)
    transaction = trace.transaction()
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    connected = False
    try:
        with trace.op(
            Operation.CONNECT, transaction=transaction, address=address, port=port, purpose=purpose
        ) as op:
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(sock, target)
            connected = True
    finally:
        _note_local_port(trace, transaction, sock)
        if not connected:
            sock.close()
    observation = TcpObservation(
        address, port, op.started, op.duration, op.failure, op.error, purpose, transaction
    )
    if not connected:
        return observation, None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return observation, Connection(sock, address, port, transaction)
