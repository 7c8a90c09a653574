"""The configuration as the rest of the probe sees it: frozen and already valid."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from probe.vocab import Confidence, EndpointState

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ResolverSpec:
    raw: str  # as written in the config; this is what evidence and labels show
    transport: str  # "system" | "udp" | "tcp" | "doh"
    host: str = ""
    port: int = 53
    url: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    kind: str  # a registered kind (probe.checks.REGISTRY); CheckKind for the built-in ones
    port: int = 0
    url: str = ""

    @property
    def label(self) -> str:
        """``dns``, ``tcp:443``, ``http:URL``: the kind and its one argument."""
        argument = self.url or (str(self.port) if self.port else "")
        return f"{self.kind}:{argument}" if argument else str(self.kind)


@dataclass(frozen=True, slots=True)
class Expected:
    """Where a service's genuine addresses live; empty means "not asserted"."""

    prefixes: tuple[IPNetwork, ...] = ()
    asns: tuple[int, ...] = ()

    @property
    def asserted(self) -> bool:
        return bool(self.prefixes or self.asns)


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str  # host name or IP literal, exactly as configured
    checks: tuple[Check, ...]
    state: EndpointState = EndpointState.ACTIVE
    expected: Expected = field(default_factory=Expected)
    source: str = ""
    note: str = ""
    confidence: Confidence | None = None  # None: the catalog does not say

    @property
    def is_ip(self) -> bool:
        return is_ip_literal(self.host)


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    title: str
    endpoints: tuple[Endpoint, ...]
    # Registrable domains the service legitimately redirects to.
    domains: tuple[str, ...] = ()
    expected: Expected = field(default_factory=Expected)


@dataclass(frozen=True, slots=True)
class Timeouts:
    dns: float = 4.0
    connect: float = 5.0
    tls: float = 5.0
    http: float = 10.0
    cycle: float = 240.0
    control: float = 30.0  # one request to a control peer, its measurement included


@dataclass(frozen=True, slots=True)
class ControlPeer:
    """A msgprobe running ``msgprobe control`` in an uncensored network."""

    url: str  # base URL: https://control.example:9491
    token_file: Path  # holds this probe's bearer token (and nothing else)
    ca_bundle: Path | None = None  # trusted for this peer's TLS besides the system store

    @property
    def name(self) -> str:
        """The peer as a metric label: scheme-less host and port, never a path or credentials."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


@dataclass(frozen=True, slots=True)
class Throttle:
    """Throttling tests (T1 pairs, T3 confirmation) and the byte budget no setting can exceed."""

    confirm: bool = False  # T3: downloads and uploads at a control peer with the real SNI (opt-in)
    daily_bytes: int = 5_000_000  # every byte the throttle and freeze tests move, per UTC day
    every: float = 6 * 3600.0  # T1 pairs at most this often per service unless T0 is suspicious
    pairs: int = 3  # interleaved real/decoy pairs per T1 run


@dataclass(frozen=True, slots=True)
class Calls:
    """Call reachability (``stun:`` checks): neutral STUN servers and the optional paced flow."""

    stun_controls: tuple[tuple[str, int], ...] = ()  # (host, port) of neutral STUN servers
    flow: bool = False  # also a short paced UDP flow to each relay (mid-call cut-offs)
    flow_seconds: float = 20.0  # bounded: at most 30 s
    flow_bytes: int = 150_000  # bounded: at most 200 KB


@dataclass(frozen=True, slots=True)
class Raw:
    """Packet witnesses (scapy, NET_RAW): injected DNS answers, forged resets, the censor's hop."""

    packets: bool = False  # DNS-injection and forged-reset witnesses
    no_resolver: tuple[str, ...] = ()  # addresses on the path that run no resolver: any answer is forged
    # The censor traceroute is opt-in on its own: it sends the blocked name
    # again with every TTL, which a censor may notice.
    traceroute: bool = False
    max_hops: int = 30
    per_hop: int = 1  # trigger packets per TTL
    hop_wait: float = 2.0  # seconds to wait for what a TTL draws
    pace: float = 1.0  # seconds between TTLs
    trace_budget: float = 120.0  # seconds one traceroute may take in all
    trace_every: float = 86_400.0  # at most once per blocked endpoint in this time

    @property
    def enabled(self) -> bool:
        return self.packets or self.traceroute


# Domestic services a whitelist regime lets through, per ISO country code,
# used when the config names none for the country. RU: the CIDR-whitelist
# probe of hyperion-cs/dpi-checkers (ru/dpi-ch/config/default.yaml at 53a8250,
# 2026-08-07: https://max.ru/, https://ya.ru/, https://vk.ru/; Max, VK's state
# messenger, is whitelisted: net4people/bbs#490, controls-throttling.md B5, C)
# and the state services portal every regional list carries
# (hxehex/russia-mobile-internet-whitelist; the research names the list, not
# this entry). Canaries are witnesses, never catalog services.
DEFAULT_WHITELIST_CANARIES: dict[str, tuple[str, ...]] = {
    "RU": ("max.ru", "ya.ru", "vk.ru", "gosuslugi.ru"),
}


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None
    services: tuple[Service, ...]
    interval: float = 300.0
    jitter: float = 30.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    concurrency: int = 32
    confirm: int = 2
    resolvers: tuple[ResolverSpec, ...] = (ResolverSpec("system", "system"),)
    control_resolvers: tuple[ResolverSpec, ...] = ()
    canary_name: str = "example.com"
    injection_window: float = 0.5  # OONI listens 500 ms: a real answer may trail an injected one by 300 ms
    decoy_sni: str = "example.com"
    decoy_host: str = "example.com"
    ca_bundle: Path | None = None
    asn_database: Path | None = None
    blockpages: tuple[Path, ...] = ()  # fingerprint files, read in order; () is the built-in one
    evidence_path: Path | None = None
    evidence_max_bytes: int = 20_000_000
    # Old generations kept, and their age at most: (keep + 1) x max_size on disk,
    # about 100 MB by default, which a Raspberry Pi's SD card holds.
    evidence_keep: int = 4
    evidence_max_age: float = 30 * 86_400.0
    probe_id: str = ""
    country: str = ""
    asn: str = ""
    control_peers: tuple[ControlPeer, ...] = ()
    # Reserved space treated as ordinary address space: a private test network
    # or the loopback demo. Never set on a real vantage (it disables dns.bogon there).
    test_networks: tuple[IPNetwork, ...] = ()
    throttle: Throttle = field(default_factory=Throttle)
    calls: Calls = field(default_factory=Calls)
    raw: Raw = field(default_factory=Raw)
    # (country, canaries) pairs as configured; see ``canaries``.
    whitelist_canaries: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The canaries' HTTPS port: 443 on a real vantage; a test network moves it.
    whitelist_canary_port: int = 443

    @property
    def canaries(self) -> tuple[str, ...]:
        """The domestic canaries for this vantage's country (configured, else the built-in ones)."""
        country = self.country.upper()
        configured = dict(self.whitelist_canaries)
        if country in configured:
            return configured[country]
        return DEFAULT_WHITELIST_CANARIES.get(country, ())

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)
