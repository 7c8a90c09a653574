"""One cycle: every endpoint once, bounded concurrency, one deadline.

An endpoint that is not ok is measured again at once (``retries`` times) and
kept only if the attempts agree, so ``msgprobe once`` never reports a block
it saw a single time. The daemon passes ``retries=0`` and confirms across
cycles instead (``probe.analysis.confirm``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from probe.addresses import is_bogon
from probe.analysis.confirm import agree
from probe.analysis.endpoint import AnalysisInput
from probe.analysis.needs import needs_peer_control, ordinary_space
from probe.analysis.vantage import apply_overload, apply_vantage, vantage_online
from probe.checks.analyze import analyze_endpoint
from probe.checks.flow import measure_endpoint
from probe.config.fingerprints import Fingerprints
from probe.config.model import Endpoint, Service
from probe.control.api import MAX_ADDRESSES, Request
from probe.measure.toolkit import Toolkit
from probe.model import EndpointObservations, EndpointResult, Verdict
from probe.runner.lag import monitored
from probe.vocab import Status

DEADLINE_EVIDENCE = "not measured: the cycle deadline was reached first"
log = logging.getLogger("msgprobe")


@dataclass(frozen=True, slots=True)
class CycleResult:
    started: float  # unix seconds
    finished: float
    vantage_online: bool
    results: tuple[EndpointResult, ...]
    max_lag: float = 0.0  # seconds the event loop ran late at worst: the probe's own load

    @property
    def controls(self) -> dict[str, tuple[bool, str | None]]:
        """Each control peer asked this cycle: did it answer any request, and the last error."""
        seen: dict[str, tuple[bool, str | None]] = {}
        for r in self.results:
            for answer in r.observations.controls:
                up, error = seen.get(answer.peer, (False, None))
                seen[answer.peer] = (up or answer.reachable, answer.error or error)
        return seen

    @property
    def duration(self) -> float:
        return self.finished - self.started


def _unmeasured(service: Service, endpoint: Endpoint) -> EndpointResult:
    obs = EndpointObservations(service.name, endpoint.host)
    return EndpointResult(
        service.name, endpoint.host, Verdict(Status.UNKNOWN, None, None, DEADLINE_EVIDENCE), (), obs
    )


def _control_request(inp: AnalysisInput, obs: EndpointObservations) -> Request:
    """The endpoint as the peer's catalog names it, and the addresses answered here
    (never reserved space: a peer refuses it, and it is nobody's business)."""
    ordinary = ordinary_space(inp.endpoint, inp.test_networks)
    if inp.endpoint.is_ip:
        answered = [inp.endpoint.host]
    else:
        answered = [a for o in obs.dns if o.role == "probe" for a in o.addresses]
    addresses = [a for a in dict.fromkeys(answered) if not is_bogon(a, ordinary)]
    return Request(inp.service.name, inp.endpoint.host, (), tuple(addresses[:MAX_ADDRESSES]))


async def _attempt(kit: Toolkit, inp: AnalysisInput, slot: asyncio.Semaphore) -> EndpointResult:
    """One measured and analysed attempt; a bug in either stays with this endpoint.

    The control peers are asked after the slot is released: waiting on a
    peer's own measurement is no network work of ours."""
    obs = await measure_endpoint(kit, inp.service, inp.endpoint, slot)
    try:
        result = analyze_endpoint(obs, inp)
        if kit.peers is not None and needs_peer_control(result.verdict.status, inp.endpoint):
            obs = replace(obs, controls=await kit.peers.ask(_control_request(inp, obs)))
            result = analyze_endpoint(obs, inp)
        return result
    except Exception as exc:
        log.exception(
            "endpoint analysis failed",
            extra={"fields": {"service": inp.service.name, "endpoint": inp.endpoint.host}},
        )
        evidence = f"probe error: {type(exc).__name__}"
        return EndpointResult(
            inp.service.name, inp.endpoint.host, Verdict(Status.ERROR, None, None, evidence), (), obs
        )


async def _endpoint(
    kit: Toolkit,
    fingerprints: Fingerprints,
    service: Service,
    endpoint: Endpoint,
    slot: asyncio.Semaphore,
    retries: int,
) -> EndpointResult:
    inp = AnalysisInput(service, endpoint, fingerprints, kit.config.test_networks)
    attempts = [await _attempt(kit, inp, slot)]
    while attempts[-1].verdict.status not in (Status.OK, Status.ERROR) and len(attempts) <= retries:
        attempts.append(await _attempt(kit, inp, slot))
    if len(attempts) == 1:
        return attempts[0]
    # The rows and observations shown are the first attempt's, as is the verdict agree() keeps.
    return replace(attempts[0], verdict=agree([a.verdict for a in attempts]), attempts=len(attempts))


async def run_cycle(
    kit: Toolkit,
    fingerprints: Fingerprints,
    services: Sequence[Service],
    *,
    retries: int = 0,
    wall: Callable[[], float] = time.time,
) -> CycleResult:
    config = kit.config
    started = wall()
    slot = asyncio.Semaphore(config.concurrency)
    pairs = [(s, e) for s in services for e in s.endpoints]
    done: dict[int, EndpointResult] = {}

    async def one(index: int, service: Service, endpoint: Endpoint) -> None:
        done[index] = await _endpoint(kit, fingerprints, service, endpoint, slot, retries)

    async with monitored() as lag:
        try:
            async with asyncio.timeout(config.timeouts.cycle), asyncio.TaskGroup() as group:
                for index, (service, endpoint) in enumerate(pairs):
                    group.create_task(one(index, service, endpoint))
        except TimeoutError:
            pass  # what finished stands; the rest is reported as not measured
    results = [done.get(i) or _unmeasured(s, e) for i, (s, e) in enumerate(pairs)]
    online = vantage_online([r.observations for r in results])
    shortest = min(config.timeouts.dns, config.timeouts.connect, config.timeouts.tls, config.timeouts.http)
    results = apply_overload(apply_vantage(results, online), lag.max_lag, shortest)
    return CycleResult(started, wall(), online, tuple(results), lag.max_lag)
