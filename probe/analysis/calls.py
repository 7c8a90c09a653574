"""Call reachability (``stun:``): is UDP to a messenger's call relay blocked?

The relay's silence alone proves nothing: a vantage may have no UDP at all,
a relay may be down. The witness is a neutral STUN server asked the same
Binding Request in the same attempt: relay silent while a neutral server
answers is ``udp.blocked``; both silent is ``unreachable`` (UDP may be
blocked everywhere here); no neutral server configured is ``unreachable``.

A random payload of the same size to the relay tells the two kinds of
block apart, in the evidence only: an answer or an ICMP error to it while
STUN gets silence means UDP gets through and STUN is dropped by its
signature; silence to both means UDP to the relay is dropped.

ICMP port unreachable from the relay is ``unreachable`` with
``port_unreachable``: nothing listens there, or a censor forged it, and
nothing here tells which.

With ``calls.flow``, a relay that answers the first requests of a paced
flow and then nothing for good (the ~25-packet cut-off of the RU filters)
is ``udp.blocked`` when a neutral server carried the same flow to its end;
cut off at both, ``unreachable``.

A control peer that measured the same relay sharpens both sides: if the
relay answered there, that is a second witness to the block; if it was
silent at every peer that measured it, the relay does not answer plain
STUN from anywhere (a catalog relay that needs the app's own handshake, or
one that is down) and the verdict is ``down``, never a block.

Pure: observations in, findings out. The predicates deciding which
follow-up runs live here too, so measure and analysis never drift.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.analysis.controls import seen as peers_seen
from probe.control.api import Answer
from probe.model import StunObservation, UdpExchange, UdpFlow, Verdict, Witness
from probe.vocab import Failure, Method, Status

# A flow is cut off when, after its last answer, at least this many requests
# (and at least a fifth of the flow) went unanswered, and the part before it
# was mostly answered: a policer drops a share, a cut-off drops everything after.
CUT_OFF_TAIL = 10
CUT_OFF_TAIL_SHARE = 0.2
CUT_OFF_BEFORE_SHARE = 0.5


# Failures that are facts about this vantage or an ICMP answer, not silence: no
# witness can turn them into a block (no route to an IPv6 relay is no censor).
_NOT_SILENCE = frozenset({Failure.PORT_UNREACHABLE, Failure.NETWORK_UNREACHABLE, Failure.HOST_UNREACHABLE})


def needs_follow_up(relay: UdpExchange) -> bool:
    """No STUN answer from the relay: ask the neutral servers, send the random payload."""
    return not relay.answered and relay.failure not in _NOT_SILENCE


def _family(address: str) -> int:
    return 6 if ":" in address else 4


def needs_flow(relay: UdpExchange, enabled: bool) -> bool:
    """A paced flow only where a call could start: the relay answered the first request."""
    return enabled and relay.answered


def cut_off(flow: UdpFlow) -> bool:
    if flow.failure is not None or flow.answered == 0:
        return False
    tail = flow.sent - flow.last_answered
    return (
        tail >= max(CUT_OFF_TAIL, CUT_OFF_TAIL_SHARE * flow.sent)
        and flow.answered >= CUT_OFF_BEFORE_SHARE * flow.last_answered
    )


def _ms(seconds: float | None) -> str:
    return f"{(seconds or 0.0) * 1000:.0f} ms"


def _server(x: UdpExchange | UdpFlow) -> str:
    label = f"{x.address}:{x.port}"
    return f"{x.host} ({label})" if x.host and x.host != x.address else label


def _random_note(random: UdpExchange | None) -> str:
    if random is None:
        return ""
    if random.answered:
        return "; a random payload of the same size was answered: STUN is filtered by its signature"
    if random.failure is Failure.PORT_UNREACHABLE:
        return (
            "; a random payload of the same size got ICMP port unreachable: "
            "UDP reaches the relay, STUN is filtered by its signature"
        )
    return "; a random payload of the same size got no answer either"


def _silence(relay: UdpExchange) -> str:
    seen = f" (ignored: {', '.join(relay.ignored)})" if relay.ignored else ""
    return f"no STUN answer from relay {_server(relay)} after {relay.tries} tries{seen}"


def _peers(o: StunObservation, controls: Sequence[Answer]) -> tuple[list[str], list[str]]:
    """Peers that measured this relay address and port: those it answered, and those it did not."""
    answered, silent = [], []
    for peer, summary in peers_seen(controls):
        outcomes = [u for u in summary.stun if u.address == o.address and u.port == o.port]
        if any(u.answered for u in outcomes):
            answered.append(peer)
        elif outcomes:
            silent.append(peer)
    return answered, silent


def relay_verdict(o: StunObservation, controls: Sequence[Answer] = ()) -> Verdict | None:
    """One address's verdict, or None when its relay answered (and no flow was cut off)."""
    relay = o.relay
    where = o.address
    if relay.failure is Failure.PORT_UNREACHABLE:
        return Verdict(
            Status.UNREACHABLE,
            None,
            Failure.PORT_UNREACHABLE.value,
            f"ICMP port unreachable from relay {_server(relay)} to a STUN Binding Request",
            address=where,
        )
    if relay.failure in _NOT_SILENCE:
        failure = relay.failure.value if relay.failure else None
        return Verdict(Status.UNREACHABLE, None, failure, f"relay {_server(relay)}: {failure}", address=where)
    if not relay.answered:
        return _silent_relay(o, relay, controls)
    if o.flow is not None and cut_off(o.flow):
        return _cut_off(o, o.flow)
    return None


def _silent_relay(o: StunObservation, relay: UdpExchange, controls: Sequence[Answer]) -> Verdict:
    failure = relay.failure.value if relay.failure else None
    silence = _silence(relay)
    at_peer, silent_at_peer = _peers(o, controls)
    if silent_at_peer and not at_peer:
        return Verdict(
            Status.DOWN,
            None,
            failure,
            f"{silence}; silent at control peer {', '.join(silent_at_peer)} too: "
            "the relay does not answer a plain Binding Request from anywhere",
            address=o.address,
        )
    # A neutral server proves UDP works only in the relay's own address family.
    answered = [n for n in o.neutral if n.answered and _family(n.address) == _family(o.address)]
    if answered:
        first = min(answered, key=lambda n: n.rtt or 0.0)
        seen = f"neutral STUN server {_server(first)} answered in {_ms(first.rtt)}"
        witnesses: tuple[Witness, ...] = (Witness("control", seen),)
        if at_peer:
            peer_saw = f"control peer {', '.join(at_peer)} got a STUN answer from the relay"
            witnesses += (Witness("control", peer_saw),)
            seen = f"{seen}; {peer_saw}"
        return Verdict(
            Status.BLOCKED,
            Method.UDP_BLOCKED,
            failure,
            f"{silence}; {seen}{_random_note(o.random)}",
            address=o.address,
            witnesses=witnesses,
        )
    if not (o.neutral or o.neutral_unresolved):
        why = "no neutral STUN server is configured (calls.stun_controls) to tell a block from an outage"
    elif not o.neutral:
        why = f"no neutral STUN server resolved here ({', '.join(o.neutral_unresolved)})"
    elif any(n.answered for n in o.neutral):
        why = f"no neutral STUN server of the relay's address family (IPv{_family(o.address)}) answered"
    else:
        why = "no neutral STUN server answered either (UDP may be blocked everywhere here, or absent)"
    return Verdict(Status.UNREACHABLE, None, failure, f"{silence}; {why}", address=o.address)


def _cut_off(o: StunObservation, flow: UdpFlow) -> Verdict:
    seen = (
        f"paced STUN flow to relay {_server(flow)}: {flow.answered} of the first {flow.last_answered} "
        f"requests answered, then none of the last {flow.sent - flow.last_answered}"
    )
    neutral = o.neutral_flow
    same_family = neutral is not None and _family(neutral.address) == _family(o.address)
    if neutral is not None and same_family and neutral.answered and not cut_off(neutral):
        carried = (
            f"neutral STUN server {_server(neutral)} answered {neutral.answered} of {neutral.sent} to the end"
        )
        return Verdict(
            Status.BLOCKED,
            Method.UDP_BLOCKED,
            Failure.TIMEOUT.value,
            f"{seen}; {carried}",
            address=o.address,
            witnesses=(Witness("control", carried),),
        )
    why = "the neutral server's flow was cut off too" if neutral is not None else "no neutral flow to compare"
    return Verdict(Status.UNREACHABLE, None, Failure.TIMEOUT.value, f"{seen}; {why}", address=o.address)


def calls_verdicts(observations: Sequence[StunObservation], controls: Sequence[Answer] = ()) -> list[Verdict]:
    """Every address's non-ok verdict. An address whose relay answered makes
    the others' failures no finding (their rows still show them): a call
    goes to whichever relay answers. Blocks are kept (a partial block)."""
    verdicts = [v for o in observations if (v := relay_verdict(o, controls)) is not None]
    if any(o.relay.answered for o in observations):
        verdicts = [v for v in verdicts if v.status is Status.BLOCKED]
    return verdicts
