"""A check kind as a newcomer would add one: this module and one registry entry.

``head:PORT`` sends ``HEAD / HTTP/1.0`` on the port's measured connection
and records the status line. Nothing else in the probe is edited for it: the
registry test registers it and runs it through config, measurement,
analysis, the tracker and the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.analysis.endpoint import AnalysisInput
from probe.checks.spec import CheckSpec, PortContext
from probe.checks.tcp import open_port
from probe.config.model import Check, Endpoint
from probe.model import CheckResult, EndpointObservations, Finding, Verdict
from probe.vocab import Failure, Method, Operation, Status, failure_string

KIND = "head"


@dataclass(frozen=True, slots=True)
class HeadObservation:
    address: str
    port: int
    duration: float
    failure: Failure | None
    status_line: str = ""


def _parse(arg: str, host: str) -> Check:
    if not arg.isdigit():
        raise ValueError(f"check 'head:{arg}' needs a port")
    return Check(KIND, port=int(arg))


async def _run(ctx: PortContext, check: Check) -> None:
    await open_port(ctx)
    conn = ctx.take()
    if conn is None:
        return
    line = b""
    with ctx.trace.op(
        Operation.HTTP_ROUND_TRIP, transaction=conn.transaction, address=ctx.address, port=ctx.port
    ) as op:
        conn.op = op
        await conn.write(f"HEAD / HTTP/1.0\r\nHost: {ctx.endpoint.host}\r\n\r\n".encode())
        line = (await conn.read(4096)).split(b"\r\n", 1)[0]
    conn.abort()
    ctx.recorded.other.append(
        HeadObservation(ctx.address, ctx.port, op.duration, op.failure, line.decode("latin-1"))
    )


def _findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    return [
        Finding(
            KIND,
            Verdict(Status.UNREACHABLE, None, o.failure, f"head {o.address}: {o.failure}", None, o.address),
        )
        for o in obs.other
        if isinstance(o, HeadObservation) and o.failure is not None
    ]


def _rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    return [
        CheckResult(
            f"head:{o.port}", o.failure is None, failure_string(o.failure, None), o.duration, o.address
        )
        for o in obs.other
        if isinstance(o, HeadObservation)
    ]


SPEC = CheckSpec(
    kind=KIND,
    usage="head:PORT",
    parse=_parse,
    methods=(Method.HTTP_RESET,),
    findings=_findings,
    rows=_rows,
    stage=2,
    port=lambda c: c.port,
    run=_run,
)
