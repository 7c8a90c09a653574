"""The censor traceroute (CenTrace-style): the trigger sent with increasing IP TTL.

A name-based censor acts on one packet: the ClientHello with the blocked
SNI, or the request with the blocked Host. Sent with TTL i, that packet
expires at router i (which answers ICMP time exceeded) unless a box at or
before hop i acts on it first: the first TTL where the trigger draws a
reset, silence, or a "server" answer that the harmless control payload did
not draw at the same TTL is where the censor sits.

How one TTL is probed, and why:

- The 5-tuple is fixed for the whole walk. CenTrace uses port + TTL, which
  changes the ECMP flow hash with every TTL, and ECMP changes censorship
  outcomes for about half of the ASes measured (controls-throttling.md D1):
  with one local port every probe follows one path.
- Each TTL gets its own kernel TCP connection from that port (bound with
  SO_REUSEADDR before connect, full TTL): a censor that only inspects
  established flows sees a genuine handshake.
- The payload is not written to the kernel socket but sent once as a
  crafted PSH/ACK (seq/ack learned from the captured SYN-ACK) through a raw
  socket, so the kernel never retransmits it: exactly ``per_hop`` trigger
  packets per TTL, each with ``IP(ttl=i)``.
- The connection is then aborted with SO_LINGER 0 (a reset, no TIME_WAIT),
  after a crafted reset at the sequence number past the payload: whether
  the payload reached the server or not, one of the two matches its
  receive sequence exactly, so the server's side closes too and the port
  is reusable at once.

The control walk runs first (TTL 1.. until the far end answers) so that no
trigger has put the 5-tuple under residual blocking before the control
ran; the trigger walk then goes no further than the control's server hop.
Answers are read from a capture filtered to this flow and to ICMP time
exceeded quoting it. The probe's own address is never recorded.

IPv4 only: an IPv6 address returns a ``RawTraceroute`` with
``failure="traceroute is IPv4 only"`` (crafting and quoting differ, and the
paths measured so far are IPv4).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass, field, replace

from probe.config.model import Raw
from probe.model_packets import RawTraceroute, TraceHop
from probe.raw.capture import Capture
from probe.raw.trace_probe import Flow, Prober, bound_socket, bpf
from probe.raw.triggers import client_hello, http_request

IPV4_ONLY = "traceroute is IPv4 only"
NOT_SENT = "not sent"  # a TTL one walk never reached (it stopped, or the budget ran out)


@dataclass
class _Walk:
    """What both walks recorded so far: kept outside the budget's timeout so a cut walk keeps it."""

    control: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    trigger: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    stopped: str = ""

    def hops(self) -> tuple[TraceHop, ...]:
        ttls = sorted(set(self.control) | set(self.trigger))
        out = []
        for ttl in ttls:
            c_answer, c_router = self.control.get(ttl, (NOT_SENT, None))
            t_answer, t_router = self.trigger.get(ttl, (NOT_SENT, None))
            out.append(TraceHop(ttl, c_answer, c_router, t_answer, t_router))
        return tuple(out)


async def _walk_one(
    prober: Prober, first: socket.socket | None, payload: bytes, copies: int, limit: int, pace: float,
    record: dict[int, tuple[str, str | None]], control: dict[int, tuple[str, str | None]] | None,
) -> str:  # fmt: skip
    """TTL 1.. ``limit``; the reason it stopped. ``control`` (for the trigger walk): the control's answers."""
    for ttl in range(1, limit + 1):
        if ttl > 1:
            await asyncio.sleep(pace)
        sock, first = first, None
        answer, router = await prober.probe(sock, ttl, payload, copies)
        record[ttl] = (answer, router)
        if control is None:
            if answer in ("server", "reset"):
                return "reached the server"
            continue
        theirs = control.get(ttl, (NOT_SENT, None))[0]
        if answer == "reset":
            return "reached the server" if theirs == "reset" else "interference"
        if answer == "server":
            return "reached the server" if theirs == "server" else "interference"
        before = record.get(ttl - 1, (NOT_SENT, None))[0]
        answered = control.get(ttl - 1, (NOT_SENT, None))[0] not in ("none", NOT_SENT)
        if answer == before == "none" and answered and theirs not in ("none", NOT_SENT):
            return "interference"  # silence at two TTLs that answered the control: a drop
    return "max hops"


def _prepare(address: str) -> str:
    """The address the kernel sends to ``address`` from (a UDP connect sends nothing);
    blocking, so it runs in a worker thread."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((address, 9))
        return str(probe.getsockname()[0])
    finally:
        probe.close()


async def traceroute(
    address: str, port: int, *, trigger: str, name: str, control_name: str, raw: Raw, connect_timeout: float
) -> RawTraceroute:
    """The control walk, then the trigger walk, to ``address:port``; IPv4 only.

    ``trigger`` "sni" sends a ClientHello (SNI ``name``, the control
    ``control_name``), "host" a ``GET /`` with that Host. Bounded by
    ``raw.max_hops``, ``raw.per_hop`` trigger packets per TTL, ``raw.pace``
    s between TTLs and ``raw.trace_budget`` s in all (``stopped`` "time
    budget"). Needs NET_RAW; cancellation closes every socket and the capture."""
    base = RawTraceroute("raw_traceroute", address, port, trigger, name, control_name)
    if ipaddress.ip_address(address).version != 4:
        return replace(base, failure=IPV4_ONLY)
    make = client_hello if trigger == "sni" else http_request
    control_payload, trigger_payload = make(control_name), make(name)
    started = time.monotonic()
    walk = _Walk()
    bound = bound_socket(0)
    local = bound.getsockname()[1]  # the walk's one local port, chosen by the kernel
    first: socket.socket | None = bound
    capture: Capture | None = None
    raw_sock: socket.socket | None = None
    try:
        flow = Flow(await asyncio.to_thread(_prepare, address), local, address, port)
        capture = await Capture.start(bpf(flow), toward=address)
        raw_sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        prober = Prober(flow, capture, raw_sock, raw.hop_wait, connect_timeout)
        try:
            async with asyncio.timeout(raw.trace_budget):
                walk.stopped = await _walk_one(
                    prober, first, control_payload, 1, raw.max_hops, raw.pace, walk.control, None
                )
                first = None
                limit = max(walk.control) if walk.stopped == "reached the server" else raw.max_hops
                await asyncio.sleep(raw.pace)
                walk.stopped = await _walk_one(
                    prober,
                    None,
                    trigger_payload,
                    max(raw.per_hop, 1),
                    limit,
                    raw.pace,
                    walk.trigger,
                    walk.control,
                )
        except TimeoutError:
            walk.stopped = "time budget"
    finally:
        if first is not None:
            first.close()
        if raw_sock is not None:
            raw_sock.close()
        if capture is not None:
            capture.close()  # no await: a cancelled walk must not wait on anything
    return replace(base, hops=walk.hops(), duration=time.monotonic() - started, stopped=walk.stopped)
