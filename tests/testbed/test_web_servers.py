"""The genuine web server, asked by a plain aiohttp client: built-in paths and
behaviours per host and per (host, path)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import pytest

from probe.testbed.pki import TestCA
from probe.testbed.replies import RKN_BLOCKPAGE, Blockpage, Redirect
from probe.testbed.servers import HUGE_SIZE, TITLE, Behaviour, BehaviourKey, Page, Slow, Status, WebServer
from tests.testbed.loop import HOST, client_context, run

T = TypeVar("T")
CA = TestCA()
LEAF = CA.issue(["svc.test", "*.svc.test", HOST])
WARNING = "http://warning.rt.ru/?id=17&st=0&dt=svc.test&rs=http%3A%2F%2Fsvc.test%2F"


def title(html: str) -> str | None:
    found = re.search(r"<title>(.*?)</title>", html)
    return found.group(1) if found else None


def with_server(
    use: Callable[[WebServer, aiohttp.ClientSession], Awaitable[T]],
    behaviours: dict[BehaviourKey, Behaviour] | None = None,
) -> T:
    async def body() -> T:
        async with WebServer(HOST, leaf=LEAF, behaviours=behaviours or {}) as server:
            connector = aiohttp.TCPConnector(ssl=client_context(CA))
            async with aiohttp.ClientSession(connector=connector) as session:
                return await use(server, session)

    return run(body)


async def get(
    session: aiohttp.ClientSession, url: str, *, host: str | None = None, method: str = "GET"
) -> tuple[int, str, str | None, int]:
    headers = {"Host": host} if host else {}
    async with session.request(method, url, headers=headers, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location"), len(response.history)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_genuine_page_post_and_error_statuses(scheme: str) -> None:
    async def use(server: WebServer, session: aiohttp.ClientSession) -> None:
        port = server.https_port if scheme == "https" else server.http_port
        base = f"{scheme}://{HOST}:{port}"
        status, text, _, _ = await get(session, f"{base}/", host="svc.test")
        assert (status, title(text)) == (200, TITLE)
        status, text, _, _ = await get(session, f"{base}/api", method="POST")
        assert (status, title(text)) == (200, TITLE)
        assert (await get(session, f"{base}/status/500"))[0] == 500
        assert (await get(session, f"{base}/status/403"))[0] == 403
        assert (await get(session, f"{base}/nowhere"))[0] == 404

    with_server(use)


def test_https_and_http_listen_on_distinct_ports() -> None:
    async def use(server: WebServer, session: aiohttp.ClientSession) -> None:
        assert server.http_port and server.https_port and server.http_port != server.https_port
        with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
            await get(session, f"http://{HOST}:{server.https_port}/")

    with_server(use)


def test_redirect_chain_on_the_same_host() -> None:
    async def use(server: WebServer, session: aiohttp.ClientSession) -> None:
        base = f"https://{HOST}:{server.https_port}"
        assert (await get(session, f"{base}/hop/3"))[::2] == (302, "/hop/2")
        async with session.get(f"{base}/hop/3") as response:
            assert response.status == 200
            assert [str(r.url) for r in response.history] == [f"{base}/hop/{n}" for n in (3, 2, 1)]
            assert title(await response.text()) == TITLE

    with_server(use)


def test_behaviours_per_host_and_per_host_and_path() -> None:
    behaviours: dict[BehaviourKey, Behaviour] = {
        "blocked.svc.test": Blockpage(RKN_BLOCKPAGE),
        ("svc.test", "/warn"): Redirect(WARNING),
        ("svc.test", "/forbidden"): Status(403),
        ("blocked.svc.test", "/"): Page("exception to the host rule"),
    }

    async def use(server: WebServer, session: aiohttp.ClientSession) -> None:
        base = f"http://{HOST}:{server.http_port}"
        status, text, _, _ = await get(session, f"{base}/any", host="Blocked.svc.test:8080")
        assert status == 200 and "Роскомнадзор" in text and "eais.rkn.gov.ru" in text
        assert title(text) == "Доступ к ресурсу ограничен"
        assert (
            title((await get(session, f"{base}/", host="blocked.svc.test"))[1])
            == "exception to the host rule"
        )
        assert (await get(session, f"{base}/warn", host="svc.test"))[::2] == (302, WARNING)
        assert (await get(session, f"{base}/forbidden", host="svc.test"))[0] == 403
        # Other hosts and paths keep the genuine behaviour...
        assert (await get(session, f"{base}/warn", host="other.svc.test"))[0] == 404
        assert title((await get(session, f"{base}/", host="svc.test"))[1]) == TITLE
        # ...until the table changes under the running server.
        server.behaviours["svc.test"] = Blockpage("geo-blocked", status=451)
        assert (await get(session, f"{base}/", host="svc.test"))[:2] == (451, "geo-blocked")

    with_server(use, behaviours)


def test_slow_sends_nothing_before_the_client_gives_up() -> None:
    async def use(server: WebServer, session: aiohttp.ClientSession) -> None:
        timeout = aiohttp.ClientTimeout(total=0.3)
        for path in ("/slow", "/delayed"):
            with pytest.raises(asyncio.TimeoutError):
                async with session.get(f"http://{HOST}:{server.http_port}{path}", timeout=timeout):
                    pass
        # The server closes while its handlers still sleep (30 s for /slow).

    with_server(use, {(HOST, "/delayed"): Slow(5.0)})


def test_closing_the_server_ends_a_request_in_flight() -> None:
    async def body() -> bytes:
        async with WebServer(HOST) as server:
            reader, writer = await asyncio.open_connection(HOST, server.http_port)
            writer.write(b"GET /slow HTTP/1.1\r\nHost: svc.test\r\n\r\n")
            await asyncio.sleep(0.1)
        # A raw client: aiohttp's would retry the GET and report the retry's failure.
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        return answer

    assert run(body) == b""  # hung up without a response, the 30 s handler cancelled


def test_huge_body_is_streamed_and_a_client_may_stop_reading() -> None:
    async def use(server: WebServer, session: aiohttp.ClientSession) -> None:
        url = f"http://{HOST}:{server.http_port}/huge"
        async with session.get(url) as response:
            assert response.content_length == HUGE_SIZE
            first = await response.content.read(65536)
            assert len(first) == 65536  # the probe reads a cap, then drops the connection
            response.close()
        async with session.get(url) as response:
            assert len(await response.read()) == HUGE_SIZE

    with_server(use)
