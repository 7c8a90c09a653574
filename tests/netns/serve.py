"""The ``servers`` namespace of the peer-control test network, as one process.

Run inside that namespace (``ip netns exec <servers> python -m tests.netns.serve
--workdir DIR``) once its addresses are up. It issues a throwaway test CA
(written to ``DIR/ca.pem`` for the probe and the control to trust), starts
every server below, prints ``ready`` and then obeys one command per stdin
line, answering each with a line ``ok <command>``:

    stop chat    close the chat server's sockets (nothing listens: an outage)
    reset        start again whatever was stopped

EOF on stdin or SIGTERM stops it: a test process that dies takes it along.

What listens (addresses from ``tests.netns.topology``):

- ``CHAT_IP`` — the genuine chat service, HTTPS on 443 (a leaf for
  ``chat.msgprobe.test`` from the test CA) and HTTP on 80;
- ``WEB_IP`` — the genuine web page on 80 (``probe.testbed.WebServer``'s page);
- ``BLOCKPAGE_IP`` — a censor's page on 80 for any Host and path, written to
  match no OONI fingerprint: only a control's view of the real page can tell
  it from the service's own (``http.diff``);
- ``DYNAMIC_IP`` — a genuinely dynamic page on 80: its counter and its length
  change on every request (three lengths in turn, so two consecutive requests
  never have lengths within OONI's 0.7 ratio) while its title stays: only the
  title rule keeps it from reading as a diff;
- ``DNS_IP`` — the network's resolver (UDP and TCP 53), truthful;
- ``LYING_DNS_IP`` — a resolver that forges ``chat.msgprobe.test`` to
  ``FORGED_IP`` (an address of this namespace where nothing listens) and
  answers every other name truthfully;
- ``DOH_IP`` — the probe's control resolver, DoH on 443 (a leaf for the IP), truthful;
- ``FORGED_IP`` — nothing at all: a SYN there gets a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from probe.testbed import Answer, DnsServer, DohServer, TestCA, WebServer
from probe.testbed.resolver import Rule
from tests.netns.serving import main, stdin_lines, until_stopped
from tests.netns.topology import (
    BLOCKPAGE_IP,
    CHAT_IP,
    DNS_IP,
    DOH_IP,
    DYNAMIC_IP,
    FORGED_IP,
    LYING_DNS_IP,
    NAMES,
    WEB_IP,
)

BLOCKPAGE = (
    "<!doctype html><html><head><title>Notice</title></head><body>"
    "<h1>This resource is unavailable</h1>"
    "<p>Access to the requested resource has been restricted by your provider on the basis of a "
    "decision of the competent authority. Reference 0000-0000.</p>"
    "<p>If you believe this is an error, contact your provider's support service.</p></body></html>"
)
DYNAMIC_TITLE = "news.msgprobe.test: latest"
DYNAMIC_SIZES = (600, 2100, 3600)  # feed bytes, in turn: page length ratios 0.32, 0.59, 0.19


async def _site(host: str, handler: Handler) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, host, 80).start()
    return runner


async def _blockpage(_: web.Request) -> web.Response:
    return web.Response(text=BLOCKPAGE, content_type="text/html")


def _dynamic() -> Handler:
    counter = itertools.count(1)

    async def handler(_: web.Request) -> web.Response:
        n = next(counter)
        feed = f"<p>visitor {n}</p>".ljust(DYNAMIC_SIZES[n % len(DYNAMIC_SIZES)], ".")
        body = f"<!doctype html><html><head><title>{DYNAMIC_TITLE}</title></head><body>{feed}</body></html>"
        return web.Response(text=body, content_type="text/html")

    return handler


class Switch:
    """A server that commands stop and start again (``WebServer`` can re-enter)."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.up = False

    async def start(self) -> None:
        if not self.up:
            await self.server.__aenter__()
            self.up = True

    async def stop(self) -> None:
        if self.up:
            self.up = False
            await self.server.__aexit__(None, None, None)


async def _commands(chat: Switch, stop: asyncio.Event) -> None:
    """Obey stdin until EOF, then ask the server to stop."""
    actions = {"stop chat": chat.stop, "reset": chat.start}
    async for command in stdin_lines():
        if command not in actions:
            print(f"error unknown command {command!r}", flush=True)
            continue
        await actions[command]()
        print(f"ok {command}", flush=True)
    stop.set()


async def _serve(workdir: Path) -> None:
    ca = TestCA("msgprobe netns test CA")
    ca.write_bundle(workdir / "ca.pem")
    truth: dict[str, Rule] = {name: Answer([address]) for name, address in NAMES.items()}
    forged: dict[str, Rule] = {**truth, "chat.msgprobe.test": Answer([FORGED_IP])}
    chat = Switch(WebServer(CHAT_IP, ca.issue(["chat.msgprobe.test"]), https_port=443, http_port=80))
    async with contextlib.AsyncExitStack() as stack:
        await chat.start()
        stack.push_async_callback(chat.stop)
        await stack.enter_async_context(WebServer(WEB_IP, http_port=80))
        await stack.enter_async_context(DnsServer(truth, host=DNS_IP, port=53))
        await stack.enter_async_context(DnsServer(forged, host=LYING_DNS_IP, port=53))
        await stack.enter_async_context(DohServer(truth, ca.issue([DOH_IP]), host=DOH_IP, port=443))
        for runner in (await _site(BLOCKPAGE_IP, _blockpage), await _site(DYNAMIC_IP, _dynamic())):
            stack.push_async_callback(runner.cleanup)
        await until_stopped(lambda stop: _commands(chat, stop))


if __name__ == "__main__":
    sys.exit(main(_serve, __doc__))
