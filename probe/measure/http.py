"""HTTP step: one request pinned to a measured address, redirects followed by hand.

aiohttp would resolve the host itself and might connect somewhere the DNS
step never saw, so a resolver that only knows the measured address is
plugged into its connector. Redirects are followed here rather than by
aiohttp so that every hop is recorded and so that we never leave the
service's host: a redirect elsewhere (an ISP warning page, say) is evidence
to record, not a place to send the volunteer's traffic.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Callable
from contextvars import ContextVar
from html import unescape
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from probe.measure.errors import classify
from probe.model import HttpHop, HttpObservation
from probe.privacy import redact

BODY_CAP = 512 * 1024
MAX_REDIRECTS = 10
_REDIRECTS = {301, 302, 303, 307, 308}
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
# A common browser's User-Agent: a probe that names itself on the wire is
# easy for a censor to single out, and so is the volunteer running it.
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
POST_BODY = b"msgprobe"  # any HTTP reply counts, as in OONI's telegram test
_MAX_HEADERS = 64


# The address under test for the request running in this task. One session
# serves a whole cycle (a session per request cost ~1 ms of CPU each); the
# pin travels with the task, so concurrent requests to one host name on
# different addresses never see each other's pin.
_PINNED: ContextVar[str] = ContextVar("msgprobe_pinned_address")


class PinnedResolver(AbstractResolver):
    """Answers every name with the address pinned for the current request."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = _PINNED.get()
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def title_of(body: bytes, keep: tuple[str, ...]) -> str | None:
    match = _TITLE.search(body[:65536])
    if not match:
        return None
    text = unescape(match.group(1).decode("utf-8", "replace"))
    return redact(" ".join(text.split())[:200], keep)


async def _read_capped(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    total = 0
    while total <= BODY_CAP:
        chunk = await response.content.read(min(65536, BODY_CAP + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    body = b"".join(chunks)
    return body[:BODY_CAP], total > BODY_CAP


class HttpFetch:
    def __init__(
        self,
        verify: ssl.SSLContext,
        inspect: ssl.SSLContext,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verify = verify
        self.inspect = inspect
        self.timeout = timeout
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # force_close: a pooled connection could belong to another
            # address of the same host name; every request connects anew.
            connector = aiohttp.TCPConnector(
                resolver=PinnedResolver(), force_close=True, limit=0, use_dns_cache=False
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT, "Accept": "*/*"},
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(
        self, url: str, method: str, address: str, t0: float, *, decoy_host: str | None = None
    ) -> HttpObservation:
        keep = (address,)
        if decoy_host:
            # Same address, same path, a harmless Host (and SNI): if this one
            # gets through, the path reacted to the name, not to the server.
            url = str(URL(url).with_host(decoy_host))
        host = _host(url)
        context = self.inspect if decoy_host else self.verify
        started = self.clock()
        hops: list[HttpHop] = []
        fields: dict[str, object] = {}
        failure = error = None
        token = _PINNED.set(address)
        try:
            async with asyncio.timeout(self.timeout):
                fields = await self._follow(self.session(), url, method, host, hops, keep, context)
        except Exception as exc:
            failure, error = classify(exc, keep)
        finally:
            _PINNED.reset(token)
        return HttpObservation(
            url=url,
            method=method,
            address=address,
            host=host,
            decoy=decoy_host is not None,
            started=started - t0,
            duration=self.clock() - started,
            failure=failure,
            error=error,
            redirects=tuple(hops),
            **fields,  # type: ignore[arg-type]
        )

    async def _follow(
        self,
        session: aiohttp.ClientSession,
        url: str,
        method: str,
        host: str,
        hops: list[HttpHop],
        keep: tuple[str, ...],
        context: ssl.SSLContext,
    ) -> dict[str, object]:
        current = url
        while True:
            data = POST_BODY if method == "POST" and not hops else None
            verb = method if not hops else "GET"
            request = session.request(verb, current, data=data, allow_redirects=False, ssl=context)
            async with request as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location:
                    target = urljoin(current, location)
                    hops.append(HttpHop(current, response.status, redact(target, keep)))
                    limit = len(hops) >= MAX_REDIRECTS
                    if not limit and _host(target) == host:
                        current = target
                        continue
                    return await self._final(response, keep, limit_reached=limit and _host(target) == host)
                return await self._final(response, keep, limit_reached=False)

    async def _final(
        self, response: aiohttp.ClientResponse, keep: tuple[str, ...], *, limit_reached: bool
    ) -> dict[str, object]:
        body, truncated = await _read_capped(response)
        headers = tuple(
            (name.lower(), redact(value[:512], keep))
            for name, value in list(response.headers.items())[:_MAX_HEADERS]
        )
        return {
            "status": response.status,
            "headers": headers,
            "body": body,
            "body_length": len(body),
            "body_truncated": truncated,
            "title": title_of(body, keep),
            "redirect_limit_reached": limit_reached,
        }
