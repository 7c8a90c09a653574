"""The censor traceroutes of a cycle (``raw.traceroute``, opt-in): after every
endpoint was measured, one at a time, within what is left of the deadline.

A traceroute sends the blocked name again with every TTL, so it is paced
and bounded (``probe.raw.traceroute``), runs at most once per blocked
endpoint and port per ``raw.trace_every`` (24 h; the log survives restarts),
and never costs an endpoint its measurement: it only adds an observation
to a result that is already complete. One cut short by the deadline is not
logged and is tried again next cycle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from probe.analysis.censor_hop import censor_hop
from probe.analysis.endpoint import AnalysisInput
from probe.analysis.needs import needs_traceroute
from probe.checks.analyze import analyze_endpoint
from probe.measure.toolkit import Toolkit
from probe.measure.trace_log import TraceLog
from probe.model import EndpointResult
from probe.model_packets import RawTraceroute

log = logging.getLogger("msgprobe")
MIN_LEFT = 5.0  # s: with less time left in the cycle no traceroute starts


async def _walk(
    kit: Toolkit, result: EndpointResult, trigger: str, address: str, port: int, budget: float
) -> RawTraceroute:
    config = kit.config
    control = config.decoy_sni if trigger == "sni" else config.decoy_host
    base = RawTraceroute("raw_traceroute", address, port, trigger, result.endpoint, control)
    problem = kit.resources.raw_problem
    if problem is not None:
        return replace(base, failure=problem)
    from probe.raw.traceroute import traceroute

    raw = replace(config.raw, trace_budget=min(config.raw.trace_budget, budget))
    try:
        return await traceroute(
            address,
            port,
            trigger=trigger,
            name=result.endpoint,
            control_name=control,
            raw=raw,
            connect_timeout=config.timeouts.connect,
        )
    except Exception as exc:  # contained: the endpoint keeps its verdict and rows
        log.error("censor traceroute failed", exc_info=exc, extra={"fields": {"endpoint": result.endpoint}})
        return replace(base, failure=f"raw check failed: {type(exc).__name__}")


async def trace_blocked(
    kit: Toolkit,
    results: Sequence[EndpointResult],
    inputs: Callable[[EndpointResult], AnalysisInput | None],
    deadline: float,
    *,
    wall: Callable[[], float] = time.time,
) -> list[EndpointResult]:
    """``results`` with a traceroute added to each blocked endpoint that is due one.
    ``deadline`` is on the monotonic clock; ``inputs`` gives a result's analysis input."""
    raw = kit.config.raw
    out = list(results)
    if not raw.traceroute:
        return out
    log_: TraceLog = kit.trace_log
    for index, result in enumerate(results):
        obs = result.observations
        plan = needs_traceroute(result.verdict, obs.tls, obs.http)
        inp = inputs(result)
        if plan is None or inp is None:
            continue
        trigger, address, port = plan
        key = TraceLog.key(result.service, result.endpoint, port)
        if not log_.due(key, wall(), raw.trace_every):
            continue
        left = deadline - time.monotonic()
        if left < MIN_LEFT:
            break
        try:
            async with asyncio.timeout(left):
                walk = await _walk(kit, result, trigger, address, port, left)
        except TimeoutError:
            break  # not logged: tried again next cycle
        if walk.failure is None:
            log_.record(key, wall(), censor_hop(walk))
        traced = analyze_endpoint(replace(obs, other=(*obs.other, walk)), inp)
        # The verdict is the one already decided (and agreed over attempts): packets add rows only.
        out[index] = replace(traced, verdict=result.verdict, attempts=result.attempts)
    return out
