"""Check kind ``throttle:PORT``: T1 pairs (real SNI / decoy SNI) at each address.

It runs after TLS and HTTP on the same port (stage 3), because its trigger is
their T0 data: a handshake of a second or more, or an HTTP transfer that
timed out after progress. Without a trigger it runs once every
``throttle.every`` per address (the first time ``every`` after the probe
started, so ``msgprobe once`` measures pairs only on suspicion). A throttled
endpoint stays suspicious every cycle; its pairs are measured again only
after ``RERUN`` and the last ones (labelled with their age) stand in between,
so the verdict is steady and the volunteer's data plan is not spent on
repeating what is known. Every byte comes out of the daily budget first.
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import urlsplit

from probe.analysis.endpoint import AnalysisInput
from probe.analysis.throttle import confirm_summary, confirm_verdict, pairs_summary, pairs_verdict, suspicion
from probe.checks import args
from probe.checks.spec import CheckSpec, PortContext
from probe.config.model import Check, Endpoint
from probe.measure.confirm import measure_confirm
from probe.measure.http import port_of
from probe.measure.pairs import measure_pairs
from probe.model import (
    CheckResult,
    ConfirmObservation,
    EndpointObservations,
    Finding,
    PairsObservation,
    Verdict,
)
from probe.vocab import CheckKind, Method

RERUN = 3600.0  # seconds: a suspicious address is re-measured at most this often (or every ``every``)


def _parse(arg: str, host: str) -> Check:
    return Check(CheckKind.THROTTLE, port=args.port("throttle", arg))


def _slow_path(ctx: PortContext) -> str | None:
    """The resource T0 saw slow on this address and port (read by each arm), or None:
    a slow handshake or the schedule needs handshakes only."""
    for h in ctx.recorded.http:
        parts = urlsplit(h.url)
        if h.slow and h.address == ctx.address and parts.scheme == "https" and port_of(h.url) == ctx.port:
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return None


async def _run(ctx: PortContext, check: Check) -> None:
    kit, endpoint = ctx.kit, ctx.endpoint
    key = f"{endpoint.host} {ctx.address}:{ctx.port}"
    host, decoy = endpoint.host, kit.config.decoy_sni

    def skip(reason: str, why: str) -> None:
        ctx.recorded.other.append(PairsObservation(ctx.address, ctx.port, host, decoy, reason, skipped=why))

    if ctx.failed:
        skip("an earlier step failed on this port", "not run")
        return
    log, now = kit.pairs_log, time.monotonic()
    every = kit.config.throttle.every
    reason = suspicion(ctx.recorded.tls, ctx.recorded.http, ctx.address, ctx.port)
    first = log.first_seen.setdefault(key, now)
    last = log.last.get(key)
    since = now - (last[0] if last else first)
    # Only pairs a suspicion ran stand in for new ones: scheduled ones read nothing.
    suspected = last is not None and last[1].reason != "scheduled"
    if reason is not None and last is not None and suspected and since < min(RERUN, every):
        ctx.recorded.other.append(replace(last[1], reason=f"{reason}; pairs measured {since:.0f} s ago"))
        await _confirm(ctx, key, now)
        return
    if reason is None:
        if since < every:
            skip("no sign of slowness", "not due")
            return
        reason = "scheduled"
    observation = await measure_pairs(
        ctx.trace,
        kit.contexts,
        kit.budget,
        address=ctx.address,
        port=ctx.port,
        host=host,
        decoy_sni=decoy,
        path=_slow_path(ctx),
        pairs=kit.config.throttle.pairs,
        reason=reason,
        connect_timeout=kit.config.timeouts.connect,
        tls_timeout=kit.config.timeouts.tls,
        seconds=kit.config.timeouts.http,
        route=kit.route,
    )
    if observation.skipped is None:
        log.last[key] = (now, observation)
    elif last is not None and since < every:
        # Today's budget is spent: the last pairs (younger than ``every``) still stand, labelled.
        observation = replace(
            last[1], reason=f"{reason}; {observation.skipped}, pairs measured {since:.0f} s ago"
        )
    ctx.recorded.other.append(observation)
    if reason != "scheduled":
        await _confirm(ctx, key, now)


async def _confirm(ctx: PortContext, key: str, now: float) -> None:
    """T3 (opt-in): after suspicious pairs, the same names' transfers at a control peer."""
    kit = ctx.kit
    peers = kit.resources.peers
    if not kit.config.throttle.confirm or not peers:
        return
    log = kit.pairs_log
    cached = log.confirmed.get(key)
    if cached is not None and now - cached[0] < min(RERUN, kit.config.throttle.every):
        ctx.recorded.other.append(cached[1])
        return
    observation = await measure_confirm(
        ctx.trace,
        kit.contexts,
        kit.budget,
        peers[0],
        address=ctx.address,
        host=ctx.endpoint.host,
        decoy_sni=kit.config.decoy_sni,
        pairs=kit.config.throttle.pairs,
        timeout=kit.config.timeouts.tls,
        route=kit.route,
    )
    observation = replace(observation, port=ctx.port)
    if observation.skipped is None:
        log.confirmed[key] = (now, observation)
    ctx.recorded.other.append(observation)


def _observations(obs: EndpointObservations) -> list[PairsObservation]:
    return [o for o in obs.other if isinstance(o, PairsObservation)]


def _confirmations(obs: EndpointObservations) -> list[ConfirmObservation]:
    return [o for o in obs.other if isinstance(o, ConfirmObservation)]


def _findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    verdicts = [pairs_verdict(o) for o in _observations(obs)]
    verdicts += [confirm_verdict(o) for o in _confirmations(obs)]
    return [Finding(CheckKind.THROTTLE, v) for v in verdicts if v is not None]


def _rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    rows = []
    for o in _observations(obs):
        found = pairs_verdict(o)
        duration = sum(a.transfer_duration + (a.handshake or 0.0) + (a.connect or 0.0) for a in o.arms)
        detail = pairs_summary(o)
        if found is not None:
            detail["evidence"] = found.evidence
        rows.append(CheckResult(f"throttle:{o.port}", found is None, None, duration, o.address, detail))
    for c in _confirmations(obs):
        confirmed = confirm_verdict(c)
        detail = {"stage": "confirm", **confirm_summary(c)}
        if confirmed is not None:
            detail["evidence"] = confirmed.evidence
        rows.append(CheckResult(f"throttle:{c.port}", confirmed is None, None, 0.0, c.address, detail))
    return rows


SPEC = CheckSpec(
    kind=CheckKind.THROTTLE,
    usage="throttle:PORT",
    parse=_parse,
    methods=(Method.THROTTLED,),
    findings=_findings,
    rows=_rows,
    stage=3,
    port=lambda c: c.port,
    run=_run,
)
