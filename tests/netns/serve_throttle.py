"""A TLS server for the throttling tests that counts what it moves.

Any SNI gets the same leaf (the decoy's handshake is not verified); any
request gets ``size`` bytes (``Content-Length`` set, ``Connection: close``).
Each connection's bytes are counted by the kernel (``TCP_INFO``: bytes put
on the wire, retransmissions included, and bytes received), so a test can check what the probe's
tests cost at the server, not what the probe believes it read.

In-process (loopback tests): ``async with CountingServer(...)``. As a
process in the servers namespace of ``tests.netns.topology``::

    python -m tests.netns.serve_throttle --workdir DIR --address IP... [--size N]

it issues a test CA (``DIR/ca.pem``), serves HTTPS on 443 at each address,
runs a resolver (UDP 53) and a DoH resolver (443) at ``--dns`` for
``--name NAME=IP`` pairs, prints ``ready`` and answers stdin commands with
one line: ``counts`` → ``ok counts {"connections": n, "bytes": total}``,
``reset`` → ``ok reset`` (counts back to zero). EOF or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import ssl
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from probe.testbed import Answer, DnsServer, DohServer, TestCA
from probe.testbed.resolver import Rule
from tests.netns.serving import stdin_lines, until_stopped

HEAD_LIMIT = 16 * 1024
HEAD_TIMEOUT = 10.0
CHUNK = 16 * 1024
# struct tcp_info (linux/tcp.h): tcpi_bytes_received after 8 one-byte fields,
# 24 u32 and 3 u64; tcpi_bytes_sent (every byte put on the wire, retransmits
# included; Linux ≥ 4.19) further on, after 6 u32, 4 u64 and 2 u32.
_RECEIVED_AT = 8 + 24 * 4 + 3 * 8
_SENT_AT = _RECEIVED_AT + 8 + 6 * 4 + 4 * 8 + 2 * 4


def kernel_counts(sock: socket.socket) -> tuple[int, int]:
    """(bytes sent, bytes received) on this connection, as the kernel counted them."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _SENT_AT + 8)
    (received,) = struct.unpack_from("=Q", raw, _RECEIVED_AT)
    (sent,) = struct.unpack_from("=Q", raw, _SENT_AT)
    return int(sent), int(received)


@dataclass
class CountingServer:
    hosts: list[str]
    context: ssl.SSLContext
    port: int = 0
    size: int = 1024 * 1024
    connections: list[tuple[int, int]] = field(default_factory=list)  # (sent, received) per connection

    @property
    def total(self) -> int:
        return sum(s + r for s, r in self.connections)

    async def closed(self, n: int, timeout: float) -> None:
        """Wait until ``n`` connections have been counted (each once it has closed)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.connections) >= n)

    async def __aenter__(self) -> CountingServer:
        self._changed = asyncio.Condition()
        self._server = await asyncio.start_server(self._client, self.hosts, self.port, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        complete = False
        try:
            async with asyncio.timeout(HEAD_TIMEOUT):
                await reader.readuntil(b"\r\n\r\n")
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.size}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode())
            chunk = b"x" * CHUNK
            for start in range(0, self.size, CHUNK):
                writer.write(chunk[: self.size - start])
                await writer.drain()
            complete = True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client hung up (a probe stops reading at its cap): counted all the same
        finally:
            with contextlib.suppress(OSError):
                # A complete response may still sit in the send buffer: the
                # count then misses its tail (the pairs never read to the end).
                self.connections.append(kernel_counts(sock))
            if complete:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            else:
                writer.transport.abort()
            async with self._changed:
                self._changed.notify_all()


async def _commands(server: list[CountingServer], stop: asyncio.Event) -> None:
    async for command in stdin_lines():
        if command == "counts":
            counts = {
                "connections": sum(len(s.connections) for s in server),
                "bytes": sum(s.total for s in server),
            }
            print(f"ok counts {json.dumps(counts)}", flush=True)
        elif command == "reset":
            for s in server:
                s.connections.clear()
            print("ok reset", flush=True)
        else:
            print(f"error unknown command {command!r}", flush=True)
    stop.set()


async def _serve(args: argparse.Namespace) -> None:
    ca = TestCA("msgprobe netns throttle CA")
    ca.write_bundle(args.workdir / "ca.pem")
    names = dict(pair.split("=", 1) for pair in args.name)
    truth: dict[str, Rule] = {name: Answer([address]) for name, address in names.items()}
    leaf = ca.issue(sorted(names))
    async with contextlib.AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(
                CountingServer([address], leaf.server_context(), port=443, size=args.size)
            )
            for address in args.address
        ]
        await stack.enter_async_context(DnsServer(truth, host=args.dns, port=53))
        await stack.enter_async_context(DohServer(truth, ca.issue([args.dns]), host=args.dns, port=443))
        await until_stopped(lambda stop: _commands(servers, stop))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--address", action="append", required=True)
    parser.add_argument("--dns", required=True)
    parser.add_argument("--name", action="append", default=[], help="NAME=IP")
    parser.add_argument("--size", type=int, default=1024 * 1024)
    asyncio.run(_serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
