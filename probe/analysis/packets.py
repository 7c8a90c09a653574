"""What packets prove: an injected DNS reply, a forged reset (pure functions).

A DNS reply is the injector's when its IP TTL differs by more than 1 from the
resolver's own (its reply for the canary name, the same path back), when a
second, different reply answers the same single transmission, or when it
comes from an address that runs no resolver (Hold-On's TTL test, OONI's
duplicate responses and legacy ``dns_injection``; controls-throttling.md D2).

A reset is forged when it does not look like the rest of the server's side
of the same connection (D3): an IP TTL more than 1 away from the SYN-ACK's,
several identical copies, a payload, or the server's own packets still
arriving after it (the race an out-of-band injector cannot win). An IP ID
outside the SYN-ACK's counter is listed beside those, never alone (some
stacks randomise it). The window is recorded, not judged: a genuine reset
carries 0 or the connection's current window, which the SYN-ACK's unscaled
one does not predict. A genuine reset from the server (a closed port, an
application abort) matches on every count and is not marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probe.analysis.censor_hop import CensorHop, censor_hop
from probe.model_packets import PacketFacts, RawDns, RawReset, RawTraceroute

TTL_SLACK = 1  # a path change or a load balancer moves the TTL by one, not more
IP_ID_SPAN = 2048  # a server's counter moves less than this within one connection


@dataclass(frozen=True, slots=True)
class Injection:
    kind: str  # "dns" | "reset"
    marks: tuple[str, ...]  # what gave it away: "ttl 200 vs 61", "2 replies to 1 transmission", …
    address: str  # the resolver or server whose answer was forged


def _ttl_mark(reply: PacketFacts, reference: PacketFacts) -> str | None:
    if abs(reply.ttl - reference.ttl) > TTL_SLACK:
        return f"ttl {reply.ttl} vs {reference.ttl}"
    return None


def dns_injection(raw: RawDns) -> Injection | None:
    if raw.failure is not None:
        return None
    marks: list[str] = []
    for address, replies in raw.silent:
        if replies:
            marks.append(f"{len(replies)} answer(s) from {address}, which runs no resolver")
    reference = raw.baseline[0] if raw.baseline else None
    if reference is not None:
        for reply in raw.replies:
            mark = _ttl_mark(reply, reference)
            if mark is not None:
                marks.append(f"reply {mark} (the resolver's own for {raw.canary})")
                break
    if len({(r.rcode, tuple(sorted(r.addresses))) for r in raw.replies}) > 1:
        marks.append(f"{len(raw.replies)} different replies to one transmission")
    return Injection("dns", tuple(marks), raw.address) if marks else None


def _ip_id_mark(rst: PacketFacts, reference: PacketFacts | None) -> str | None:
    """Only against a counter the server showed: Linux sends SYN-ACKs with IP ID 0."""
    if reference is None or reference.ip_id == 0:
        return None
    distance = (rst.ip_id - reference.ip_id) % 65536
    if distance > IP_ID_SPAN and (reference.ip_id - rst.ip_id) % 65536 > IP_ID_SPAN:
        return f"ip id {rst.ip_id} vs {reference.ip_id}"
    return None


def reset_injection(raw: RawReset) -> Injection | None:
    if raw.failure is not None or not raw.resets:
        return None
    rst = raw.resets[0]
    reference = raw.synack or raw.baseline
    marks: list[str] = []
    if reference is not None:
        mark = _ttl_mark(rst, reference)
        if mark is not None:
            marks.append(f"reset {mark} (the SYN-ACK's)")
    same = [r for r in raw.resets if (r.ttl, r.flags, r.window) == (rst.ttl, rst.flags, rst.window)]
    if len(same) > 1:
        marks.append(f"{len(same)} identical resets")
    if rst.payload:
        marks.append(f"reset carries {rst.payload} bytes")
    if raw.after_reset:
        marks.append(f"{raw.after_reset} packets from the server after the reset")
    # The IP ID only corroborates: a stack that randomises it (OpenBSD's) would
    # otherwise have every one of its genuine resets read as forged.
    id_mark = _ip_id_mark(rst, raw.synack)
    if marks and id_mark is not None:
        marks.append(id_mark)
    return Injection("reset", tuple(marks), raw.address) if marks else None


def injections(others: Sequence[object]) -> list[Injection]:
    """Every injection the packet observations of one attempt show."""
    found: list[Injection] = []
    for o in others:
        injection = (
            dns_injection(o)
            if isinstance(o, RawDns)
            else reset_injection(o)
            if isinstance(o, RawReset)
            else None
        )
        if injection is not None:
            found.append(injection)
    return found


@dataclass(frozen=True, slots=True)
class PacketSummary:
    """One attempt's packet evidence as exports read it."""

    checked: frozenset[str]  # kinds ("dns", "reset") a raw check ran for (without failing)
    injected: frozenset[str]  # kinds it showed injected
    traced: bool  # a censor traceroute ran (not skipped, not failed)
    hop: CensorHop | None


def summary(others: Sequence[object]) -> PacketSummary:
    checked = {"dns" for o in others if isinstance(o, RawDns) and o.failure is None}
    checked |= {"reset" for o in others if isinstance(o, RawReset) and o.failure is None}
    traces = [o for o in others if isinstance(o, RawTraceroute) and o.failure is None and o.skipped is None]
    hop = next((h for t in traces if (h := censor_hop(t)) is not None), None)
    return PacketSummary(frozenset(checked), frozenset(i.kind for i in injections(others)), bool(traces), hop)
