"""Closed and black-holed ports without root.

A closed port needs nothing: the kernel answers SYN with RST. A black hole
(SYN never answered, as a censor's drop rule does) uses the listen queue:
listen with backlog 0 and fill the accept queue with connections nobody
accepts; Linux then drops further SYNs (net.ipv4.tcp_abort_on_overflow=0,
the default), and a client's connect() times out.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field


@dataclass
class BlackholeListener:
    host: str
    port: int = 0
    _sockets: list[socket.socket] = field(default_factory=list)

    async def __aenter__(self) -> BlackholeListener:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(0)
        self.port = listener.getsockname()[1]
        self._sockets.append(listener)
        for _ in range(4):  # the queue holds backlog + 1; the rest sit in SYN retry
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((self.host, self.port))
            self._sockets.append(filler)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for sock in self._sockets:
            sock.close()
