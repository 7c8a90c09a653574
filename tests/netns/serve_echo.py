"""The ``servers`` namespace of the privacy test (``tests.netns.test_privacy``).

Servers that echo the client's address back in every place a real ISP page
or a hostile server puts it: the title and the body, headers (``x-client``,
``set-cookie``), a redirect ``Location`` with ``client=ADDR:PORT&ip=ADDR``
(percent-encoded too) and a blockpage-like page; over HTTPS and plain HTTP.
A truthful resolver and DoH control; ``ready`` once listening; SIGTERM stops.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from ssl import SSLContext
from urllib.parse import quote

from aiohttp import web

from probe.testbed import Answer, DnsServer, DohServer, TestCA
from probe.testbed.resolver import Rule
from tests.netns.serving import main, until_stopped

ECHO_IP = "10.77.2.120"
REDIRECT_IP = "10.77.2.121"
RESOLVER_IP = "10.77.2.122"
DOH_IP = "10.77.2.123"
ADDRESSES = (ECHO_IP, REDIRECT_IP, RESOLVER_IP, DOH_IP)
NAMES = {"echo.privacy.test": ECHO_IP, "redirect.privacy.test": REDIRECT_IP, "canary.privacy.test": ECHO_IP}


def _peer(request: web.Request) -> tuple[str, int]:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return (peer[0], peer[1]) if peer else ("?", 0)


async def _echo(request: web.Request) -> web.Response:
    ip, port = _peer(request)
    body = (
        f"<html><head><title>Access denied for {ip}</title></head><body>"
        f"<p>Your address {ip}:{port} ({ip}.) is logged; ::ffff:{ip}</p></body></html>"
    )
    headers = {"X-Client": f"{ip}:{port}", "Set-Cookie": f"uid=1; ip={ip}; path=/", "X-Forwarded-For": ip}
    return web.Response(text=body, content_type="text/html", status=403, headers=headers)


async def _redirect(request: web.Request) -> web.Response:
    ip, port = _peer(request)
    target = f"http://warning.isp.test/warn?client={ip}:{port}&ip={ip}&enc={quote(f'{ip}:{port}', safe='')}"
    raise web.HTTPFound(target, headers={"X-Client": ip})


async def _site(
    host: str,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    *,
    ssl: SSLContext | None,
    port: int,
) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl).start()
    return runner


async def _serve(workdir: Path) -> None:
    ca = TestCA("msgprobe netns privacy CA")
    ca.write_bundle(workdir / "ca.pem")
    context = ca.issue(["*.privacy.test"]).server_context()
    truth: dict[str, Rule] = {name: Answer([ip]) for name, ip in NAMES.items()}
    async with contextlib.AsyncExitStack() as stack:
        for host, handler in ((ECHO_IP, _echo), (REDIRECT_IP, _redirect)):
            for ssl, port in ((None, 80), (context, 443)):
                runner = await _site(host, handler, ssl=ssl, port=port)
                stack.push_async_callback(runner.cleanup)
        await stack.enter_async_context(DnsServer(truth, host=RESOLVER_IP, port=53))
        await stack.enter_async_context(DohServer(truth, ca.issue([DOH_IP]), host=DOH_IP, port=443))
        await until_stopped()


if __name__ == "__main__":
    sys.exit(main(_serve, __doc__))
