"""Check kind ``freeze:PORT``: a ~40 KB keep-alive transfer each way on one
connection to every address, and where it stalls (method ``tcp.freeze``).

It runs after the port's tcp (and tls) stages got through. It rides the
connection they opened when no HTTP check took it, else it opens its own
(the freeze counts per connection, so a fresh one measures the same thing).
It is TLS, with the real SNI and a verified context, when the endpoint has
a tls check or an https URL on the port, and plain HTTP otherwise; the path
is that of the endpoint's URL on the port, else ``/``. When the transfer
freezes inside the window (``probe.analysis.freeze``), the vantage's
domestic canaries get the same transfer, with TLS on 443
(``whitelist_canary_port``), once per endpoint attempt: the witness that
this path carries 40 KB elsewhere.
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import urlsplit

from probe.addresses import is_bogon
from probe.analysis.endpoint import AnalysisInput
from probe.analysis.freeze import freeze_findings, needs_canary_transfer, transfers
from probe.checks import args
from probe.checks.spec import CheckSpec, PortContext, Recorded
from probe.config.model import Check, Endpoint
from probe.measure import tcp, tcpinfo, tls
from probe.measure.http import port_of
from probe.measure.tcp import Connection
from probe.measure.transfer import BUDGET_SPENT, transfer
from probe.model import (
    CheckResult,
    EndpointObservations,
    Finding,
    TcpObservation,
    TlsObservation,
    TransferObservation,
    Verdict,
)
from probe.vocab import CheckKind, Method, Purpose, failure_string

MAX_CANARIES = 2  # tried in order until one connects: each costs a transfer from the budget
# A connection of the freeze test's own costs its handshake too: a long
# certificate chain and our ClientHello, the allowance probe.measure.pairs uses.
HANDSHAKE_RESERVE = 24 * 1024 + 2 * 1024
SENT_ALLOWANCE = 2 * 1024


def _parse(arg: str, host: str) -> Check:
    return Check(CheckKind.FREEZE, port=args.port("freeze", arg))


def _over_tls(endpoint: Endpoint, port: int) -> bool:
    return any(
        (c.kind == CheckKind.TLS and c.port == port)
        or (c.url.startswith("https://") and port_of(c.url) == port)
        for c in endpoint.checks
    )


def _path(endpoint: Endpoint, port: int) -> str:
    for c in endpoint.checks:
        if c.url and port_of(c.url) == port:
            parts = urlsplit(c.url)
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return "/"


def _failed(
    host: str, sni: str | None, purpose: Purpose, step: TcpObservation | TlsObservation
) -> TransferObservation:
    """The transfer's own connection (or handshake) failed: recorded as the transfer's failure."""
    what = "tls handshake" if isinstance(step, TlsObservation) else "connect"
    return TransferObservation(
        step.address, step.port, host, sni, purpose, step.started, step.duration, step.failure,
        step.error, ended=f"{what} failed",
    )  # fmt: skip


async def _dial(
    ctx: PortContext, address: str, port: int, sni: str | None, purpose: Purpose
) -> tuple[Connection, float] | TcpObservation | TlsObservation | None:
    """A connection of the transfer's own (TLS when ``sni``) and its RTT; the
    failed step's observation; None when the day's budget cannot cover the
    handshake, which is the freeze test's cost too."""
    kit = ctx.kit
    if not kit.budget.take(HANDSHAKE_RESERVE):
        return None
    charged = HANDSHAKE_RESERVE  # where the kernel cannot say, the whole allowance
    try:
        opened, conn = await tcp.connect(
            ctx.trace, address, port, timeout=kit.config.timeouts.connect, purpose=purpose, route=kit.route
        )
        if conn is None:
            charged = 0
            return opened
        if sni is not None:
            shake = await tls.handshake(
                ctx.trace, conn, kit.contexts.verify, sni, timeout=kit.config.timeouts.tls, purpose=purpose
            )
            if shake.failure is not None:
                return shake
        kernel = tcpinfo.bytes_received(conn.sock)
        if kernel is not None:
            charged = min(HANDSHAKE_RESERVE, kernel + SENT_ALLOWANCE)
        return conn, opened.duration
    finally:
        kit.budget.give_back(HANDSHAKE_RESERVE - charged)


def _refused(
    ctx: PortContext, address: str, host: str, sni: str | None, purpose: Purpose
) -> TransferObservation:
    return TransferObservation(
        address, ctx.port, host, sni, purpose, ctx.trace.now(), 0.0, None, ended=BUDGET_SPENT
    )


def _rtt(recorded: Recorded, conn: Connection) -> float | None:
    return next((o.duration for o in recorded.tcp if o.transaction == conn.transaction), None)


async def _carry(
    ctx: PortContext,
    conn: Connection,
    host: str,
    sni: str | None,
    rtt: float | None,
    path: str,
    purpose: Purpose,
) -> TransferObservation:
    try:
        return await transfer(
            ctx.trace, conn, host=host, sni=sni, budget=ctx.kit.budget, rtt=rtt, path=path, purpose=purpose
        )
    finally:
        conn.abort()


class _CanaryClaim:
    """Held in ``recorded.other`` while one address measures the canaries, so the
    endpoint's other frozen addresses do not measure them again."""


async def _canaries(ctx: PortContext) -> None:
    recorded, kit = ctx.recorded, ctx.kit
    if not kit.resolvers or any(
        isinstance(o, _CanaryClaim) or (isinstance(o, TransferObservation) and o.purpose is Purpose.CANARY)
        for o in recorded.other
    ):
        return
    claim = _CanaryClaim()
    recorded.other.append(claim)  # no await since the check above: no other address got in between
    found: list[TransferObservation] = []
    try:
        for name in kit.config.canaries[:MAX_CANARIES]:
            answer, late = await kit.dns(ctx.trace, name, "A", kit.resolvers[0], "canary")
            if late is not None:
                late.cancel()
            # Never into reserved space a lying resolver pointed us at (it may be the volunteer's LAN).
            addresses = [a for a in answer.addresses if not is_bogon(a, kit.config.test_networks)]
            if not addresses:
                continue
            port = kit.config.whitelist_canary_port  # 443 but in a test network
            dialed = await _dial(ctx, addresses[0], port, name, Purpose.CANARY)
            if dialed is None:
                found.append(_refused(ctx, addresses[0], name, name, Purpose.CANARY))
                break
            if not isinstance(dialed, tuple):
                found.append(_failed(name, name, Purpose.CANARY, dialed))
                continue
            conn, rtt = dialed
            found.append(await _carry(ctx, conn, name, name, rtt, "/", Purpose.CANARY))
            break
    finally:
        recorded.other.remove(claim)
        recorded.other.extend(found)


# A frozen address is measured again at most this often; the last transfer
# stands in between (labelled with its age), so a confirmed freeze neither
# flaps nor spends the day's budget on re-proving itself every cycle.
RERUN_STALLED = 3600.0


def _log_key(ctx: PortContext) -> str:
    return f"{ctx.endpoint.host} {ctx.address}:{ctx.port}"


def _reused(ctx: PortContext) -> bool:
    """The last transfers here stand in, when they are recent enough; False: measure now."""
    last = ctx.kit.pairs_log.freezes.get(_log_key(ctx))
    if last is None:
        return False
    at, observations = last
    age = time.monotonic() - at
    clean = all(o.failure is None and not o.stalled for o in observations if o.purpose is Purpose.CHECK)
    every = ctx.kit.config.throttle.every
    if age >= (every if clean else min(RERUN_STALLED, every)):
        return False
    note = f"measured {age:.0f} s ago (a transfer runs at most every {every / 3600:g} h here)"
    ctx.recorded.other.extend(
        replace(o, ended=f"{o.ended}; {note}" if o.ended else note) for o in observations
    )
    return True


async def _run(ctx: PortContext, check: Check) -> None:
    if ctx.failed:
        return  # TCP or TLS already failed on this port: that step's row says so
    if _reused(ctx):
        return
    before = len(ctx.recorded.other)
    await _measure(ctx)
    mine = [
        o
        for o in ctx.recorded.other[before:]
        if isinstance(o, TransferObservation)
        and (o.purpose is Purpose.CANARY or (o.address, o.port) == (ctx.address, ctx.port))
    ]
    if mine and not any(o.ended == BUDGET_SPENT for o in mine):
        ctx.kit.pairs_log.freezes[_log_key(ctx)] = (time.monotonic(), tuple(mine))


async def _measure(ctx: PortContext) -> None:
    endpoint = ctx.endpoint
    host = endpoint.host
    sni = host if _over_tls(endpoint, ctx.port) else None
    path = _path(endpoint, ctx.port)
    conn = ctx.take()
    if conn is not None and (sni is None or conn.tls):
        rtt = _rtt(ctx.recorded, conn)
    else:
        if conn is not None:
            conn.abort()  # plain, where the transfer must be TLS: start over on a connection of its own
        dialed = await _dial(ctx, ctx.address, ctx.port, sni, Purpose.CHECK)
        if dialed is None:
            ctx.recorded.other.append(_refused(ctx, ctx.address, host, sni, Purpose.CHECK))
            return
        if not isinstance(dialed, tuple):
            ctx.recorded.other.append(_failed(host, sni, Purpose.CHECK, dialed))
            return
        conn, rtt = dialed
    observation = await _carry(ctx, conn, host, sni, rtt, path, Purpose.CHECK)
    ctx.recorded.other.append(observation)
    if needs_canary_transfer(observation):
        await _canaries(ctx)


def _findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    return freeze_findings(obs.other, obs.controls)


def _rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    ports = {c.port for c in endpoint.checks if c.kind == CheckKind.FREEZE}
    rows = []
    for o in transfers(obs.other):
        if o.purpose is not Purpose.CHECK or o.port not in ports:
            continue
        detail: dict[str, object] = {
            "sent": o.sent,
            "received": o.received,
            "stalled": o.stalled,
            "responses": o.responses,
            "stall_timeout": round(o.stall_timeout, 3),
        }
        if o.sni is not None:
            detail["sni"] = o.sni
        if o.ended:
            detail["ended"] = o.ended
        canaries = [c for c in transfers(obs.other) if c.purpose is Purpose.CANARY]
        if canaries:
            detail["canaries"] = [
                {"host": c.host, "sent": c.sent, "received": c.received, "stalled": c.stalled}
                for c in canaries
            ]
        blocked_here = verdict.method is Method.TCP_FREEZE and verdict.address == o.address
        # A transfer the budget did not cover found nothing wrong: ok, and its row says why it did not run.
        ok = o.failure is None and not blocked_here
        rows.append(
            CheckResult(
                f"freeze:{o.port}", ok, failure_string(o.failure, o.error), o.duration, o.address, detail
            )
        )
    return rows


SPEC = CheckSpec(
    kind=CheckKind.FREEZE,
    usage="freeze:PORT",
    parse=_parse,
    # A control peer or a domestic canary is the witness: without either it never fires.
    methods=(Method.TCP_FREEZE,),
    findings=_findings,
    rows=_rows,
    stage=3,
    port=lambda c: c.port,
    run=_run,
)
