"""``msgprobe control``: the server side of the control API (``probe.control.api``).

    POST /v1/measure   measure one catalog endpoint for a probe, answer a Summary
    GET  /-/healthy    200 while the process serves
    GET  /metrics      the control's own metrics (``probe.control.metrics``)

A request passes, in this order, and is refused at the first step it fails;
nothing before the measurement touches the network:

1. the bearer token (401), from the headers alone: an unknown caller gets
   nothing read, parsed or counted against anyone;
2. the token's rate (429, with Retry-After);
3. the body: at most ``MAX_BODY`` bytes (413), within ``BODY_TIMEOUT`` (400);
4. the contract: JSON that ``Request.from_json`` accepts (400, its message);
5. the policy (403, ``probe.control.policy``): the catalog's endpoint, its
   checks, public addresses;
6. a measurement slot (503 at once, never queued: ``probe.control.limits``);
7. the measurement, with the probe's own measure layer, bounded by the
   deadline (504), answered as ``summarize(...)``: summaries, never content.
   A measurement the control could not run (its resolver unusable, a bug
   contained by ``measure_endpoint``) is a 500, not a summary with holes.

No requester address is ever logged: the access log is off (aiohttp's
prints the peer), and the control's own lines name the probe by its token's
name only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from probe.checks.flow import measure_endpoint
from probe.config.model import Config
from probe.control.api import MAX_BODY, PATH, ApiError, Request, summarize
from probe.control.limits import InFlight, RateLimiter, retry_after
from probe.control.metrics import ControlMetrics
from probe.control.policy import Job, Refusal, Result, authorize
from probe.control.tokens import TokenFile
from probe.control.transfer import PATHS as TRANSFER_PATHS
from probe.control.transfer import SINK, SOURCE, Transfers
from probe.measure.toolkit import Toolkit

if TYPE_CHECKING:
    from probe.export.webconfig import WebConfig

log = logging.getLogger("msgprobe")
MAX_DEADLINE = 30.0  # seconds: a probe waits for its controls within its own cycle
BODY_TIMEOUT = 5.0  # seconds to receive a (small) body: a slow sender holds nothing longer
MAX_TOKEN = 256  # characters of a presented token; longer is not one of ours
DEFAULT_MAX_IN_FLIGHT = 16
DEFAULT_RATE_PER_MINUTE = 300  # a whole built-in catalog (137 endpoints) asked in one cycle fits
_NO_STORE = {"Cache-Control": "no-store"}


def deadline_for(config: Config) -> float:
    return min(config.timeouts.cycle, MAX_DEADLINE)


def _bearer(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    token = credentials.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
        return None
    return token


async def _body(request: web.Request) -> bytes | Refusal:
    too_large = Refusal(413, Result.TOO_LARGE, f"request body over {MAX_BODY} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return too_large
    data = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.content.iter_chunked(4096):
                data += chunk
                if len(data) > MAX_BODY:
                    return too_large
    except TimeoutError:
        return Refusal(400, Result.BAD_REQUEST, f"request body not received within {BODY_TIMEOUT:g} s")
    return bytes(data)


def _parse(body: bytes) -> Request | Refusal:
    try:
        return Request.from_json(json.loads(body.decode("utf-8")))
    except UnicodeDecodeError:
        return Refusal(400, Result.BAD_REQUEST, "request body is not UTF-8")
    except ApiError as exc:  # before ValueError: ApiError is one
        return Refusal(400, Result.BAD_REQUEST, str(exc))
    except ValueError:
        return Refusal(400, Result.BAD_REQUEST, "request body is not JSON")


class Control:
    """The measure handler's state: config, toolkit, tokens, bounds, metrics."""

    def __init__(
        self,
        config: Config,
        kit: Toolkit,
        tokens: TokenFile,
        *,
        metrics: ControlMetrics | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.kit = kit
        self.tokens = tokens
        self.metrics = metrics or ControlMetrics()
        self.in_flight = InFlight(max_in_flight)
        self.rate = RateLimiter(rate_per_minute)
        self.deadline = deadline_for(config)
        self.clock = clock

    def _answer(
        self,
        result: Result,
        status: int,
        body: dict[str, Any],
        *,
        probe: str | None,
        started: float,
        job: Job | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.metrics.count(result)
        fields: dict[str, object] = {"probe": probe or "-", "result": result.value, "status": status}
        if job is not None:
            fields |= {"service": job.service.name, "endpoint": job.endpoint.host}
        fields["duration_s"] = round(self.clock() - started, 3)
        if status != 200:
            fields["error"] = body.get("error", "")
        level = {Result.ERROR: logging.WARNING, Result.FORBIDDEN: logging.INFO}.get(result, logging.DEBUG)
        log.log(level, "control request", extra={"fields": fields})
        return web.json_response(body, status=status, headers={**_NO_STORE, **(headers or {})})

    def _refuse(self, refusal: Refusal, *, probe: str | None, started: float, **kw: Any) -> web.Response:
        return self._answer(
            refusal.result, refusal.status, {"error": refusal.message}, probe=probe, started=started, **kw
        )

    async def measure(self, request: web.Request) -> web.Response:
        started = self.clock()
        token = _bearer(request)
        probe = self.tokens.lookup(token) if token is not None else None
        if probe is None:
            message = "missing bearer token" if token is None else "unknown token"
            refusal = Refusal(401, Result.UNAUTHORIZED, message)
            auth = {"WWW-Authenticate": 'Bearer realm="msgprobe control"'}
            return self._refuse(refusal, probe=None, started=started, headers=auth)
        wait = self.rate.take(probe, started)
        if wait > 0:
            refusal = Refusal(429, Result.RATE_LIMITED, f"over {self.rate.per_minute} requests per minute")
            return self._refuse(
                refusal, probe=probe, started=started, headers={"Retry-After": retry_after(wait)}
            )
        body = await _body(request)
        if isinstance(body, Refusal):
            return self._refuse(body, probe=probe, started=started)
        parsed = _parse(body)
        if isinstance(parsed, Refusal):
            return self._refuse(parsed, probe=probe, started=started)
        job = authorize(self.config, parsed)
        if isinstance(job, Refusal):
            return self._refuse(job, probe=probe, started=started)
        if not self.in_flight.try_enter():
            refusal = Refusal(
                503,
                Result.BUSY,
                f"busy: {self.in_flight.limit} measurements in flight (the limit); try later",
            )
            return self._refuse(refusal, probe=probe, started=started, job=job, headers={"Retry-After": "1"})
        return await self._measured(job, probe=probe, started=started)

    async def _measured(self, job: Job, *, probe: str, started: float) -> web.Response:
        self.metrics.in_flight.inc()
        try:
            async with asyncio.timeout(self.deadline):
                obs = await measure_endpoint(self.kit, job.service, job.endpoint, also=job.addresses)
        except TimeoutError:
            refusal = Refusal(504, Result.TIMEOUT, f"measurement did not finish within {self.deadline:g} s")
            return self._refuse(refusal, probe=probe, started=started, job=job)
        finally:
            self.in_flight.leave()
            self.metrics.in_flight.dec()
            self.metrics.duration.observe(self.clock() - started)
        if obs.errors:
            log.warning(
                "control measurement incomplete",
                extra={"fields": {"endpoint": job.endpoint.host, "errors": "; ".join(obs.errors)}},
            )
            refusal = Refusal(500, Result.ERROR, "the control could not measure this endpoint")
            return self._refuse(refusal, probe=probe, started=started, job=job)
        summary = summarize(obs).to_json()
        return self._answer(Result.OK, 200, summary, probe=probe, started=started, job=job)


def _except_measure(inner: Middleware) -> Middleware:
    """The web config's middleware (basic auth) for every route but the measure route.

    Both basic auth and the probes' bearer tokens live in the one
    Authorization header, so the measure route cannot take both: it has its
    tokens; basic auth guards /metrics and the rest, as for an exporter.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == PATH or request.path in TRANSFER_PATHS:
            return await handler(request)
        return await inner(request, handler)

    return middleware


def make_app(control: Control, *, middlewares: Sequence[Middleware] = ()) -> web.Application:
    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = control.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type, **_NO_STORE})

    app = web.Application(middlewares=[_except_measure(m) for m in middlewares])
    app.router.add_post(PATH, control.measure)
    transfers = Transfers(control)
    app.router.add_get(SOURCE, transfers.source)
    app.router.add_post(SINK, transfers.sink)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/metrics", metrics)
    return app


@contextlib.asynccontextmanager
async def running(
    app: web.Application, listen: str, web_config: WebConfig | None = None
) -> AsyncIterator[web.AppRunner]:
    """Serve ``app`` on ``listen`` until the block ends (no access log: it prints peer addresses)."""
    from probe.export.web import serve

    runner = await serve(app, listen, web_config=web_config)
    try:
        yield runner
    finally:
        await runner.cleanup()
