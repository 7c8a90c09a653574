"""The daemon's HTTP surface, in Prometheus exporter convention.

    GET  /metrics    text or OpenMetrics by Accept (probe.export.scrape)
    GET  /-/healthy  200 while the process serves (also /healthz)
    GET  /-/ready    200 once the first cycle has finished, 503 before
    POST /-/reload   reload the config: 200, or 500 with the one-line error
                     (``reload`` serialises itself: the daemon's one lock also covers SIGHUP)
    GET  /status     JSON of the latest state and evidence
    GET  /evidence   the evidence log's newest records (?service=S&since=UNIX), JSON
    GET  /           the status page

Handlers only read the newest snapshot; none of them starts a measurement.
With ``--web.config.file`` (probe.export.webconfig) ``serve`` adds TLS and
basic auth to every route; without it, plain HTTP and no password, so
``docker run -p 9490:9490`` works out of the box.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from probe.export.evidence import EvidenceLog, read_records
from probe.export.records import status_record
from probe.export.scrape import metrics_handler
from probe.export.statuspage import render_status_page
from probe.state import Snapshot

if TYPE_CHECKING:  # imported by the caller that loads one; bcrypt stays out of a plain-HTTP run
    from probe.export.webconfig import WebConfig

log = logging.getLogger("msgprobe")

# (ok, message); the callee owns serialisation, so the route just awaits it.
Reload = Callable[[], Awaitable[tuple[bool, str]]]
# Handlers are fast (they render a snapshot), so a SIGTERM never waits long for them.
SHUTDOWN_TIMEOUT = 1.0
EVIDENCE_PAGE = 500  # newest records /evidence returns: a page, not the whole disk
DEFAULT_PORT = 9490

_PAGE_HEADERS = {
    # The page needs nothing but its own inline CSS; say so, so a browser fetches nothing else.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def make_app(
    get_snapshot: Callable[[], Snapshot],
    *,
    registry: CollectorRegistry,
    reload: Reload | None = None,
    cache_metrics: bool = True,
    wall: Callable[[], float] = time.time,
    evidence: EvidenceLog | None = None,
) -> web.Application:
    """The exporter's routes over ``get_snapshot``; ``registry`` must render only from it (see scrape)."""

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(_: web.Request) -> web.Response:
        if get_snapshot().ready:
            return web.Response(text="OK\n")
        return web.Response(status=503, text="not ready: no measurement cycle has finished yet\n")

    async def do_reload(_: web.Request) -> web.Response:
        if reload is None:
            return web.Response(status=501, text="reload is not available here\n")
        ok, message = await reload()
        line = message.splitlines()[0] if message else ("reloaded" if ok else "reload failed")
        return web.Response(status=200 if ok else 500, text=line + "\n")

    async def status(_: web.Request) -> web.Response:
        body = json.dumps(status_record(get_snapshot()), ensure_ascii=False, separators=(",", ":"))
        return web.Response(text=body, content_type="application/json", headers={"Cache-Control": "no-store"})

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            text=render_status_page(get_snapshot(), now=wall()),
            content_type="text/html",
            headers=_PAGE_HEADERS,
        )

    async def evidence_records(request: web.Request) -> web.Response:
        """The newest evidence records, filtered: ``/evidence?service=S&since=UNIX``."""
        if evidence is None:
            return web.Response(status=404, text="no evidence log configured (evidence.path)\n")
        try:
            since = float(request.query["since"]) if "since" in request.query else None
        except ValueError:
            return web.Response(status=400, text="since: unix seconds\n")
        service = request.query.get("service")
        read = await asyncio.to_thread(read_records, evidence, service=service, since=since)
        body = json.dumps(
            {"records": read.records[-EVIDENCE_PAGE:], "skipped": read.skipped, "total": len(read.records)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return web.Response(text=body, content_type="application/json", headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/evidence", evidence_records)
    app.router.add_get("/metrics", metrics_handler(get_snapshot, registry, cache=cache_metrics))
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/healthz", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", do_reload)
    app.router.add_get("/status", status)
    app.router.add_get("/", page)
    return app


def parse_listen(listen: str) -> tuple[str | None, int]:
    """``:9490`` (every interface), ``127.0.0.1:9490``, ``[::1]:9490``, ``localhost:9490``."""
    host, sep, port_text = listen.rpartition(":")
    if not sep:
        raise ValueError(f"listen address {listen!r}: expected HOST:PORT, :PORT or [IPv6]:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"listen address {listen!r}: write an IPv6 host in brackets, [::1]:{port_text}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"listen address {listen!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"listen address {listen!r}: port {port} is out of range")
    return (host or None), port


async def serve(app: web.Application, listen: str, *, web_config: WebConfig | None = None) -> web.AppRunner:
    """Start serving ``app`` on ``listen``; the caller awaits ``runner.cleanup()`` to stop.

    ``web_config`` serves TLS with its context and, when it has users, puts
    its basic-auth middleware before the app's own, so no handler or
    middleware of the app sees a request that was not let in. That changes
    ``app``: pass one that has not been served yet, and do not add the
    middleware yourself."""
    host, port = parse_listen(listen)
    context = None
    if web_config is not None:
        context = web_config.ssl_context()
        if web_config.users:
            app.middlewares.insert(0, web_config.middleware())
            if context is None:
                log.warning(
                    "basic auth without TLS: passwords cross the network in the clear",
                    extra={"fields": {"web_config": str(web_config.path)}},
                )
    # No access log: a scrape every 15 s for months is noise, not news.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_addresses(runner: web.AppRunner) -> list[str]:
    """Where ``runner`` listens, as ``host:port`` / ``[v6]:port`` (port 0 resolved)."""
    out = []
    for address in runner.addresses:
        host, port = address[0], address[1]
        out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return out
