"""What measurement shares: ``Resources`` built once per config (CA stores,
the ASN database, the system resolver), and the per-cycle ``Toolkit``.

Building a TLS context loads a CA store (tens of ms) and opening the
``.mmdb`` maps a file: both happen when a config is loaded (off the event
loop, by the daemon), never once per cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp

from probe.config.model import Config
from probe.control.client import ControlClient, Peer
from probe.measure.asn import AsnDatabase
from probe.measure.budget import ByteBudget
from probe.measure.dns import DnsQuery, DnsTarget, SystemResolver, concrete
from probe.measure.http import HttpFetch
from probe.measure.pairs import PairsLog
from probe.measure.tls import TlsContexts
from probe.measure.trace_log import TraceLog


def _raw_problem(config: Config) -> str | None:
    if not config.raw.enabled:
        return None
    from probe.raw.capability import raw_problem  # imports scapy: only when raw checks are configured

    return raw_problem()


@dataclass(frozen=True, slots=True)
class Resources:
    contexts: TlsContexts
    asn: AsnDatabase | None
    system: SystemResolver
    peers: tuple[Peer, ...] = ()  # control peers with their tokens read
    # The loopback demo's simulated routing (tcp.connect); empty on a real vantage.
    route: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    udp_route: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)  # the same, for UDP
    # Why raw checks cannot run here ("needs NET_RAW"), asked once per config;
    # None when they can or when none is configured.
    raw_problem: str | None = None

    @classmethod
    def create(cls, config: Config) -> Resources:
        contexts = TlsContexts.create(str(config.ca_bundle) if config.ca_bundle else None)
        asn = AsnDatabase(config.asn_database) if config.asn_database else None
        peers = tuple(Peer.create(p) for p in config.control_peers)
        return cls(contexts, asn, SystemResolver(), peers, raw_problem=_raw_problem(config))


RAW_WITNESSES = 8


@dataclass(frozen=True, slots=True)
class Toolkit:
    """Everything a cycle shares: built once per cycle, not per endpoint."""

    config: Config
    resources: Resources
    dns: DnsQuery
    http: HttpFetch
    resolvers: tuple[DnsTarget, ...]
    controls: tuple[DnsTarget, ...]
    # Why a configured resolver could not be used (e.g. resolv.conf missing):
    # every endpoint that needs DNS is then ``error``, never ``unreachable``.
    resolver_problems: tuple[str, ...] = ()
    peers: ControlClient | None = None  # None: no control peer configured
    # Bytes the throttle and freeze tests may still move today. The daemon
    # passes one budget to every toolkit it opens, so a reload never resets it.
    budget: ByteBudget = field(default_factory=lambda: ByteBudget(0))
    # When throttle pairs last ran where, and what they saw (kept by the daemon across cycles).
    pairs_log: PairsLog = field(default_factory=PairsLog)
    # When each endpoint's censor traceroute last ran (kept by the daemon, on disk when it can).
    trace_log: TraceLog = field(default_factory=TraceLog)
    # Raw DNS witnesses at once: each holds captures (a thread and a packet socket) for its window.
    raw_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(RAW_WITNESSES))

    @property
    def packets(self) -> bool:
        """Capture the packet witnesses (DNS injection, forged resets) this cycle."""
        return self.config.raw.packets and self.resources.raw_problem is None

    @property
    def contexts(self) -> TlsContexts:
        return self.resources.contexts

    @property
    def asn(self) -> AsnDatabase | None:
        return self.resources.asn

    @property
    def route(self) -> Mapping[tuple[str, int], tuple[str, int]]:
        return self.resources.route


def _targets(kit_config: Config, system: SystemResolver) -> tuple[list[DnsTarget], list[str]]:
    targets, problems = [], []
    for spec in kit_config.resolvers:
        target = concrete(spec, system)
        if target is None:
            problems.append(f"resolver {spec.raw}: no nameserver in {system.path}")
        else:
            targets.append(target)
    return targets, problems


@contextlib.asynccontextmanager
async def open_toolkit(
    config: Config,
    *,
    resources: Resources | None = None,
    budget: ByteBudget | None = None,
    pairs_log: PairsLog | None = None,
    trace_log: TraceLog | None = None,
) -> AsyncIterator[Toolkit]:
    resources = resources or Resources.create(config)
    t = config.timeouts
    resolvers, problems = _targets(config, resources.system)
    controls = [c for c in (concrete(s, resources.system) for s in config.control_resolvers) if c]
    connector = aiohttp.TCPConnector(ssl=resources.contexts.verify, limit=64)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=t.dns)
    ) as doh_session:
        dns = DnsQuery(timeout=t.dns, window=config.injection_window, doh_session=doh_session)
        try:
            yield Toolkit(
                config=config,
                resources=resources,
                dns=dns,
                http=HttpFetch(
                    resources.contexts,
                    connect_timeout=t.connect,
                    tls_timeout=t.tls,
                    timeout=t.http,
                    route=resources.route,
                ),
                resolvers=tuple(resolvers),
                controls=tuple(controls),
                resolver_problems=tuple(problems),
                peers=ControlClient(resources.peers, doh_session, timeout=t.control)
                if resources.peers
                else None,
                budget=budget or ByteBudget(config.throttle.daily_bytes),
                pairs_log=pairs_log if pairs_log is not None else PairsLog(),
                trace_log=trace_log if trace_log is not None else TraceLog(),
            )
        finally:
            dns.close()
