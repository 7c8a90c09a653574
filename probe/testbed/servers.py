"""Genuine web servers: the service as it answers when nothing interferes.

Every path has a built-in behaviour: ``/`` and ``/api`` a page with a title
(any method: OONI's telegram test POSTs to /api and counts any reply;
padded as long as a request's ``X-Pad`` header, the freeze check's),
``/hop/N`` a redirect chain on the same host (``/hop/N`` → ``/hop/N-1`` …
→ the page), ``/slow`` headers after 30 s (longer than any probe timeout),
``/huge`` 8 MiB streamed (the probe must cap what it reads), ``/status/N``
that status; anything else 404.

``behaviours`` overrides them per host or per (host, path), looked up in
that order ((host, path) first) by the Host header, lower-case and without
port: a genuine server may itself serve a blockpage (a service that
geo-blocks), redirect elsewhere, or fail with an error status. It may be
changed while the server runs.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass, field

from aiohttp import web

from probe.testbed.pki import Leaf
from probe.testbed.replies import Blockpage, Redirect

TITLE = "msgprobe testbed: genuine service"
HUGE_SIZE = 8 * 1024 * 1024
SLOW_DELAY = 30.0
PAD_CAP = 8192  # bytes of padding a page echoes back


@dataclass(frozen=True)
class Page:
    """An HTML page with ``<title>title</title>``."""

    title: str = TITLE
    status: int = 200


@dataclass(frozen=True)
class Status:
    """An error (or any) status from the genuine server."""

    code: int


@dataclass(frozen=True)
class Slow:
    """The page, its headers sent only after ``delay`` seconds."""

    delay: float = SLOW_DELAY


@dataclass(frozen=True)
class Huge:
    """``size`` bytes streamed in 64 KiB chunks."""

    size: int = HUGE_SIZE


@dataclass(frozen=True)
class Hops:
    """A redirect to ``/hop/{left - 1}`` on the same host; ``left`` 0 is the page."""

    left: int


Behaviour = Page | Status | Slow | Huge | Hops | Blockpage | Redirect
BehaviourKey = str | tuple[str, str]  # host, or (host, path)


def page_html(title: str) -> str:
    return f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>ok</body></html>"


def builtin(path: str) -> Behaviour:
    """What the genuine server does at ``path`` when no behaviour overrides it."""
    if path in ("/", "/api"):
        return Page()
    if path == "/slow":
        return Slow()
    if path == "/huge":
        return Huge()
    kind, _, number = path[1:].partition("/")
    if kind == "hop" and number.isdigit() and int(number) <= 100:
        return Hops(int(number))
    if kind == "status" and number.isdigit() and 200 <= int(number) <= 599:
        return Status(int(number))
    return Status(404)


async def render(behaviour: Behaviour, request: web.Request) -> web.StreamResponse:
    if isinstance(behaviour, Page):
        # A request padded with X-Pad (the freeze check's keep-alive transfer)
        # gets as many bytes back, as a page with assets would: both directions move.
        pad = "<!--" + "x" * min(len(request.headers.get("X-Pad", "")), PAD_CAP) + "-->"
        text = page_html(behaviour.title) + (pad if "X-Pad" in request.headers else "")
        return web.Response(status=behaviour.status, text=text, content_type="text/html")
    if isinstance(behaviour, Status):
        return web.Response(status=behaviour.code, text=f"status {behaviour.code}")
    if isinstance(behaviour, Blockpage):
        return web.Response(status=behaviour.status, text=behaviour.body, content_type="text/html")
    if isinstance(behaviour, Redirect):
        return web.Response(status=behaviour.status, headers={"Location": behaviour.location})
    if isinstance(behaviour, Hops):
        if behaviour.left <= 0:
            return await render(Page(), request)
        return web.Response(status=302, headers={"Location": f"/hop/{behaviour.left - 1}"})
    if isinstance(behaviour, Slow):
        await asyncio.sleep(behaviour.delay)
        return await render(Page(), request)
    response = web.StreamResponse(headers={"Content-Length": str(behaviour.size)})
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    chunk = b"x" * 65536
    for start in range(0, behaviour.size, len(chunk)):
        await response.write(chunk[: behaviour.size - start])
    await response.write_eof()
    return response


@dataclass
class WebServer:
    """Plain HTTP on ``http_port`` and, with a ``leaf``, HTTPS on ``https_port`` (0: any free port).

    The leaf may be one ``TestCA.issue_malformed`` made: OpenSSL serves it
    all the same, which is what the "bad-der" scenarios rely on."""

    host: str
    leaf: Leaf | None = None
    https_port: int = 0
    http_port: int = 0
    behaviours: dict[BehaviourKey, Behaviour] = field(default_factory=dict)

    def behaviour(self, host: str, path: str) -> Behaviour:
        for key in ((host, path), host):
            if key in self.behaviours:
                return self.behaviours[key]
        return builtin(path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").lower()
        host = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
        return await render(self.behaviour(host, request.path), request)

    async def __aenter__(self) -> WebServer:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        # handler_cancellation: a handler whose client hung up (a probe that gave
        # up on /slow) stops at once instead of outliving the server.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.2, handler_cancellation=True
        )
        await self._runner.setup()
        plain = web.TCPSite(self._runner, self.host, self.http_port, backlog=1024)
        await plain.start()
        self.http_port = self._runner.addresses[-1][1]
        if self.leaf is not None:
            secure = web.TCPSite(
                self._runner, self.host, self.https_port, ssl_context=self.leaf.server_context(), backlog=1024
            )
            await secure.start()
            self.https_port = self._runner.addresses[-1][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
