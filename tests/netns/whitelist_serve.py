"""The servers of the white-list test network (``test_whitelist``), as one process.

Run inside the ``servers`` namespace once ``ADDRESSES`` are up there
(``ip netns exec <servers> python -m tests.netns.whitelist_serve --workdir
DIR``). It issues a throwaway test CA (``DIR/ca.pem``), starts every server
below, prints ``ready`` and serves until SIGTERM or EOF on stdin.

- ``MAX_IP``, ``YA_IP`` — the domestic canaries, HTTPS on 443 with leaves
  for ``max.msgprobe.test`` and ``ya.msgprobe.test``;
- ``CHAT_IP`` — a foreign messenger, HTTPS 443 (``chat.msgprobe.test``);
- ``WEB_IP`` — a foreign web page, HTTP 80 (``web.msgprobe.test``);
- ``DNS_IP`` — the network's (domestic) resolver, UDP and TCP 53: truthful,
  but ``gone.msgprobe.test`` is removed from it (NXDOMAIN, the NSDI way);
- ``DOH_IP`` — the control resolver, DoH on 443, truthful.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from probe.testbed import Answer, DnsServer, DohServer, NxDomain, TestCA, WebServer
from probe.testbed.resolver import Rule
from tests.netns.serving import main, stdin_lines, until_stopped

MAX_IP = "10.77.2.90"
YA_IP = "10.77.2.91"
CHAT_IP = "10.77.2.92"
WEB_IP = "10.77.2.93"
DNS_IP = "10.77.2.94"
DOH_IP = "10.77.2.95"
ADDRESSES = (MAX_IP, YA_IP, CHAT_IP, WEB_IP, DNS_IP, DOH_IP)
CANARIES = {"max.msgprobe.test": MAX_IP, "ya.msgprobe.test": YA_IP}
NAMES = {
    **CANARIES,
    "chat.msgprobe.test": CHAT_IP,
    "web.msgprobe.test": WEB_IP,
    "gone.msgprobe.test": CHAT_IP,
}


async def _eof(stop: asyncio.Event) -> None:
    async for _ in stdin_lines():
        pass
    stop.set()


async def _serve(workdir: Path) -> None:
    ca = TestCA("msgprobe netns whitelist CA")
    ca.write_bundle(workdir / "ca.pem")
    truth: dict[str, Rule] = {name: Answer([address]) for name, address in NAMES.items()}
    domestic: dict[str, Rule] = {**truth, "gone.msgprobe.test": NxDomain()}
    async with contextlib.AsyncExitStack() as stack:
        enter = stack.enter_async_context
        for name, address in CANARIES.items():
            await enter(WebServer(address, ca.issue([name]), https_port=443, http_port=80))
        await enter(
            WebServer(
                CHAT_IP, ca.issue(["chat.msgprobe.test", "gone.msgprobe.test"]), https_port=443, http_port=80
            )
        )
        await enter(WebServer(WEB_IP, http_port=80))
        await enter(DnsServer(domestic, host=DNS_IP, port=53))
        await enter(DohServer(truth, ca.issue([DOH_IP]), host=DOH_IP, port=443))
        await until_stopped(_eof)


if __name__ == "__main__":
    sys.exit(main(_serve, __doc__))
