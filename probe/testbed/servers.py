"""Genuine web servers: the service as it answers when nothing interferes.

Routes: ``/`` a page with a title, ``/api`` (POST accepted: OONI's telegram
test counts any reply), ``/hop/N`` a redirect chain on the same host,
``/slow`` headers after 30 s (longer than any probe timeout), ``/huge``
8 MiB streamed (the probe must cap what it reads), ``/status/N`` any status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from probe.testbed.pki import Leaf

PAGE = (
    "<!doctype html><html><head><title>msgprobe testbed: genuine service</title></head><body>ok</body></html>"
)


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def _hop(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    if n <= 0:
        return await _page(request)
    raise web.HTTPFound(f"/hop/{n - 1}")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return await _page(request)


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    chunk = b"x" * 65536
    for _ in range(128):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status")


@dataclass
class WebServer:
    host: str
    leaf: Leaf | None = None
    https_port: int = 0
    http_port: int = 0

    async def __aenter__(self) -> WebServer:
        app = web.Application()
        app.router.add_route("*", "/", _page)
        app.router.add_route("*", "/api", _page)
        app.router.add_get("/hop/{n:\\d+}", _hop)
        app.router.add_get("/slow", _slow)
        app.router.add_get("/huge", _huge)
        app.router.add_get("/status/{code:\\d+}", _status)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        plain = web.TCPSite(self._runner, self.host, self.http_port)
        await plain.start()
        self.http_port = plain._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.leaf is not None:
            secure = web.TCPSite(
                self._runner, self.host, self.https_port, ssl_context=self.leaf.server_context()
            )
            await secure.start()
            self.https_port = secure._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
