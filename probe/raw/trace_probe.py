"""One TTL of the censor traceroute, on the walk's fixed 5-tuple (``probe.raw.traceroute``).

A fresh kernel connection from the walk's one local port (full TTL
handshake), then the payload as one crafted PSH/ACK with ``IP(ttl=i)``
through a raw socket (never retransmitted), then what it drew from the
capture: a router's time exceeded quoting this flow, the far end's reset or
its ACK of the payload, or silence. The connection is aborted after a
crafted reset past the payload, so the far end's side closes whatever the
censor did, and the port is reusable at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import struct
import time
from dataclasses import dataclass

from probe.raw.capture import Capture, Packet

SYNACK_WAIT = 1.0  # s for the capture to show the SYN-ACK the kernel already accepted
POLL = 0.01  # s between looks at the capture while a TTL's answer is awaited
ICMP_GRACE = 0.02  # s at least, after time exceeded, for a reset from an on-path box at that hop
WINDOW = 1024  # the crafted segment's window (scaled by the handshake's window scale)


@dataclass(frozen=True, slots=True)
class Flow:
    """The fixed 5-tuple (``src`` is the probe's own address: memory only, never recorded)."""

    src: str
    local: int
    address: str
    port: int


def bpf(flow: Flow) -> str:
    """This flow's packets from the far end, and time exceeded quoting a TCP packet of it.

    The ICMP part reads the quoted header at fixed offsets (ICMP header 8
    bytes, then the IP header we crafted, 20 bytes: no options): protocol at
    17, destination at 24, ports at 28 and 30."""
    dst = int(ipaddress.IPv4Address(flow.address))
    return (
        f"(tcp and src host {flow.address} and src port {flow.port} and dst port {flow.local})"
        f" or (icmp and icmp[0] == 11 and icmp[17] == 6 and icmp[24:4] == {dst:#x}"
        f" and icmp[28:2] == {flow.local} and icmp[30:2] == {flow.port})"
    )


def _send(raw_sock: socket.socket, flow: Flow, ttl: int, flags: str, seq: int, ack: int, payload: bytes,
          copies: int = 1) -> float:  # fmt: skip
    """Craft one segment with scapy and send it ``copies`` times (blocking: a worker thread only);
    the wall time (the capture's clock) it first left."""
    from scapy.layers.inet import IP, TCP

    ip_id = random.randrange(1, 65536)  # scapy's fixed default (1) would mark every probe
    packet = IP(src=flow.src, dst=flow.address, ttl=ttl, id=ip_id, flags="DF") / TCP(
        sport=flow.local, dport=flow.port, flags=flags, seq=seq, ack=ack, window=WINDOW
    )
    data = bytes(packet / payload if payload else packet)
    sent = time.time()
    for _ in range(copies):
        raw_sock.sendto(data, (flow.address, 0))
    return sent


def bound_socket(local: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Abort, never close: the reset frees the 5-tuple for the next TTL at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.bind(("0.0.0.0", local))
    except BaseException:
        sock.close()
        raise
    return sock


class Prober:
    """One TTL at a time on the fixed 5-tuple, with the walk's capture and raw socket."""

    def __init__(
        self, flow: Flow, capture: Capture, raw_sock: socket.socket, hop_wait: float, connect_timeout: float
    ) -> None:
        self.flow = flow
        self.capture = capture
        self.raw_sock = raw_sock
        self.hop_wait = hop_wait
        self.connect_timeout = connect_timeout

    async def probe(
        self, sock: socket.socket | None, ttl: int, payload: bytes, copies: int
    ) -> tuple[str, str | None]:
        """(answer, router) for ``payload`` sent ``copies`` times with ``ttl`` on a fresh connection."""
        flow = self.flow
        if sock is None:
            sock = bound_socket(flow.local)
        try:
            began = time.time()  # the capture's clock: what came before is the last TTL's
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await asyncio.get_running_loop().sock_connect(sock, (flow.address, flow.port))
            except ConnectionRefusedError:
                return "reset", None  # the far end (or a box for it) refuses the 5-tuple outright
            except (TimeoutError, OSError):
                return "none", None
            synack = await self._synack(began)
            if synack is None:
                return "none", None
            seq, ack = synack.ack, (synack.seq + 1) % 2**32
            sent = await asyncio.to_thread(_send, self.raw_sock, flow, ttl, "PA", seq, ack, payload, copies)
            past = (seq + len(payload)) % 2**32
            answer = await self._answer(sent, past)
            # Full TTL: the reset must reach the server whatever the censor did to the payload.
            await asyncio.to_thread(_send, self.raw_sock, flow, 64, "R", past, 0, b"")
            return answer
        finally:
            sock.close()  # SO_LINGER 0: the kernel's own reset, no TIME_WAIT

    async def _synack(self, began: float) -> Packet | None:
        deadline = time.monotonic() + SYNACK_WAIT
        while True:
            for p in await self.capture.poll():
                if p.proto == "tcp" and not p.outgoing and p.flags == "SA" and p.t >= began:
                    return p
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(POLL)

    async def _answer(self, sent: float, covered: int) -> tuple[str, str | None]:
        """Read the capture until the far end answers, or ``hop_wait`` passes.

        A time exceeded ends the wait shortly after it came (once as long
        again as it took, at least ICMP_GRACE): an on-path box at that hop
        would reset about as fast, and waiting the full ``hop_wait`` at
        every router would multiply the walk's time and the trigger's
        exposure for nothing."""
        flow = self.flow
        end = time.monotonic() + self.hop_wait
        expired = False
        router: str | None = None
        server = False
        while True:
            for p in await self.capture.poll():
                if p.outgoing or p.t < sent:
                    continue
                if p.proto == "icmp" and p.icmp_type == 11 and _quotes(p, flow):
                    if not expired:
                        expired = True
                        router = None if near(p.src, flow.src) else p.src
                        delay = max(p.t - sent, ICMP_GRACE)
                        end = min(end, time.monotonic() + delay)
                elif p.proto == "tcp" and p.src == flow.address:
                    if "R" in p.flags:
                        return "reset", router
                    if "A" in p.flags and _covers(p.ack, covered):
                        server = True
            if server:
                return "server", router
            if time.monotonic() >= end:
                return ("icmp" if expired else "none"), router
            await asyncio.sleep(POLL)


def near(router: str, own: str) -> bool:
    """A router in the probe's own /24 (/64), or the probe itself: its address would
    narrow down the volunteer's, so it is recorded as a hop without an address."""
    try:
        a, b = ipaddress.ip_address(router), ipaddress.ip_address(own)
    except ValueError:
        return True  # not comparable: say nothing rather than too much
    if a.version != b.version:
        return True
    prefix = 24 if a.version == 4 else 64
    return ipaddress.ip_network(f"{a}/{prefix}", strict=False) == ipaddress.ip_network(
        f"{b}/{prefix}", strict=False
    )


def _quotes(p: Packet, flow: Flow) -> bool:
    q = p.quoted
    mine = (flow.src, flow.address, flow.local, flow.port)
    return q is not None and q.proto == 6 and (q.src, q.dst, q.sport, q.dport) == mine


def _covers(ack: int, covered: int) -> bool:
    """``ack`` is at or past ``covered`` in sequence space (mod 2**32)."""
    return (ack - covered) % 2**32 < 2**31
