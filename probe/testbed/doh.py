"""The control resolver: DNS-over-HTTPS (RFC 8484, POST and GET), truthful by rule.

It answers from the same rule language as the lying resolver
(``probe.testbed.resolver``). HTTPS has one response per request, so an
``Inject`` rule gives its genuine (second) answer and ``Drop`` a 504, as
a DoH front end whose upstream timed out would. Nothing is delayed: a
``SlowRoundRobin`` gives its first address at once, from a warm cache.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from aiohttp import web

from probe.testbed.dns_rules import NxDomain, Rule, parse, respond
from probe.testbed.pki import Leaf

MAX_MESSAGE = 65535  # a DNS message never exceeds its 16-bit length


@dataclass
class DohServer:
    """DoH at ``url`` (https://IP:PORT/dns-query); ``leaf`` must name ``host`` (an IP SAN)."""

    rules: dict[str, Rule]
    leaf: Leaf
    default: Rule = field(default_factory=NxDomain)
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/dns-query"

    async def _query(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            wire = await request.read()
        else:
            text = request.query.get("dns", "")
            try:
                wire = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except (binascii.Error, ValueError):
                wire = b""
        query = parse(wire) if len(wire) <= MAX_MESSAGE else None
        if query is None:
            return web.Response(status=400, text="bad DNS message")
        replies = respond(query, self.rules, self.default)
        if not replies:
            return web.Response(status=504, text="no answer")
        return web.Response(body=replies[-1][1].to_wire(), content_type="application/dns-message")

    async def __aenter__(self) -> DohServer:
        app = web.Application()
        app.router.add_route("POST", "/dns-query", self._query)
        app.router.add_route("GET", "/dns-query", self._query)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=self.leaf.server_context(), backlog=1024
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
