"""A capture of the probe's own flows: an AF_PACKET socket with a BPF filter, read by a thread.

The filter names the far end (and, where the flow's local port is known, the
port too), so the kernel hands this process the packets of the flows it
measures and nothing else of the volunteer's traffic. It is compiled by
libpcap through scapy and attached before the socket is bound: no packet is
ever received unfiltered (scapy's own sniffers warn and capture everything
when the filter cannot be compiled; this raises instead).

Frames are read with their kernel timestamps by a daemon thread and parsed
with scapy only when asked for, in a worker thread: the event loop never
runs scapy. Captures are bounded in frames and bytes per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import select
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35  # Linux: SCM_TIMESTAMPNS carries a struct timespec
SNAPLEN = 2048  # headers, a DNS answer, the start of a TCP payload: nothing more is kept
MAX_FRAMES = 2000  # a flood on the flow must not grow the probe without bound
_ANC = socket.CMSG_SPACE(16)
_ETHERNET_LIKE = (1, 772)  # ARPHRD_ETHER, ARPHRD_LOOPBACK: frames start with an Ethernet header
POLL = 0.05  # s the reader waits in select before looking at the stop flag


@dataclass(frozen=True, slots=True)
class Quoted:
    """The header an ICMP error quotes: which of our packets it is about."""

    src: str
    dst: str
    proto: int
    sport: int
    dport: int


@dataclass(frozen=True, slots=True)
class Packet:
    """One parsed packet, in memory only: ``src``/``dst`` include the probe's own address."""

    t: float  # kernel receive time (wall clock, seconds)
    outgoing: bool
    src: str
    dst: str
    proto: str  # "tcp" | "udp" | "icmp" | "other"
    ttl: int
    ip_id: int
    df: bool
    sport: int = 0
    dport: int = 0
    flags: str = ""
    window: int = 0
    seq: int = 0
    ack: int = 0
    payload: bytes = b""
    icmp_type: int | None = None
    icmp_code: int | None = None
    quoted: Quoted | None = None


@dataclass(frozen=True, slots=True)
class _Frame:
    t: float
    outgoing: bool
    data: bytes


def interface_toward(address: str) -> str:
    """The interface the kernel routes ``address`` out of (blocking: call it in a thread)."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return "lo"
    # Importing scapy.route(6) is what builds conf.route(6); a resync reads the
    # table again (the volunteer's DHCP may have changed it since).
    import scapy.route
    import scapy.route6  # noqa: F401
    from scapy.config import conf

    table = conf.route if ip.version == 4 else conf.route6
    table.resync()
    iface = table.route(address)[0]
    return str(iface)


def _open(bpf: str, iface: str) -> tuple[socket.socket, int]:
    from scapy.arch.linux import attach_filter

    # Protocol 0 receives nothing until bind: the filter is in place before the first packet.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        attach_filter(sock, bpf, iface)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((iface, ETH_P_ALL))
        hatype = sock.getsockname()[3]
    except BaseException:
        sock.close()
        raise
    return sock, hatype


class Capture:
    """Start with ``await Capture.start(bpf, toward=address)``; ``poll`` and ``stop`` parse."""

    def __init__(self, sock: socket.socket, hatype: int, iface: str) -> None:
        self._sock = sock
        self._hatype = hatype
        self._loopback = iface == "lo"
        self._frames: list[_Frame] = []
        self._taken = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # A byte on this pair wakes the reader out of select at once: stopping
        # a capture never waits out a poll interval (nor holds a worker thread).
        self._wake, self._waker = socket.socketpair()
        self.dropped = 0  # frames beyond MAX_FRAMES
        self._thread = threading.Thread(target=self._read, name="msgprobe capture", daemon=True)
        self._thread.start()

    @classmethod
    async def start(cls, bpf: str, *, toward: str) -> Capture:
        def opened() -> Capture:
            iface = interface_toward(toward)
            sock, hatype = _open(bpf, iface)
            return cls(sock, hatype, iface)

        return await asyncio.to_thread(opened)

    def _read(self) -> None:
        sock = self._sock
        while True:
            stopping = self._stop.is_set()
            try:
                # Once stopping, only what the kernel already queued: a reset that
                # ended the step microseconds ago is in the queue and must be read.
                ready, _, _ = select.select([sock, self._wake], [], [], 0.0 if stopping else POLL)
                if sock not in ready:
                    if stopping:
                        return
                    continue
                data, ancillary, _, address = sock.recvmsg(SNAPLEN, _ANC)
            except (OSError, ValueError):  # closed under us by close()
                return
            outgoing = address[2] == socket.PACKET_OUTGOING
            if outgoing and self._loopback:
                continue  # loopback shows every packet twice: keep the copy that arrives
            t = _timestamp(ancillary)
            with self._lock:
                if len(self._frames) >= MAX_FRAMES:
                    self.dropped += 1
                    continue
                self._frames.append(_Frame(t, outgoing, data))

    def _new_frames(self) -> list[_Frame]:
        with self._lock:
            frames = self._frames[self._taken :]
            self._taken = len(self._frames)
        return frames

    async def poll(self) -> list[Packet]:
        """Packets captured since the last poll, parsed in a worker thread."""
        frames = self._new_frames()
        if not frames:
            return []
        return await asyncio.to_thread(parse_frames, frames, self._hatype)

    async def stop(self, linger: float = 0.0) -> list[Packet]:
        """Wait ``linger`` seconds for stragglers, stop, and parse what ``poll`` has not returned."""
        if linger > 0:
            await asyncio.sleep(linger)
        self._signal_stop()
        await asyncio.to_thread(self._thread.join, 2 * POLL + 1.0)
        self._close_sockets()
        return await asyncio.to_thread(parse_frames, self._new_frames(), self._hatype)

    def close(self) -> None:
        """Stop without parsing (a cancelled step): never leaves a thread or a socket behind."""
        self._signal_stop()
        self._close_sockets()

    def _signal_stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._waker.send(b"x")

    def _close_sockets(self) -> None:
        for sock in (self._sock, self._wake, self._waker):
            with contextlib.suppress(OSError):
                sock.close()


def _timestamp(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return float(seconds + nanoseconds / 1e9)
    import time

    return time.time()


def parse_frames(frames: list[_Frame], hatype: int) -> list[Packet]:
    """scapy's dissection of each frame, reduced to plain facts; an unparsable frame is skipped."""
    return list(_parse_all(frames, hatype))


def _parse_all(frames: list[_Frame], hatype: int) -> Iterator[Packet]:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    for frame in frames:
        try:
            if hatype in _ETHERNET_LIKE:
                layer = Ether(frame.data).payload
            else:
                layer = (IPv6 if frame.data[:1] and frame.data[0] >> 4 == 6 else IP)(frame.data)
            packet = _facts(layer, frame)
        except Exception:  # a censor's malformed packet is noise to skip, never a crash
            continue
        if packet is not None:
            yield packet


def _facts(layer: object, frame: _Frame) -> Packet | None:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    if isinstance(layer, IP):
        ttl, ip_id, df = int(layer.ttl), int(layer.id), bool(int(layer.flags) & 0x2)
    elif isinstance(layer, IPv6):
        ttl, ip_id, df = int(layer.hlim), 0, True
    else:
        return None
    src, dst = str(layer.src), str(layer.dst)
    inner = layer.payload
    common = (frame.t, frame.outgoing, src, dst)
    if isinstance(inner, TCP):
        return Packet(
            *common,
            "tcp",
            ttl,
            ip_id,
            df,
            sport=int(inner.sport),
            dport=int(inner.dport),
            flags=str(inner.flags),
            window=int(inner.window),
            seq=int(inner.seq),
            ack=int(inner.ack),
            payload=bytes(inner.payload),
        )
    if isinstance(inner, UDP):
        return Packet(
            *common, "udp", ttl, ip_id, df, sport=int(inner.sport), dport=int(inner.dport),
            payload=bytes(inner.payload),
        )  # fmt: skip
    if isinstance(inner, ICMP):
        return Packet(
            *common, "icmp", ttl, ip_id, df, icmp_type=int(inner.type), icmp_code=int(inner.code),
            quoted=_quoted(inner.payload),
        )  # fmt: skip
    return Packet(*common, "other", ttl, ip_id, df)


def _quoted(error: object) -> Quoted | None:
    """The IP header and first 8 bytes an ICMP error carries, when it carries them."""
    from scapy.layers.inet import IPerror, TCPerror, UDPerror

    if not isinstance(error, IPerror):
        return None
    inner = error.payload
    ports = (int(inner.sport), int(inner.dport)) if isinstance(inner, TCPerror | UDPerror) else (0, 0)
    return Quoted(str(error.src), str(error.dst), int(error.proto), *ports)
