"""Closed and black-holed ports without root.

A closed port needs nothing but an address nobody listens on: the kernel
answers SYN with RST (``connection_refused``). ``ClosedPort`` keeps such a
port reserved by holding a socket bound to it without listening, so no
other program (or testbed) can start listening there meanwhile.

A black hole (SYN never answered, as a censor's drop rule does) uses the
listen queue: listen with backlog 0 and fill the accept queue with a
connection nobody accepts. Linux then drops every further SYN while the
queue stays full, as long as ``net.ipv4.tcp_abort_on_overflow`` is 0 (the
default; 1 would answer with RST instead). SYN cookies do not help the
client: they only apply when the SYN queue overflows, never the accept
queue. A client's connect() therefore times out (``generic_timeout_error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field

FILL_TIMEOUT = 2.0
ABORT_ON_OVERFLOW = "/proc/sys/net/ipv4/tcp_abort_on_overflow"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def drops_syns_when_full() -> bool:
    """Whether this kernel drops SYNs to a full accept queue (Linux, tcp_abort_on_overflow=0)."""
    try:
        with open(ABORT_ON_OVERFLOW, encoding="ascii") as f:
            return f.read().strip() == "0"
    except OSError:
        return False


@dataclass
class ClosedPort:
    """A port on ``host`` where a SYN gets RST, reserved while the context is open."""

    host: str
    port: int = 0
    _socket: socket.socket | None = field(default=None, repr=False)

    async def __aenter__(self) -> ClosedPort:
        sock = socket.socket(_family(self.host), socket.SOCK_STREAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._socket = sock  # bound, never listening: the kernel resets SYNs to it
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            self._socket.close()


@dataclass
class BlackholeListener:
    """A port on ``host`` whose SYNs go unanswered (see the module docstring)."""

    host: str
    port: int = 0
    _sockets: list[socket.socket] = field(default_factory=list, repr=False)

    async def __aenter__(self) -> BlackholeListener:
        try:
            await self._fill()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _fill(self) -> None:
        family = _family(self.host)
        listener = socket.socket(family, socket.SOCK_STREAM)
        self._sockets.append(listener)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(0)  # the accept queue holds backlog + 1 = one connection
        self.port = listener.getsockname()[1]
        filler = socket.socket(family, socket.SOCK_STREAM)
        self._sockets.append(filler)
        filler.setblocking(False)
        # Wait until the filler's handshake completed: only then is the queue
        # full, and a client connecting right after is certain to be dropped.
        async with asyncio.timeout(FILL_TIMEOUT):
            await asyncio.get_running_loop().sock_connect(filler, (self.host, self.port))

    async def __aexit__(self, *exc: object) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets.clear()
