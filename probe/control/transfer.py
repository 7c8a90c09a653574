"""The control peer's transfer routes, for the throttling confirmation (T3).

    GET  /v1/source?bytes=N   exactly N bytes (N ≤ MAX_TRANSFER, else 400)
    POST /v1/sink             a body of at most MAX_TRANSFER bytes, answered {"received": n}

A probe measures them with the real SNI and with a decoy (any SNI reaches
the peer's TLS): a policer keyed on the name slows one and not the other.
They serve bytes, never content, and take the same guards as
``/v1/measure``: the bearer token first (401, nothing else read), then the
token's rate (429), shared with measure requests, counted in the same
request metrics, and logged with the token's name only, never an address.
The transfer is bounded in size and in time (``TRANSFER_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiohttp import web

from probe.control.limits import retry_after
from probe.control.policy import Refusal, Result

if TYPE_CHECKING:
    from probe.control.server import Control

SOURCE = "/v1/source"
SINK = "/v1/sink"
PATHS = (SOURCE, SINK)
MAX_TRANSFER = 1024 * 1024
TRANSFER_TIMEOUT = 30.0  # seconds for one transfer: a policed 1 MiB at 128 kbit/s needs ~65
CHUNK = 16 * 1024
_FILL = b"\0" * CHUNK


class Transfers:
    """The two handlers, sharing the measure route's tokens, rate and metrics."""

    def __init__(self, control: Control) -> None:
        self.control = control

    def _admit(self, request: web.Request, started: float) -> str | web.Response:
        from probe.control.server import _bearer  # one bearer parser for every route

        c = self.control
        token = _bearer(request)
        probe = c.tokens.lookup(token) if token is not None else None
        if probe is None:
            message = "missing bearer token" if token is None else "unknown token"
            auth = {"WWW-Authenticate": 'Bearer realm="msgprobe control"'}
            return c._refuse(
                Refusal(401, Result.UNAUTHORIZED, message), probe=None, started=started, headers=auth
            )
        wait = c.rate.take(probe, started)
        if wait > 0:
            refusal = Refusal(429, Result.RATE_LIMITED, f"over {c.rate.per_minute} requests per minute")
            return c._refuse(
                refusal, probe=probe, started=started, headers={"Retry-After": retry_after(wait)}
            )
        return probe

    async def source(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        admitted = self._admit(request, started)
        if isinstance(admitted, web.Response):
            return admitted
        text = request.query.get("bytes", "")
        if not text.isdigit() or int(text) > MAX_TRANSFER:
            refusal = Refusal(400, Result.BAD_REQUEST, f"bytes must be an integer 0-{MAX_TRANSFER}")
            return self.control._refuse(refusal, probe=admitted, started=started)
        size = int(text)
        response = web.StreamResponse(headers={"Content-Length": str(size), "Cache-Control": "no-store"})
        response.content_type = "application/octet-stream"
        self.control.metrics.count(Result.OK)
        try:
            async with asyncio.timeout(TRANSFER_TIMEOUT):
                await response.prepare(request)
                for start in range(0, size, CHUNK):
                    await response.write(_FILL[: size - start])
                await response.write_eof()
        except (TimeoutError, ConnectionError):
            pass  # the probe stopped reading (its cap, its deadline): nothing to answer
        return response

    async def sink(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        admitted = self._admit(request, started)
        if isinstance(admitted, web.Response):
            return admitted
        too_large = Refusal(413, Result.TOO_LARGE, f"body over {MAX_TRANSFER} bytes")
        if request.content_length is not None and request.content_length > MAX_TRANSFER:
            return self.control._refuse(too_large, probe=admitted, started=started)
        received = 0
        try:
            async with asyncio.timeout(TRANSFER_TIMEOUT):
                async for chunk in request.content.iter_chunked(CHUNK):
                    received += len(chunk)
                    if received > MAX_TRANSFER:
                        return self.control._refuse(too_large, probe=admitted, started=started)
        except TimeoutError:
            refusal = Refusal(400, Result.BAD_REQUEST, f"body not received within {TRANSFER_TIMEOUT:g} s")
            return self.control._refuse(refusal, probe=admitted, started=started)
        return self.control._answer(Result.OK, 200, {"received": received}, probe=admitted, started=started)
