"""The raw reset witness: every TCP packet of the probe's connections to one address.

A capture on ``tcp and host ADDRESS`` runs while the address's checks run
(one connect per address and port, its decoys and follow-ups). Afterwards
the packets are grouped per connection by its local port (which the trace
keeps in memory for each connect, and which never leaves memory), and each
connection of this attempt that the far end reset becomes a ``RawReset``:
its resets, its own SYN-ACK, and the race (far-end packets after the
reset), with the purpose of its connect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from probe.model import TraceEvent
from probe.model_packets import PacketFacts, RawReset
from probe.raw.capture import Capture, Packet
from probe.vocab import Operation

MAX_RESETS = 8  # connections reported per address: a censor resetting everything needs no more


@dataclass
class _Flow:
    port: int
    local: int
    theirs: list[Packet] = field(default_factory=list)  # from the far end
    mine: list[Packet] = field(default_factory=list)

    @property
    def began(self) -> float:
        return min(p.t for p in self.theirs + self.mine)


def _facts(p: Packet, since: float) -> PacketFacts:
    return PacketFacts(p.t - since, p.src, p.ttl, p.ip_id, p.df, p.flags, p.window, len(p.payload))


def _flows(address: str, ports: set[int], packets: Sequence[Packet]) -> list[_Flow]:
    """Direction by the server's port, not only the address: on loopback both ends share it."""
    flows: dict[tuple[int, int], _Flow] = {}
    for p in packets:
        if p.proto != "tcp":
            continue
        if p.src == address and p.sport in ports:
            flows.setdefault((p.sport, p.dport), _Flow(p.sport, p.dport)).theirs.append(p)
        elif p.dst == address and p.dport in ports:
            flows.setdefault((p.dport, p.sport), _Flow(p.dport, p.sport)).mine.append(p)
    return sorted(flows.values(), key=lambda f: f.began)


def _step(trigger: Packet | None, synack: Packet | None) -> str:
    if synack is None:
        return "connect"
    if trigger is None:
        return "tcp"  # reset on an established connection before anything was sent
    if trigger.payload[:1] == b"\x16":  # a TLS handshake record: the ClientHello
        return "tls"
    return "http"


def _reset(address: str, flow: _Flow, purpose: str, baseline: Packet | None) -> RawReset | None:
    theirs, mine = flow.theirs, flow.mine
    resets = [p for p in theirs if "R" in p.flags]
    if not resets:
        return None
    first = resets[0]
    syn = next((p for p in mine if "S" in p.flags), None)
    synack = next((p for p in theirs if "S" in p.flags and "A" in p.flags), None)
    trigger = next((p for p in reversed(mine) if p.payload and p.t <= first.t), None)
    since = trigger.t if trigger is not None else (syn.t if syn is not None else first.t)
    return RawReset(
        kind="raw_reset",
        address=address,
        port=flow.port,
        step=_step(trigger, synack),
        purpose=purpose,
        trigger_sent=trigger is not None,
        resets=tuple(_facts(p, since) for p in resets),
        synack=_facts(synack, since) if synack is not None else None,
        baseline=_facts(baseline, since) if synack is None and baseline is not None else None,
        after_reset=sum(1 for p in theirs if "R" not in p.flags and p.t > first.t),
        rtt=synack.t - syn.t if synack is not None and syn is not None else None,
    )


def resets_from(
    address: str, packets: Sequence[Packet], trace: Sequence[TraceEvent], local_ports: Mapping[int, int]
) -> list[RawReset]:
    """Each reset connection of this attempt to ``address``, with its connect's purpose.

    The capture also holds other endpoints' connections to the same address
    (a shared front end): only the local ports this attempt's connects bound
    are read."""
    connects = {
        local_ports[e.transaction]: e
        for e in trace
        if e.operation is Operation.CONNECT and e.address == address and e.transaction in local_ports
    }
    ports = {e.port for e in connects.values() if e.port is not None}
    flows = [f for f in _flows(address, ports, packets) if f.local in connects]
    synacks = [p for f in flows for p in f.theirs if p.flags == "SA"]
    baseline = synacks[0] if synacks else None
    out: list[RawReset] = []
    for flow in flows:
        reset = _reset(address, flow, connects[flow.local].purpose.value, baseline)
        if reset is not None and len(out) < MAX_RESETS:
            out.append(reset)
    return out


class AddressCapture:
    """The capture of one address's TCP flows for the length of its checks."""

    def __init__(self, address: str, capture: Capture) -> None:
        self.address = address
        self._capture = capture

    @classmethod
    async def start(cls, address: str) -> AddressCapture:
        return cls(address, await Capture.start(f"tcp and host {address}", toward=address))

    async def resets(self, trace: Sequence[TraceEvent], local_ports: Mapping[int, int]) -> list[RawReset]:
        return resets_from(self.address, await self._capture.stop(), trace, local_ports)

    def close(self) -> None:
        self._capture.close()
