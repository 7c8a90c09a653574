"""Check kind ``tcp:PORT``: a three-way handshake to every address.

A TCP failure alone never proves a block: a dropped SYN or a reset looks the
same whether a censor or an outage caused it, so it is ``unreachable`` until
a peer control says the address is up (``tcp.timeout`` / ``tcp.refused``).
"""

from __future__ import annotations

from probe.analysis.controls import genuine
from probe.analysis.endpoint import AnalysisInput
from probe.analysis.transport import tcp_verdict
from probe.checks import args
from probe.checks.spec import CheckSpec, PortContext
from probe.config.model import Check, Endpoint
from probe.measure import tcp
from probe.model import CheckResult, EndpointObservations, Finding, Verdict
from probe.vocab import CheckKind, Method, Purpose, failure_string


def _parse(arg: str, host: str) -> Check:
    return Check(CheckKind.TCP, port=args.port("tcp", arg))


async def open_port(ctx: PortContext) -> None:
    """Connect once per address and port; every stage after rides this connection."""
    if ctx.conn is not None or ctx.failed:
        return
    observation, conn = await tcp.connect(
        ctx.trace, ctx.address, ctx.port, timeout=ctx.kit.config.timeouts.connect, route=ctx.kit.route
    )
    ctx.recorded.tcp.append(observation)
    ctx.conn, ctx.failed = conn, conn is None


async def _run(ctx: PortContext, check: Check) -> None:
    await open_port(ctx)


def _findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    out = []
    for o in obs.tcp:
        if o.purpose is not Purpose.CHECK:
            continue
        verdict = tcp_verdict(o, obs.controls, genuine(obs.controls, inp.endpoint, o.address))
        if verdict is not None:
            out.append(Finding(CheckKind.TCP, verdict))
    return out


def _rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    wanted = {c.port for c in endpoint.checks if c.kind is CheckKind.TCP}
    return [
        CheckResult(
            f"tcp:{o.port}", o.failure is None, failure_string(o.failure, o.error), o.duration, o.address
        )
        for o in obs.tcp
        if o.purpose is Purpose.CHECK and o.port in wanted
    ]


SPEC = CheckSpec(
    kind=CheckKind.TCP,
    usage="tcp:PORT",
    parse=_parse,
    # A peer control is their witness: without control_peers they never fire.
    methods=(Method.TCP_TIMEOUT, Method.TCP_REFUSED),
    findings=_findings,
    rows=_rows,
    stage=0,
    port=lambda c: c.port,
    run=_run,
)
