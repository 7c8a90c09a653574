"""One cycle: every endpoint once, bounded concurrency, one deadline.

An endpoint that is not ok is measured again at once (``retries`` times) and
kept only if the attempts agree, so ``msgprobe once`` never reports a block
it saw a single time. The daemon passes ``retries=0`` and confirms across
cycles instead (``probe.analysis.confirm``).

The vantage's domestic canaries (``Config.canaries``) are measured in the
same cycle, under the same slots and deadline, as endpoints of a synthetic
service: dns, then tcp and a verified tls on their HTTPS port. They are never
judged and never exported as endpoints; their observations only decide the
regime (``probe.analysis.vantage.regime``): online, offline or whitelist.
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
from probe.analysis.vantage import apply_overload, apply_regime, canary_verified, regime
from probe.checks.analyze import analyze_endpoint
from probe.checks.flow import measure_endpoint
from probe.config.fingerprints import Fingerprints
from probe.config.model import Check, Config, Endpoint, Service
from probe.control.api import MAX_ADDRESSES, Request
from probe.measure.toolkit import Toolkit
from probe.model import EndpointObservations, EndpointResult, Verdict
from probe.runner.censor_trace import trace_blocked
from probe.runner.lag import monitored
from probe.vocab import CheckKind, Regime, Status

CANARY_SERVICE = "_canaries"  # never a catalog name: those cannot start with "_"
DEADLINE_EVIDENCE = "not measured: the cycle deadline was reached first"
log = logging.getLogger("msgprobe")


@dataclass(frozen=True, slots=True)
class CycleResult:
    started: float  # unix seconds
    finished: float
    vantage_online: bool
    results: tuple[EndpointResult, ...]
    max_lag: float = 0.0  # seconds the event loop ran late at worst: the probe's own load
    regime: Regime = Regime.ONLINE
    canaries: tuple[EndpointObservations, ...] = ()  # the domestic canaries, as measured

    def __post_init__(self) -> None:
        if not self.vantage_online and self.regime is not Regime.OFFLINE:  # built without a regime
            object.__setattr__(self, "regime", Regime.OFFLINE)

    @property
    def canary_up(self) -> dict[str, bool]:
        """Each canary: did its TLS handshake verify this cycle."""
        return {c.endpoint: canary_verified(c) for c in self.canaries}

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


def canary_service(config: Config) -> Service:
    """The canaries as endpoints: dns, tcp and verified tls on their HTTPS port."""
    port = config.whitelist_canary_port
    checks = (Check(CheckKind.DNS), Check(CheckKind.TCP, port=port), Check(CheckKind.TLS, port=port))
    endpoints = tuple(Endpoint(name, checks, source="whitelist canary") for name in config.canaries)
    return Service(CANARY_SERVICE, "whitelist canaries", endpoints)


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
    canaries = canary_service(config)
    canary_done: dict[int, EndpointObservations] = {}

    async def one(index: int, service: Service, endpoint: Endpoint) -> None:
        done[index] = await _endpoint(kit, fingerprints, service, endpoint, slot, retries)

    async def canary(index: int, endpoint: Endpoint) -> None:
        canary_done[index] = await measure_endpoint(kit, canaries, endpoint, slot)

    deadline = time.monotonic() + config.timeouts.cycle
    async with monitored() as lag:
        try:
            async with asyncio.timeout(config.timeouts.cycle), asyncio.TaskGroup() as group:
                # First in line for the slots: a few handshakes, and the regime needs them.
                for index, endpoint in enumerate(canaries.endpoints):
                    group.create_task(canary(index, endpoint))
                for index, (service, endpoint) in enumerate(pairs):
                    group.create_task(one(index, service, endpoint))
        except TimeoutError:
            pass  # what finished stands; the rest is reported as not measured
        results = [done.get(i) or _unmeasured(s, e) for i, (s, e) in enumerate(pairs)]
        seen = tuple(
            canary_done.get(i) or EndpointObservations(CANARY_SERVICE, e.host)
            for i, e in enumerate(canaries.endpoints)
        )
        current = regime([r.observations for r in results], seen)
        results = apply_regime(results, current, seen)
        inputs = {(s.name, e.host): AnalysisInput(s, e, fingerprints, config.test_networks) for s, e in pairs}
        results = await trace_blocked(
            kit, results, lambda r: inputs.get((r.service, r.endpoint)), deadline, wall=wall
        )
    shortest = min(config.timeouts.dns, config.timeouts.connect, config.timeouts.tls, config.timeouts.http)
    results = apply_overload(results, lag.max_lag, shortest)
    online = current is not Regime.OFFLINE
    return CycleResult(started, wall(), online, tuple(results), lag.max_lag, current, seen)
