"""Check kinds ``http:URL`` and ``http_post:URL``: one request on the
connection the TCP/TLS checks opened to the address (or a connection of its
own when its port has no such check), redirects followed by hand, and a
decoy-Host repeat after a reset or stall.

Any HTTP response from the real server counts as reachable, whatever its
status; interference shows as a blockpage, a redirect off the service's
domains, or a failure a decoy Host does not get.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from probe.analysis.endpoint import AnalysisInput
from probe.analysis.http import http_verdict, slow_text
from probe.analysis.http_diff import http_diff
from probe.analysis.needs import needs_http_decoy
from probe.checks import args
from probe.checks.spec import CheckSpec, PortContext
from probe.config.model import Check, Endpoint
from probe.measure.http import port_of
from probe.model import CheckResult, EndpointObservations, Finding, HttpObservation, Verdict
from probe.vocab import CheckKind, Method, failure_string

_METHODS = (
    Method.HTTP_RESET,
    Method.HTTP_TIMEOUT,
    Method.HTTP_BLOCKPAGE,
    Method.HTTP_REDIRECT,
    Method.HTTP_DIFF,
)
_BLOCKS_HERE = {Method.HTTP_BLOCKPAGE, Method.HTTP_REDIRECT, Method.HTTP_DIFF}


async def _run(ctx: PortContext, check: Check) -> None:
    if ctx.failed:
        return  # TCP or TLS already failed on this port: that step's row says so
    kit = ctx.kit
    method = "POST" if check.kind == CheckKind.HTTP_POST else "GET"
    first = await kit.http(ctx.trace, check.url, method, ctx.address, conn=ctx.take())
    ctx.recorded.http.append(first)
    if needs_http_decoy(first) and not first.slow:
        decoy = await kit.http(ctx.trace, check.url, method, ctx.address, decoy_host=kit.config.decoy_host)
        ctx.recorded.http.append(decoy)


def _findings(obs: EndpointObservations, inp: AnalysisInput, verb: str) -> list[Finding]:
    groups: dict[tuple[str, str, str], list[HttpObservation]] = {}
    for h in (h for h in obs.http if h.method == verb):
        # The decoy request has another host in its URL: group by what stays the same.
        parts = urlsplit(h.url)
        groups.setdefault((h.address, h.method, f"{parts.scheme}:{parts.port}{parts.path}"), []).append(h)
    out = []
    for requests in groups.values():
        verdict = http_verdict(requests, inp.service.domains, inp.fingerprints)
        real = next((h for h in requests if not h.decoy), None)
        if verdict is None and real is not None and obs.controls:
            verdict = http_diff(real, obs.controls, inp.fingerprints)
        if verdict is not None:
            out.append(Finding(CheckKind.HTTP, verdict))
    return out


def _timing(h: HttpObservation) -> dict[str, object]:
    """T0: what the round trip moved and how fast (throttling shows here first)."""
    out: dict[str, object] = {"bytes_received": h.bytes_received}
    if h.handshake_time is not None:
        out["handshake_s"] = round(h.handshake_time, 4)
    if h.time_to_first_byte is not None:
        out["time_to_first_byte_s"] = round(h.time_to_first_byte, 4)
    if h.goodput is not None:
        out["goodput_Bps"] = round(h.goodput, 1)
    if h.slow:
        out["slow"] = slow_text(h)
    return out


def _rows(obs: EndpointObservations, verdict: Verdict, verb: str) -> list[CheckResult]:
    rows = []
    for h in obs.http:
        if h.decoy or h.method != verb:
            continue
        kind = "http_post" if h.method == "POST" else "http"
        blocked_here = verdict.method in _BLOCKS_HERE and verdict.address == h.address
        retry = next(
            (d for d in obs.http if d.decoy and d.address == h.address and d.method == h.method), None
        )
        detail: dict[str, object] = {
            "status": h.status,
            "title": h.title,
            "body_length": h.body_length,
            "redirects": [hop.location for hop in h.redirects],
        }
        if h.redirect_limit_reached:
            detail["redirect_limit_reached"] = True
        if h.failed_operation is not None:
            detail["failed_operation"] = h.failed_operation.value
        detail |= _timing(h)
        if retry is not None:
            detail |= {"decoy_host": retry.host, "decoy_ok": retry.failure is None}
        ok = h.failure is None and not blocked_here
        rows.append(
            CheckResult(
                f"{kind}:{h.url}", ok, failure_string(h.failure, h.error), h.duration, h.address, detail
            )
        )
    return rows


def _spec(kind: CheckKind, verb: str) -> CheckSpec:
    def findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
        return _findings(obs, inp, verb)

    def rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
        return _rows(obs, verdict, verb)

    return CheckSpec(
        kind=kind,
        usage=f"{kind.value}:URL",
        parse=lambda arg, host: Check(kind, url=args.url(kind.value, arg, host)),
        methods=_METHODS,
        findings=findings,
        rows=rows,
        stage=2,
        port=lambda c: port_of(c.url),
        run=_run,
    )


SPEC = _spec(CheckKind.HTTP, "GET")
POST_SPEC = _spec(CheckKind.HTTP_POST, "POST")
