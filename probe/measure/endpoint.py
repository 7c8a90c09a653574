"""One endpoint, step by step: DNS, then TCP to every address, TLS on that
connection, HTTP pinned to the address (OONI's dd-003 step-by-step design).

Every step records what happened and the next step runs only where the
previous one got through. Follow-ups (decoy SNI/Host, certificate
inspection, a canary query) run only when a step failed in a way they can
explain, so a healthy endpoint costs exactly its configured checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import aiohttp

from probe.addresses import in_prefixes, is_bogon
from probe.config.model import Check, Config, Endpoint, IPNetwork, Service
from probe.measure import tcp
from probe.measure.asn import AsnDatabase
from probe.measure.dns import DnsQuery, DnsTarget, Late, concrete
from probe.measure.http import HttpFetch
from probe.measure.tls import DECOY_WORTHY, TlsContexts, TlsHandshake
from probe.model import (
    DnsObservation,
    DnsReply,
    EndpointObservations,
    HttpObservation,
    TcpObservation,
    TlsObservation,
)
from probe.vocab import CERTIFICATE_FAILURES, CheckKind, Failure

_CANARY_WORTHY = {Failure.DNS_REFUSED, Failure.DNS_SERVER_FAILURE, Failure.TIMEOUT}


@dataclass(frozen=True, slots=True)
class Toolkit:
    """Everything a cycle shares: built once per config, not per endpoint."""

    config: Config
    dns: DnsQuery
    tls: TlsHandshake
    http: HttpFetch
    resolvers: tuple[DnsTarget, ...]
    controls: tuple[DnsTarget, ...]
    asn: AsnDatabase | None
    clock: Callable[[], float]


def tls_contexts(config: Config) -> TlsContexts:
    return TlsContexts.create(str(config.ca_bundle) if config.ca_bundle else None)


@contextlib.asynccontextmanager
async def open_toolkit(
    config: Config,
    *,
    contexts: TlsContexts | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Toolkit]:
    contexts = contexts or tls_contexts(config)
    t = config.timeouts
    connector = aiohttp.TCPConnector(ssl=contexts.verify, limit=64)
    asn = AsnDatabase(config.asn_database) if config.asn_database else None
    http = HttpFetch(contexts.verify, contexts.inspect, timeout=t.http, clock=clock)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=t.dns)
    ) as doh_session:
        try:
            yield Toolkit(
                config=config,
                dns=DnsQuery(
                    timeout=t.dns, window=config.injection_window, doh_session=doh_session, clock=clock
                ),
                tls=TlsHandshake(contexts, connect_timeout=t.connect, timeout=t.tls, clock=clock),
                http=http,
                resolvers=tuple(r for r in map(concrete, config.resolvers) if r is not None),
                controls=tuple(r for r in map(concrete, config.control_resolvers) if r is not None),
                asn=asn,
                clock=clock,
            )
        finally:
            await http.close()
            if asn is not None:
                asn.close()


def _port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _has(endpoint: Endpoint, kind: CheckKind) -> bool:
    return any(c.kind is kind for c in endpoint.checks)


def _needs_control(
    endpoint: Endpoint,
    probe: list[DnsObservation],
    test_networks: tuple[IPNetwork, ...],
    has_asn_database: bool,
) -> bool:
    """Does the answer need a second witness? Only a failure, a reserved
    address or one outside the expected networks does; a healthy answer
    costs no control query (DoH requests are the dearest part of DNS)."""
    addresses = {a for o in probe for a in o.addresses}
    if not addresses:
        return True
    ordinary = endpoint.expected.prefixes + test_networks
    if any(is_bogon(a, ordinary) for a in addresses):
        return True
    expected = endpoint.expected
    if expected.prefixes and not all(in_prefixes(a, expected.prefixes) for a in addresses):
        return True
    # ASNs are looked up later; with a database, an ASN expectation asks the control.
    return bool(expected.asns) and has_asn_database and not expected.prefixes


async def _resolve(kit: Toolkit, endpoint: Endpoint, t0: float) -> tuple[list[DnsObservation], list[Late]]:
    jobs = [(t, q) for t in kit.resolvers for q in ("A", "AAAA")]
    answers = list(await asyncio.gather(*(kit.dns(endpoint.host, q, t, "probe", t0) for t, q in jobs)))
    probe = [o for o, _ in answers]
    if _has(endpoint, CheckKind.DNS) and _needs_control(
        endpoint, probe, kit.config.test_networks, kit.asn is not None
    ):
        controls = [(t, q) for t in kit.controls for q in ("A", "AAAA")]
        answers += await asyncio.gather(*(kit.dns(endpoint.host, q, t, "control", t0) for t, q in controls))
    observations = [o for o, _ in answers]
    late = [pending for _, pending in answers]
    if not any(o.addresses for o in probe) and any(o.failure in _CANARY_WORTHY for o in probe):
        # Does the resolver answer at all? A canary name separates "this name
        # is refused/dropped" from "the resolver is broken".
        for target in {kit.resolvers[0]} if kit.resolvers else set():
            canary, pending = await kit.dns(kit.config.canary_name, "A", target, "canary", t0)
            observations.append(canary)
            late.append(pending)
    return observations, late


async def _tls_with_followups(
    kit: Toolkit, stream: tcp.Stream, address: str, port: int, sni: str, t0: float
) -> list[TlsObservation]:
    first = await kit.tls.on(stream, address, port, sni, t0)
    out = [first]
    if first.failure is not None and first.failure.value in DECOY_WORTHY:
        decoy = await kit.tls.fresh(address, port, kit.config.decoy_sni, t0, decoy=True)
        if decoy is not None:
            out.append(decoy)
    elif first.failure in CERTIFICATE_FAILURES:
        certificate = await kit.tls.inspect_certificate(address, port, sni, t0)
        out[0] = replace(first, certificate=certificate)
    return out


async def _port(
    kit: Toolkit, endpoint: Endpoint, address: str, port: int, tls: bool, t0: float
) -> tuple[TcpObservation, list[TlsObservation]]:
    observation, stream = await tcp.connect(
        address, port, timeout=kit.config.timeouts.connect, t0=t0, clock=kit.clock
    )
    if stream is None:
        return observation, []
    if not tls:
        await tcp.close(stream)
        return observation, []
    return observation, await _tls_with_followups(kit, stream, address, port, endpoint.host, t0)


async def _http(kit: Toolkit, check: Check, address: str, t0: float) -> list[HttpObservation]:
    method = "POST" if check.kind is CheckKind.HTTP_POST else "GET"
    first = await kit.http(check.url, method, address, t0)
    if first.failure is None or first.failure.value not in DECOY_WORTHY:
        return [first]
    return [first, await kit.http(check.url, method, address, t0, decoy_host=kit.config.decoy_host)]


def _http_can_run(check: Check, tcp_obs: list[TcpObservation], tls_obs: list[TlsObservation]) -> bool:
    port = _port_of(check.url)
    if any(o.port == port and o.failure is not None for o in tcp_obs):
        return False
    if urlsplit(check.url).scheme == "https":
        return not any(o.port == port and not o.decoy and o.failure is not None for o in tls_obs)
    return True


async def _address(
    kit: Toolkit, endpoint: Endpoint, address: str, t0: float
) -> tuple[list[TcpObservation], list[TlsObservation], list[HttpObservation]]:
    tls_ports = {c.port for c in endpoint.checks if c.kind is CheckKind.TLS}
    ports = sorted({c.port for c in endpoint.checks if c.kind is CheckKind.TCP} | tls_ports)
    steps = await asyncio.gather(*(_port(kit, endpoint, address, p, p in tls_ports, t0) for p in ports))
    tcp_obs = [o for o, _ in steps]
    tls_obs = [t for _, ts in steps for t in ts]
    http_checks = [c for c in endpoint.checks if c.kind in (CheckKind.HTTP, CheckKind.HTTP_POST)]
    runnable = [c for c in http_checks if _http_can_run(c, tcp_obs, tls_obs)]
    http_obs = await asyncio.gather(*(_http(kit, c, address, t0) for c in runnable))
    return tcp_obs, tls_obs, [o for group in http_obs for o in group]


async def _await_late(pending: Late) -> tuple[DnsReply, ...]:
    return await pending if pending is not None else ()


async def measure_endpoint(
    kit: Toolkit, service: Service, endpoint: Endpoint, slot: asyncio.Semaphore | None = None
) -> EndpointObservations:
    """Measure one endpoint; ``slot`` bounds concurrent network work.

    The late-DNS-reply listeners are awaited after the slot is released:
    they only wait, and holding a slot for that would idle the cycle.
    """
    t0 = kit.clock()
    late: list[Late] = []
    async with slot or contextlib.nullcontext():
        dns_obs: list[DnsObservation] = []
        if endpoint.is_ip:
            addresses = [endpoint.host]
        else:
            dns_obs, late = await _resolve(kit, endpoint, t0)
            seen: dict[str, None] = {}
            for o in dns_obs:
                if o.role == "probe":
                    seen.update(dict.fromkeys(o.addresses))
            addresses = list(seen)
        # Never connect into reserved space a lying resolver pointed us at
        # (it may be the volunteer's own LAN); the answer is evidence enough.
        ordinary = endpoint.expected.prefixes + kit.config.test_networks
        targets = [a for a in addresses if not is_bogon(a, ordinary)]
        per_address = await asyncio.gather(*(_address(kit, endpoint, a, t0) for a in targets))
    extra = await asyncio.gather(*(_await_late(pending) for pending in late))
    dns_obs = [replace(o, extra_replies=e) if e else o for o, e in zip(dns_obs, extra, strict=False)]
    asns = tuple((a, n) for a in addresses if kit.asn and (n := kit.asn.lookup(a)) is not None)
    return EndpointObservations(
        service=service.name,
        endpoint=endpoint.host,
        dns=tuple(dns_obs),
        tcp=tuple(o for t, _, _ in per_address for o in t),
        tls=tuple(o for _, t, _ in per_address for o in t),
        http=tuple(o for _, _, h in per_address for o in h),
        asns=asns,
    )
