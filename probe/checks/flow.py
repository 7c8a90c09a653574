"""One endpoint attempt, step by step (OONI's dd-003): DNS, then per address
and port the registered kinds in stage order on one measured connection.

Every step records what happened and the next runs only where the previous
got through. Follow-ups (decoys, certificate inspection, a canary query, the
control's address) run only when ``probe.analysis.needs`` says a rule will
want them as a witness, so a healthy endpoint costs exactly its checks.

A failure is contained here: an exception that is not a network fact (a bug,
or a parser a censor found a way to break) ends this endpoint's attempt with
``errors`` set, keeps what the trace recorded so far, and never reaches the
cycle's other endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from probe.addresses import is_bogon
from probe.analysis.needs import control_addresses_to_measure, needs_canary, needs_control, ordinary_space
from probe.checks import REGISTRY, raw_steps
from probe.checks.spec import CheckSpec, PortContext, Recorded
from probe.checks.tls import follow_up
from probe.config.model import Check, Endpoint, Service
from probe.measure.dns import Late
from probe.measure.toolkit import Toolkit
from probe.measure.trace import Trace
from probe.model import DnsObservation, DnsReply, EndpointObservations
from probe.vocab import CheckKind, Purpose

log = logging.getLogger("msgprobe")
T = TypeVar("T")
# A resolver answering thousands of records must not make the probe open
# thousands of sockets: the first few per family are measured, the rest noted.
MAX_ADDRESSES_PER_FAMILY = 8


async def _all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; if one raises, the others are cancelled, never orphaned.

    One coroutine alone is awaited in place: most endpoints have one address
    and one port, and a task group per step is measurable CPU at 1,000 endpoints.
    """
    pending = list(coros)
    if len(pending) == 1:
        return [await pending[0]]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(c) for c in pending]
    return [t.result() for t in tasks]


async def _resolve(kit: Toolkit, trace: Trace, endpoint: Endpoint, late: list[Late]) -> list[DnsObservation]:
    host = endpoint.host
    answers = await _all(kit.dns(trace, host, q, t, "probe") for t in kit.resolvers for q in ("A", "AAAA"))
    probe = [o for o, _ in answers]
    wants_dns = any(c.kind is CheckKind.DNS for c in endpoint.checks)
    if wants_dns and needs_control(endpoint, probe, kit.config.test_networks, kit.asn is not None):
        answers += await _all(
            kit.dns(trace, host, q, t, "control") for t in kit.controls for q in ("A", "AAAA")
        )
    if needs_canary(probe) and kit.resolvers:
        # Does the resolver answer at all? A canary name separates "this name
        # is refused/dropped" from "the resolver is broken".
        answers.append(await kit.dns(trace, kit.config.canary_name, "A", kit.resolvers[0], "canary"))
    late.extend(pending for _, pending in answers)
    return [o for o, _ in answers]


def _ports(endpoint: Endpoint) -> dict[int, list[tuple[CheckSpec, Check]]]:
    by_port: dict[int, list[tuple[CheckSpec, Check]]] = {}
    for check in endpoint.checks:
        spec = REGISTRY[check.kind]
        if spec.port is not None and spec.run is not None:
            by_port.setdefault(spec.port(check), []).append((spec, check))
    return {p: sorted(items, key=lambda item: item[0].stage) for p, items in sorted(by_port.items())}


async def _port(ctx: PortContext, items: list[tuple[CheckSpec, Check]]) -> None:
    try:
        for spec, check in items:
            assert spec.run is not None
            await spec.run(ctx, check)
    finally:
        leftover = ctx.take()
        if leftover is not None:
            leftover.abort()


async def _address(kit: Toolkit, trace: Trace, endpoint: Endpoint, address: str, recorded: Recorded) -> None:
    capture = await raw_steps.start_capture(kit, address)
    try:
        await _all(
            _port(PortContext(kit, trace, endpoint, address, port, recorded), items)
            for port, items in _ports(endpoint).items()
        )
    except BaseException:
        raw_steps.drop_capture(capture)
        raise
    await raw_steps.finish_capture(kit, trace, address, capture, recorded)


async def _control_address(
    kit: Toolkit, trace: Trace, endpoint: Endpoint, address: str, recorded: Recorded
) -> None:
    """Connect (and verify TLS) at the control's address, to compare with the answer here."""
    tls_ports = {c.port for c in endpoint.checks if c.kind is CheckKind.TLS}
    ports = sorted({c.port for c in endpoint.checks if c.kind is CheckKind.TCP} | tls_ports)
    if ports:
        ctx = PortContext(kit, trace, endpoint, address, ports[0], recorded)
        await follow_up(
            ctx, endpoint.host, kit.contexts.verify, Purpose.CONTROL_ADDRESS, shake=ports[0] in tls_ports
        )


def _bounded(addresses: list[str]) -> tuple[list[str], int]:
    kept: list[str] = []
    per_family: dict[bool, int] = {}
    for a in addresses:
        family = ":" in a
        if per_family.get(family, 0) < MAX_ADDRESSES_PER_FAMILY:
            per_family[family] = per_family.get(family, 0) + 1
            kept.append(a)
    return kept, len(addresses) - len(kept)


def _root(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _late_replies(late: list[Late]) -> list[tuple[DnsReply, ...]]:
    return [await pending if pending is not None else () for pending in late]


async def measure_endpoint(
    kit: Toolkit,
    service: Service,
    endpoint: Endpoint,
    slot: asyncio.Semaphore | None = None,
    *,
    also: Sequence[str] = (),
) -> EndpointObservations:
    """Measure one endpoint; ``slot`` bounds concurrent network work.

    ``also``: addresses to measure besides those the name resolves to (a
    control peer measures the probe's answers too). The late-DNS-reply
    listeners are awaited after the slot is released: they only wait, and
    holding a slot for that would idle the cycle.
    """
    trace = Trace(keep=(endpoint.host,) if endpoint.is_ip else ())
    recorded = Recorded()
    late: list[Late] = []
    dns_obs: list[DnsObservation] = []
    addresses: list[str] = [endpoint.host] if endpoint.is_ip else []
    errors: list[str] = []
    dropped = 0
    try:
        async with slot or contextlib.nullcontext():
            if not endpoint.is_ip:
                errors.extend(kit.resolver_problems)
                if not errors:
                    dns_obs = await _resolve(kit, trace, endpoint, late)
                    addresses = list(
                        dict.fromkeys(a for o in dns_obs if o.role == "probe" for a in o.addresses)
                    )
            # Never connect into reserved space a lying resolver pointed us at
            # (it may be the volunteer's own LAN); the answer is evidence enough.
            ordinary = ordinary_space(endpoint, kit.config.test_networks)
            addresses = list(dict.fromkeys([*addresses, *also]))
            targets, dropped = _bounded([a for a in addresses if not is_bogon(a, ordinary)])
            await _all(_address(kit, trace, endpoint, a, recorded) for a in targets)
            for address in control_addresses_to_measure(endpoint, dns_obs, recorded.tcp):
                await _control_address(kit, trace, endpoint, address, recorded)
        extra = await _late_replies(late)
        dns_obs = [replace(o, extra_replies=e) if e else o for o, e in zip(dns_obs, extra, strict=True)]
        await raw_steps.dns_step(kit, trace, endpoint, dns_obs, recorded)
    except Exception as exc:
        cause = _root(exc)
        log.error(
            "endpoint measurement failed",
            exc_info=cause,
            extra={"fields": {"service": service.name, "endpoint": endpoint.host}},
        )
        errors.append(f"probe error: {type(cause).__name__}")
    finally:
        for pending in late:
            if pending is not None and not pending.done():
                pending.cancel()
    asns = tuple((a, n) for a in addresses if kit.asn and (n := kit.asn.lookup(a)) is not None)
    return EndpointObservations(
        service=service.name,
        endpoint=endpoint.host,
        dns=tuple(dns_obs),
        tcp=tuple(recorded.tcp),
        tls=tuple(recorded.tls),
        http=tuple(recorded.http),
        asns=asns,
        errors=tuple(errors),
        trace=trace.events,
        other=tuple(recorded.other),
        unmeasured_addresses=dropped,
    )
