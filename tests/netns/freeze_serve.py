"""The freeze tests' servers, as one process in the ``servers`` namespace.

Run inside that namespace (``ip netns exec <servers> python -m
tests.netns.freeze_serve --workdir DIR``) once ``tests.netns.test_freeze``
added its addresses. It issues a throwaway test CA (``DIR/ca.pem``), starts
the servers below, prints ``ready`` and obeys one command per stdin line:

    count        print ``bytes IP RECEIVED SENT`` per counting server, then ``ok count``

EOF on stdin or SIGTERM stops it.

- ``RESOLVER_IP`` — a truthful resolver (UDP and TCP 53) for the names below;
- ``FROZEN_IP`` — ``frozen.msgprobe.test``, HTTPS on 443 (``probe.testbed.WebServer``,
  whose page answers a padded request with as many bytes);
- ``HOME_IP`` — ``home.msgprobe.test``, the domestic canary, HTTPS on 443;
- ``BULK_IPS`` — ``bulkN.msgprobe.test``, plain keep-alive HTTP on 80 that
  counts every byte it reads and writes: what the byte budget is checked against.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from probe.testbed import Answer, DnsServer, TestCA, WebServer
from probe.testbed.resolver import Rule
from tests.netns.serving import main, stdin_lines, until_stopped

RESOLVER_IP = "10.77.2.70"
FROZEN_IP = "10.77.2.71"
HOME_IP = "10.77.2.72"
BULK_IPS = ("10.77.2.73", "10.77.2.74", "10.77.2.75")
ADDRESSES = (RESOLVER_IP, FROZEN_IP, HOME_IP, *BULK_IPS)
NAMES = {
    "frozen.msgprobe.test": FROZEN_IP,
    "home.msgprobe.test": HOME_IP,
    **{f"bulk{i}.msgprobe.test": ip for i, ip in enumerate(BULK_IPS, 1)},
}
PAGE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4096\r\n\r\n" + b"b" * 4096


class Counting:
    """Keep-alive HTTP/1.1 on port 80: a 4 KB page per request, every byte counted."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.received = 0
        self.sent = 0

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.received += len(head)
                writer.write(PAGE)
                self.sent += len(PAGE)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.transport.abort()

    async def __aenter__(self) -> Counting:
        self._server = await asyncio.start_server(self._client, self.host, 80)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()


async def _commands(counters: list[Counting], stop: asyncio.Event) -> None:
    async for command in stdin_lines():
        if command != "count":
            print(f"error unknown command {command!r}", flush=True)
            continue
        for c in counters:
            print(f"bytes {c.host} {c.received} {c.sent}", flush=True)
        print(f"ok {command}", flush=True)
    stop.set()


async def _serve(workdir: Path) -> None:
    ca = TestCA("msgprobe netns freeze CA")
    ca.write_bundle(workdir / "ca.pem")
    truth: dict[str, Rule] = {name: Answer([address]) for name, address in NAMES.items()}
    async with contextlib.AsyncExitStack() as stack:
        enter = stack.enter_async_context
        await enter(DnsServer(truth, host=RESOLVER_IP, port=53))
        for name in ("frozen.msgprobe.test", "home.msgprobe.test"):
            await enter(WebServer(NAMES[name], ca.issue([name]), https_port=443, http_port=8080))
        counters = [await enter(Counting(ip)) for ip in BULK_IPS]
        await until_stopped(lambda stop: _commands(counters, stop))


if __name__ == "__main__":
    sys.exit(main(_serve, __doc__))
