"""Packet observations: what the raw checks (``probe.raw``, scapy, NET_RAW) recorded.

They are witnesses for the application-level findings: who answered a DNS
query (an IP TTL and IP ID unlike the resolver's own), who sent a reset (unlike
the SYN-ACK of the same connection), and where on the path interference
starts (a CenTrace-style TTL walk). Like every observation they are plain
facts; ``probe.analysis.packets`` decides what they prove.

Privacy: a packet's remote sender (a resolver, a server, a router on the
path) is recorded; the probe's own address never is. Captures hold it in
memory only, to tell direction and to address crafted packets.
"""

from __future__ import annotations

from dataclasses import dataclass

# Why a raw check could not run: the one line a row and the evidence show.
NEEDS_NET_RAW = "needs NET_RAW"
NEEDS_SCAPY = "needs scapy (pip install 'msgprobe[raw]')"
NEEDS_LIBPCAP = "needs libpcap (capture filters cannot be compiled without it)"


@dataclass(frozen=True, slots=True)
class PacketFacts:
    """One captured IP packet from the far end, as recorded (never the probe's own address)."""

    t: float  # seconds after the trigger (the query, the ClientHello, the request) left
    src: str  # who sent it: the resolver, the server, a router, or whoever forged it
    ttl: int  # IP TTL (IPv6: hop limit) as it arrived
    ip_id: int  # IPv4 identification (0 for IPv6)
    df: bool = False
    flags: str = ""  # TCP flags in scapy's letters: "SA", "R", "RA", "PA"
    window: int = 0
    payload: int = 0  # TCP/UDP payload length
    rcode: str | None = None  # DNS replies only
    addresses: tuple[str, ...] = ()  # DNS replies only: the A/AAAA answers


@dataclass(frozen=True, slots=True)
class RawDns:
    """One suspect query repeated at the same resolver with a capture, and its baselines.

    ``replies`` answer one transmission of the suspect query; ``baseline``
    answers one transmission of the canary name to the same resolver (the
    resolver's own TTL and IP ID); ``silent`` holds, per configured address
    that runs no resolver, whatever answered the same query there (anything
    is forged)."""

    kind: str  # "raw_dns": observations of every kind share EndpointObservations.other
    hostname: str
    qtype: str
    resolver: str  # as configured
    address: str  # the resolver's address the query went to
    canary: str
    replies: tuple[PacketFacts, ...] = ()
    baseline: tuple[PacketFacts, ...] = ()
    silent: tuple[tuple[str, tuple[PacketFacts, ...]], ...] = ()
    window: float = 0.0  # seconds listened after each transmission
    failure: str | None = None  # the raw check could not run (NEEDS_NET_RAW, …)


@dataclass(frozen=True, slots=True)
class RawReset:
    """The packets of one measured connection that ended in a reset.

    ``synack`` is that connection's SYN-ACK (None when the SYN itself was
    reset: a refused connect); ``baseline`` is then a SYN-ACK from the same
    address on another connection of this attempt, if any. ``after_reset``
    counts the far end's non-RST packets that arrived after the first RST
    (the race an out-of-band injector cannot win)."""

    kind: str  # "raw_reset"
    address: str
    port: int
    step: str  # "connect" | "tcp" (established, nothing sent) | "tls" | "http": what the reset ended
    purpose: str  # the connection's purpose ("check", "decoy", …)
    trigger_sent: bool  # a payload (ClientHello, request) had left before the reset
    resets: tuple[PacketFacts, ...] = ()
    synack: PacketFacts | None = None
    baseline: PacketFacts | None = None
    after_reset: int = 0
    rtt: float | None = None  # SYN to SYN-ACK, to compare with the reset's delay
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class TraceHop:
    """What one TTL drew, for the control payload and for the trigger.

    ``*_answer``: "icmp" (time exceeded from a router), "server" (the far end
    answered: data or ACK of our payload), "reset", "dns" (a DNS answer),
    "none" (silence within the wait), "not sent" (this walk never reached
    the TTL: it stopped earlier, or the time budget ran out)."""

    ttl: int
    control_answer: str
    control_router: str | None  # the router that sent time exceeded (never the probe's own address)
    trigger_answer: str
    trigger_router: str | None


@dataclass(frozen=True, slots=True)
class RawTraceroute:
    """A CenTrace-style walk to one blocked endpoint address: control payload, then trigger."""

    kind: str  # "raw_traceroute"
    address: str
    port: int
    trigger: str  # "sni" | "host"
    name: str  # the blocked name the trigger carries
    control_name: str  # the harmless name the control payload carries
    hops: tuple[TraceHop, ...] = ()
    duration: float = 0.0
    stopped: str = ""  # "interference" | "reached the server" | "max hops" | "time budget"
    skipped: str | None = None  # "done within the last 24h", "not blocked", …
    failure: str | None = None
