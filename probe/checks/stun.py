"""Check kind ``stun:HOST:PORT`` (or ``stun:PORT``): can a call reach the
messenger's relay over UDP? Method ``udp.blocked``.

Per address: a STUN Binding Request (``probe.measure.udp``); if it gets no
answer, a random payload of the same size to the relay and the same Binding
Request to each neutral STUN server (``calls.stun_controls``), concurrently;
if it is answered and ``calls.flow`` is on, a short paced flow to the relay
and one neutral server, within the day's byte budget. The verdicts are
``probe.analysis.calls``'s.

UDP rides no connection: this kind never opens, takes or fails the port's
TCP connection, so a ``tcp:`` or ``http:`` check on the same port number
runs as if it were alone, and a TCP failure there does not stop it.

Neutral servers are asked per address, at the moment the relay was silent,
and only then: the witness is measured in the same window as the failure
it explains, and a healthy relay costs its one datagram.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from probe.analysis.calls import calls_verdicts, needs_flow, needs_follow_up
from probe.analysis.endpoint import AnalysisInput
from probe.checks.spec import CheckSpec, PortContext
from probe.config.model import Check, Endpoint, is_ip_literal
from probe.measure import udp, udp_flow
from probe.model import (
    CheckResult,
    EndpointObservations,
    Finding,
    StunObservation,
    UdpExchange,
    UdpFlow,
    Verdict,
)
from probe.vocab import CheckKind, Method, Purpose, Status, failure_string

TRIES = 3  # Binding Request copies within timeouts.connect (RFC 5389 §7.2.1, scaled)


def _parse(arg: str, host: str) -> Check:
    name, sep, port = arg.rpartition(":")
    if not sep:
        name, port = host, arg
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"check 'stun:{arg}' needs HOST:PORT (or PORT) with a port 1-65535")
    # The check runs on the addresses measured for this endpoint: a STUN
    # server on another host would silently measure the wrong thing.
    if name.strip("[]").lower() != host.strip("[]").lower():
        raise ValueError(f"STUN host {name!r} is not the endpoint {host!r}")
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return Check(CheckKind.STUN, port=int(port), url=f"{shown}:{port}")


async def _neutral_address(ctx: PortContext, host: str) -> str | None:
    """A neutral server's address, resolved as the probe resolves (same family as the relay)."""
    if is_ip_literal(host):
        return host
    qtype = "AAAA" if ":" in ctx.address else "A"
    for target in (*ctx.kit.resolvers, *ctx.kit.controls):
        observation, late = await ctx.kit.dns(ctx.trace, host, qtype, target, "neutral")
        if late is not None:
            late.cancel()  # late replies are the DNS check's business, not this one's
        if observation.addresses:
            return observation.addresses[0]
    return None


async def _neutrals(ctx: PortContext) -> list[tuple[str, int, str | None]]:
    servers = ctx.kit.config.calls.stun_controls
    found = await asyncio.gather(*(_neutral_address(ctx, host) for host, _ in servers))
    return [(host, port, address) for (host, port), address in zip(servers, found, strict=True)]


async def _binding(
    ctx: PortContext, address: str, port: int, purpose: Purpose, host: str = ""
) -> UdpExchange:
    # The loopback demo's control peer stands "abroad": its datagrams to a
    # relay reach a genuine STUN server (Resources.udp_route; empty for real).
    to_address, to_port = ctx.kit.resources.udp_route.get((address, port), (address, port))
    exchange = await udp.stun_binding(
        ctx.trace,
        to_address,
        to_port,
        timeout=ctx.kit.config.timeouts.connect,
        tries=TRIES,
        purpose=purpose,
        host=host,
    )
    return exchange if to_address == address else replace(exchange, address=address, port=port)


async def _follow_up(ctx: PortContext, observation: StunObservation) -> StunObservation:
    timeout = ctx.kit.config.timeouts.connect
    random_task = asyncio.ensure_future(
        udp.random_datagram(ctx.trace, ctx.address, observation.port, timeout=timeout, tries=TRIES)
    )
    try:
        servers = await _neutrals(ctx)
        neutral = await asyncio.gather(
            *(_binding(ctx, a, p, Purpose.NEUTRAL, h) for h, p, a in servers if a is not None)
        )
        random = await random_task
    finally:
        random_task.cancel()
    unresolved = tuple(h for h, _, a in servers if a is None)
    return StunObservation(
        observation.host,
        observation.address,
        observation.port,
        observation.relay,
        random=random,
        neutral=tuple(neutral),
        neutral_unresolved=unresolved,
    )


async def _flows(ctx: PortContext, observation: StunObservation) -> StunObservation:
    calls = ctx.kit.config.calls
    budget = ctx.kit.budget
    if not budget.take(calls.flow_bytes):
        return StunObservation(
            observation.host,
            observation.address,
            observation.port,
            observation.relay,
            flow_skipped="the day's byte budget is spent",
        )
    flows: list[UdpFlow] = []
    try:
        servers = [(h, p, a) for h, p, a in await _neutrals(ctx) if a is not None][:1]
        share = calls.flow_bytes // (1 + len(servers))
        runs = [
            udp_flow.paced_flow(
                ctx.trace, ctx.address, observation.port, seconds=calls.flow_seconds, max_bytes=share
            ),
            *(
                udp_flow.paced_flow(
                    ctx.trace,
                    a,
                    p,
                    seconds=calls.flow_seconds,
                    max_bytes=share,
                    purpose=Purpose.NEUTRAL,
                    host=h,
                )
                for h, p, a in servers
            ),
        ]
        flows = list(await asyncio.gather(*runs))
    finally:
        budget.give_back(calls.flow_bytes - sum(f.bytes_sent + f.bytes_received for f in flows))
    return StunObservation(
        observation.host,
        observation.address,
        observation.port,
        observation.relay,
        flow=flows[0],
        neutral_flow=flows[1] if len(flows) > 1 else None,
    )


async def _run(ctx: PortContext, check: Check) -> None:
    kit = ctx.kit
    relay = await _binding(ctx, ctx.address, check.port, Purpose.CHECK)
    observation = StunObservation(check.url.rpartition(":")[0], ctx.address, check.port, relay)
    if needs_follow_up(relay):
        observation = await _follow_up(ctx, observation)
    elif needs_flow(relay, kit.config.calls.flow):
        observation = await _flows(ctx, observation)
    ctx.recorded.other.append(observation)


def _observed(obs: EndpointObservations) -> list[StunObservation]:
    return [o for o in obs.other if isinstance(o, StunObservation)]


def _findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    return [Finding(CheckKind.STUN, v) for v in calls_verdicts(_observed(obs), obs.controls)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _exchange(x: UdpExchange) -> dict[str, object]:
    return {
        "server": f"{x.host or x.address}:{x.port}",
        "answered": x.answered,
        "failure": failure_string(x.failure, x.error),
        "tries": x.tries,
        "rtt_ms": _ms(x.rtt),
    }


def _flow(f: UdpFlow) -> dict[str, object]:
    return {
        "server": f"{f.host or f.address}:{f.port}",
        "sent": f.sent,
        "answered": f.answered,
        "last_answered": f.last_answered,
        "stopped": f.stopped,
        "bytes": f.bytes_sent + f.bytes_received,
    }


def _random(x: UdpExchange | None) -> str | None:
    if x is None:
        return None
    return "answered" if x.answered else failure_string(x.failure, x.error)


def _detail(o: StunObservation) -> dict[str, object]:
    relay = o.relay
    detail: dict[str, object] = {
        "tries": relay.tries,
        "rtt_ms": _ms(relay.rtt),
        "attributes": [f"0x{a:04x}" for a in relay.attributes],
        "response_size": relay.response_size,
    }
    if relay.ignored:
        detail["ignored"] = list(relay.ignored)
    if o.neutral or o.neutral_unresolved:
        detail["neutral"] = [_exchange(n) for n in o.neutral]
        detail["neutral_answered"] = any(n.answered for n in o.neutral)
    if o.neutral_unresolved:
        detail["neutral_unresolved"] = list(o.neutral_unresolved)
    if o.random is not None:
        detail["random_payload"] = _random(o.random)
    if o.flow is not None:
        detail["flow"] = _flow(o.flow)
    if o.neutral_flow is not None:
        detail["neutral_flow"] = _flow(o.neutral_flow)
    if o.flow_skipped:
        detail["flow_skipped"] = o.flow_skipped
    return detail


def _rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    checks: Sequence[Check] = [c for c in endpoint.checks if c.kind == CheckKind.STUN]
    blocked = {v.address for v in calls_verdicts(_observed(obs)) if v.status is Status.BLOCKED}
    rows = []
    for check in checks:
        for o in _observed(obs):
            if o.port != check.port:
                continue
            ok = o.relay.answered and o.address not in blocked
            failure = failure_string(o.relay.failure, o.relay.error)
            if o.relay.answered and not ok:
                failure = "generic_timeout_error"  # answered once, then the flow was cut off
            rows.append(CheckResult(check.label, ok, failure, o.relay.duration, o.address, _detail(o)))
    return rows


SPEC = CheckSpec(
    kind=CheckKind.STUN,
    usage="stun:HOST:PORT",
    parse=_parse,
    # A neutral STUN server is the witness: without calls.stun_controls it never fires.
    methods=(Method.UDP_BLOCKED,),
    findings=_findings,
    rows=_rows,
    stage=0,
    port=lambda c: c.port,
    run=_run,
)
