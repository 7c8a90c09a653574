"""The ``servers`` namespace of the loss test, as one process (``tests.netns.test_loss``).

Run inside that namespace once its addresses are up (``python -m
tests.netns.serve_loss --workdir DIR``): a test CA (``DIR/ca.pem``), two
genuine HTTPS+HTTP servers for every ``*.loss.msgprobe.test`` name, the
network's resolver answering those names round-robin over the two addresses
(a slow recursive resolver: retransmitted copies get the other address), a
truthful DoH control resolver, then ``ready``; SIGTERM stops it.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from probe.testbed import Answer, DnsServer, DohServer, TestCA, WebServer
from probe.testbed.resolver import Rule, SlowRoundRobin
from tests.netns.serving import main, until_stopped

SERVER_IPS = ("10.77.2.100", "10.77.2.101")
RESOLVER_IP = "10.77.2.110"
DOH_IP = "10.77.2.111"
ADDRESSES = (*SERVER_IPS, RESOLVER_IP, DOH_IP)
DOMAIN = "loss.msgprobe.test"
CANARY = f"canary.{DOMAIN}"
SERVICES = 125


def names() -> list[str]:
    return [f"chat{n}.{DOMAIN}" for n in range(SERVICES)]


async def _serve(workdir: Path) -> None:
    ca = TestCA("msgprobe netns loss CA")
    ca.write_bundle(workdir / "ca.pem")
    leaf = ca.issue([f"*.{DOMAIN}"])
    rotating: dict[str, Rule] = {n: SlowRoundRobin(list(SERVER_IPS), delay=0.2) for n in names()}
    rotating[CANARY] = Answer([SERVER_IPS[0]])
    truth: dict[str, Rule] = {n: Answer(list(SERVER_IPS)) for n in [*names(), CANARY]}
    async with contextlib.AsyncExitStack() as stack:
        for ip in SERVER_IPS:
            await stack.enter_async_context(WebServer(ip, leaf, https_port=443, http_port=80))
        await stack.enter_async_context(DnsServer(rotating, host=RESOLVER_IP, port=53))
        await stack.enter_async_context(DohServer(truth, ca.issue([DOH_IP]), host=DOH_IP, port=443))
        await until_stopped()


if __name__ == "__main__":
    sys.exit(main(_serve, __doc__))
