"""The ``server`` namespace of the path test network, as one process.

Run inside that namespace (``ip netns exec <server> python -m
tests.netns.serve_path --workdir DIR``, ``PathNetwork.start_server``) once
its addresses are up. It issues a throwaway test CA (``DIR/ca.pem``), starts
everything below, prints ``ready``, and stops on EOF on stdin or SIGTERM.

What listens (addresses from ``tests.netns.path``):

- ``SERVER_IP:443`` — TLS with a leaf for every name of ``TLS_NAMES`` (the
  decoy SNI ``example.com`` included); any HTTP request gets 200 and a
  small page. ``SERVER_IP:80`` — the same page over plain HTTP, any Host.
- ``SERVER_IP:4433`` — reads the first bytes (a ClientHello), then closes
  with SO_LINGER 0: a genuine reset from the server, after the trigger.
- ``SERVER_IP:8443`` — nothing: the kernel resets the SYN (a closed port).
- ``RESOLVER_IP:53`` (UDP and TCP) — the names of ``NAMES`` (the canary
  included) to their addresses after ``RESOLVER_DELAY`` s, other names
  NXDOMAIN at once. The delay is a recursive resolver far away: an on-path
  injector always beats it (``SlowRoundRobin``'s cache hit answers a
  stub's retransmission at once, as a real cache does).
- ``SILENT_IP`` — nothing at all: only an injector ever answers there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import sys
from pathlib import Path

from aiohttp import web

from probe.testbed import DnsServer, TestCA
from probe.testbed.resolver import Rule, SlowRoundRobin
from probe.testbed.servers import page_html
from tests.netns.path import (
    HTTP_PORT,
    HTTPS_PORT,
    NAMES,
    RESET_PORT,
    RESOLVER_DELAY,
    RESOLVER_IP,
    SERVER_IP,
    TLS_NAMES,
)
from tests.netns.serving import main, stdin_lines, until_stopped

TITLE = "path.test: the genuine service"
HELLO_BYTES = 16384  # more than any ClientHello: one read takes it whole


async def _page(_: web.Request) -> web.Response:
    return web.Response(text=page_html(TITLE), content_type="text/html")


async def _site(context: ssl.SSLContext) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", _page)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, SERVER_IP, HTTP_PORT).start()
    await web.TCPSite(runner, SERVER_IP, HTTPS_PORT, ssl_context=context).start()
    return runner


async def _reset_after_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        await reader.read(HELLO_BYTES)
        # Linger 0: close() sends RST at once, as a server that refuses the handshake does.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _until_eof(stop: asyncio.Event) -> None:
    async for _ in stdin_lines():
        pass  # no commands: stdin only tells whether the test process is still there
    stop.set()


async def _serve(workdir: Path) -> None:
    ca = TestCA("msgprobe path test CA")
    ca.write_bundle(workdir / "ca.pem")
    leaf = ca.issue(list(TLS_NAMES))
    rules: dict[str, Rule] = {
        name: SlowRoundRobin([address], delay=RESOLVER_DELAY) for name, address in NAMES.items()
    }
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback((await _site(leaf.server_context())).cleanup)
        resetter = await asyncio.start_server(_reset_after_hello, SERVER_IP, RESET_PORT)
        stack.push_async_callback(resetter.wait_closed)
        stack.callback(resetter.close)
        await stack.enter_async_context(DnsServer(rules, host=RESOLVER_IP, port=53))
        await until_stopped(_until_eof)


if __name__ == "__main__":
    sys.exit(main(_serve, __doc__))
