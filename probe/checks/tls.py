"""Check kind ``tls:PORT``: a handshake with the real SNI on the measured
connection, and the follow-ups that turn a bare failure into evidence (a
decoy SNI after a reset or stall, an unverified handshake to read a rejected
certificate). The connection stays open for the HTTP check on that port.
"""

from __future__ import annotations

import ssl

from probe.analysis.endpoint import AnalysisInput
from probe.analysis.goodput import handshake_timing
from probe.analysis.needs import needs_decoy, needs_inspection
from probe.analysis.transport import tls_verdict
from probe.checks import args
from probe.checks.spec import CheckSpec, PortContext
from probe.checks.tcp import open_port
from probe.config.model import Check, Endpoint
from probe.measure import tcp, tls
from probe.model import CheckResult, EndpointObservations, Finding, TlsObservation, Verdict
from probe.vocab import CheckKind, Method, Purpose, failure_string


def _parse(arg: str, host: str) -> Check:
    return Check(CheckKind.TLS, port=args.port("tls", arg))


async def follow_up(
    ctx: PortContext, sni: str, context: ssl.SSLContext, purpose: Purpose, *, shake: bool = True
) -> None:
    """A connection of its own (and, with ``shake``, a handshake) that only looks, recorded."""
    timeouts = ctx.kit.config.timeouts
    observation, conn = await tcp.connect(
        ctx.trace, ctx.address, ctx.port, timeout=timeouts.connect, purpose=purpose, route=ctx.kit.route
    )
    ctx.recorded.tcp.append(observation)
    if conn is None:
        return
    try:
        if shake:
            handshake = await tls.handshake(
                ctx.trace, conn, context, sni, timeout=timeouts.tls, purpose=purpose
            )
            ctx.recorded.tls.append(handshake)
    finally:
        conn.abort()  # a follow-up only looks: its connection never carries anything


async def _run(ctx: PortContext, check: Check) -> None:
    await open_port(ctx)
    conn = ctx.conn
    if conn is None:
        return
    kit = ctx.kit
    first = await tls.handshake(
        ctx.trace, conn, kit.contexts.verify, ctx.endpoint.host, timeout=kit.config.timeouts.tls
    )
    ctx.recorded.tls.append(first)
    if first.failure is None:
        return
    ctx.conn, ctx.failed = None, True
    if needs_decoy(first.failure):
        await follow_up(ctx, kit.config.decoy_sni, kit.contexts.inspect, Purpose.DECOY)
    elif needs_inspection(first.failure):
        await follow_up(ctx, ctx.endpoint.host, kit.contexts.inspect, Purpose.INSPECT)


def _findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    groups: dict[tuple[str, int], list[TlsObservation]] = {}
    for t in obs.tls:
        groups.setdefault((t.address, t.port), []).append(t)
    out = []
    for group in groups.values():
        verdict = tls_verdict(group, inp.fingerprints, obs.controls)
        if verdict is not None:
            out.append(Finding(CheckKind.TLS, verdict))
    return out


def _rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    ports = {c.port for c in endpoint.checks if c.kind is CheckKind.TLS}
    tcp_ports = {c.port for c in endpoint.checks if c.kind is CheckKind.TCP}
    rows = [
        # A tls-only port whose connect failed: the TLS check failed there.
        CheckResult(
            f"tls:{o.port}",
            False,
            failure_string(o.failure, o.error),
            o.duration,
            o.address,
            {"step": "connect"},
        )
        for o in obs.tcp
        if o.purpose is Purpose.CHECK and o.port in ports - tcp_ports and o.failure is not None
    ]
    for t in obs.tls:
        if t.purpose is not Purpose.CHECK or t.port not in ports:
            continue
        same = [d for d in obs.tls if d.address == t.address and d.port == t.port]
        decoy = next((d for d in same if d.purpose is Purpose.DECOY), None)
        inspected = next((d for d in same if d.purpose is Purpose.INSPECT), None)
        detail: dict[str, object] = {"sni": t.sni, "version": t.version, "cipher": t.cipher}
        detail |= handshake_timing(t)
        certificate = t.certificate or (inspected.certificate if inspected else None)
        if certificate is not None:
            detail |= {
                "issuer": certificate.issuer,
                "subject": certificate.subject,
                "not_after": certificate.not_after,
            }
        problem = t.certificate_error or (inspected.certificate_error if inspected else None)
        if problem:
            detail["certificate_error"] = problem
        if decoy is not None:
            detail |= {"decoy_sni": decoy.sni, "decoy_ok": decoy.failure is None}
        rows.append(
            CheckResult(
                f"tls:{t.port}",
                t.failure is None,
                failure_string(t.failure, t.error),
                t.duration,
                t.address,
                detail,
            )
        )
    return rows


SPEC = CheckSpec(
    kind=CheckKind.TLS,
    usage="tls:PORT",
    parse=_parse,
    methods=(Method.TLS_RESET, Method.TLS_TIMEOUT, Method.TLS_MITM),
    findings=_findings,
    rows=_rows,
    stage=1,
    port=lambda c: c.port,
    run=_run,
)
