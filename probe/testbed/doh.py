"""The control resolver: DNS-over-HTTPS (RFC 8484, POST and GET), truthful by rule."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from aiohttp import web

from probe.testbed.pki import Leaf
from probe.testbed.resolver import NxDomain, Rule, parse, respond


@dataclass
class DohServer:
    rules: dict[str, Rule]
    leaf: Leaf
    default: Rule = field(default_factory=NxDomain)
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/dns-query"

    async def _query(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            wire = await request.content.read(65536)
        else:
            text = request.query.get("dns", "")
            wire = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        query = parse(wire)
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
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.leaf.server_context())
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
