"""HTTP step: one request over the measured connection, redirects followed by hand.

The first request rides the connection the TCP/TLS check opened to the
address under test (one connect and one handshake per address and port);
a check with no TCP/TLS check on its port dials its own, measured the same
way. Redirects are followed here, each hop on a new measured connection to
the same address, and only on the service's own host: every hop is
recorded, and a redirect elsewhere (an ISP warning page, say) is evidence to
record, not a place to send the volunteer's traffic.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from html import unescape
from urllib.parse import urljoin, urlsplit, urlunsplit

from probe.analysis.goodput import rate
from probe.measure import tcp, tls
from probe.measure.exchange import Progress, Response, round_trip
from probe.measure.tcp import Connection
from probe.measure.tls import TlsContexts
from probe.measure.trace import Trace
from probe.model import HttpHop, HttpObservation
from probe.privacy import redact
from probe.vocab import Failure, Operation, Purpose

MAX_REDIRECTS = 10
_REDIRECTS = {301, 302, 303, 307, 308}
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
POST_BODY = b"msgprobe"  # any HTTP reply counts, as in OONI's telegram test


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def title_of(body: bytes, keep: tuple[str, ...]) -> str | None:
    match = _TITLE.search(body[:65536])
    if not match:
        return None
    text = unescape(match.group(1).decode("utf-8", "replace"))
    return redact(" ".join(text.split())[:200], keep)


def with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@dataclass(frozen=True, slots=True)
class _Moved:
    """What a round trip moved (T0 throttling data), successful or not."""

    received: int = 0
    goodput: float | None = None
    handshake: float | None = None
    status: int | None = None  # set on a failed round trip that got its status line
    body: int = 0  # body bytes of a failed round trip


@dataclass(frozen=True, slots=True)
class _Failed:
    failure: Failure | None
    error: str | None
    operation: Operation
    moved: _Moved = _Moved()

    @property
    def slow(self) -> bool:
        """Timed out after the status line and some body: a slow transfer, not silence."""
        return self.failure is Failure.TIMEOUT and self.moved.status is not None and self.moved.body > 0


class HttpFetch:
    """Shared per-cycle pieces: TLS contexts and the step timeouts."""

    def __init__(
        self,
        contexts: TlsContexts,
        *,
        connect_timeout: float,
        tls_timeout: float,
        timeout: float,
        route: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    ) -> None:
        self.contexts = contexts
        self.route = route
        self.connect_timeout = connect_timeout
        self.tls_timeout = tls_timeout
        self.timeout = timeout

    async def __call__(
        self,
        trace: Trace,
        url: str,
        method: str,
        address: str,
        *,
        conn: Connection | None = None,
        decoy_host: str | None = None,
    ) -> HttpObservation:
        """``conn``, when given, is the check's own open connection (consumed)."""
        if decoy_host:
            # Same address, same path, a harmless Host (and SNI): if this one
            # gets through, the path reacted to the name, not to the server.
            url = with_host(url, decoy_host)
            conn = None
        keep = (address,)
        host = _host(url)
        started = trace.now()
        deadline = started + self.timeout
        hops: list[HttpHop] = []
        current = url
        reused = conn is not None
        purpose = Purpose.DECOY if decoy_host else Purpose.HTTP
        while True:
            first = not hops
            outcome = await self._hop(
                trace,
                current,
                method if first else "GET",
                address,
                conn if first else None,
                purpose if first else Purpose.REDIRECT,
                deadline,
            )
            if isinstance(outcome, _Failed):
                moved = outcome.moved
                return HttpObservation(
                    url,
                    method,
                    address,
                    host,
                    decoy_host is not None,
                    started,
                    trace.now() - started,
                    outcome.failure,
                    outcome.error,
                    redirects=tuple(hops),
                    failed_operation=outcome.operation,
                    reused_connection=reused,
                    status=moved.status if outcome.slow else None,
                    body_length=moved.body if outcome.slow else 0,
                    bytes_received=moved.received,
                    goodput=moved.goodput,
                    handshake_time=moved.handshake,
                    slow=outcome.slow,
                )
            response, transaction, first_byte, moved = outcome
            location = dict(response.headers).get("location")
            if response.status in _REDIRECTS and location:
                target = urljoin(current, location)
                hops.append(HttpHop(current, response.status, redact(target, keep)))
                limit = len(hops) >= MAX_REDIRECTS
                if not limit and _host(target) == host and urlsplit(target).scheme in ("http", "https"):
                    current = target
                    continue
                limit_reached = limit and _host(target) == host
            else:
                limit_reached = False
            return HttpObservation(
                url=url,
                method=method,
                address=address,
                host=host,
                decoy=decoy_host is not None,
                started=started,
                duration=trace.now() - started,
                failure=None,
                status=response.status,
                headers=tuple((n, redact(v[:512], keep)) for n, v in response.headers),
                body=response.body,
                body_length=len(response.body),
                body_truncated=response.truncated,
                title=title_of(response.body, keep),
                redirects=tuple(hops),
                redirect_limit_reached=limit_reached,
                transaction=transaction,
                time_to_first_byte=first_byte,
                reused_connection=reused,
                bytes_received=moved.received,
                goodput=moved.goodput,
                handshake_time=moved.handshake,
            )

    async def _dial(
        self, trace: Trace, url: str, address: str, purpose: Purpose, deadline: float
    ) -> Connection | _Failed:
        timeout = max(0.0, min(self.connect_timeout, deadline - trace.now()))
        observation, conn = await tcp.connect(
            trace, address, port_of(url), timeout=timeout, purpose=purpose, route=self.route
        )
        if conn is None:
            return _Failed(observation.failure, observation.error, Operation.CONNECT)
        return conn

    async def _hop(
        self,
        trace: Trace,
        url: str,
        method: str,
        address: str,
        conn: Connection | None,
        purpose: Purpose,
        deadline: float,
    ) -> tuple[Response, int, float | None, _Moved] | _Failed:
        if conn is None:
            dialed = await self._dial(trace, url, address, purpose, deadline)
            if isinstance(dialed, _Failed):
                return dialed
            conn = dialed
        parts = urlsplit(url)
        handshake_time = None
        try:
            if parts.scheme == "https" and not conn.tls:
                context = self.contexts.inspect if purpose is Purpose.DECOY else self.contexts.verify
                timeout = max(0.0, min(self.tls_timeout, deadline - trace.now()))
                shake = await tls.handshake(
                    trace, conn, context, parts.hostname or "", timeout=timeout, purpose=purpose
                )
                if shake.failure is not None:
                    return _Failed(shake.failure, shake.error, Operation.TLS_HANDSHAKE)
                handshake_time = shake.duration
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            body = POST_BODY if method == "POST" else None
            progress = Progress()
            with trace.op(
                Operation.HTTP_ROUND_TRIP,
                transaction=conn.transaction,
                address=address,
                port=conn.port,
                purpose=purpose,
                detail=f"{method} {url}",
            ) as op:
                conn.op = op
                async with _deadline(trace, deadline):
                    response = await round_trip(
                        conn, method, target, parts.netloc, body=body, progress=progress
                    )
            conn.op = None
            span = op.duration - op.first_byte if op.first_byte is not None else 0.0
            moved = _Moved(op.received, rate(op.received, span), handshake_time)
            if op.failure is not None:
                moved = replace(moved, status=progress.status, body=progress.body)
                return _Failed(op.failure, op.error, Operation.HTTP_ROUND_TRIP, moved)
            return response, conn.transaction, op.first_byte, moved
        finally:
            conn.abort()


def _deadline(trace: Trace, deadline: float) -> asyncio.Timeout:
    return asyncio.timeout(max(0.0, deadline - trace.now()))
