"""``tcp.freeze``: an established connection that stops carrying bytes after
a few KB, with no reset, while a witness carries the same transfer.

The signature (controls-throttling.md B5): the Russian "TCP 16-20" / "l4-25"
filter lets a flow to foreign hosting carry ~14–34 KB (~25 packets, both
directions counted), then drops everything silently. What the probe counts
is application bytes, which is not what the filter counts: the TLS
handshake (3–6 KB of certificates) and every TCP/IP header are on the
filter's count and not ours, and the request written when the flow froze
is on ours (the kernel took it) though it never arrived. So the window is
wider than the reports: the bytes of both directions together at least
``FREEZE_FROM`` (a cut at 14 KB on the wire, minus a handshake and the
headers), and neither direction beyond ``FREEZE_TO`` (34 KB plus one
request). A stall below the window (after the first request, say) is
reported with its numbers but is not the freeze signature: a server that
never answers looks the same.

Witnesses, as DESIGN.md asks for ``blocked``:

* a control peer that ran the same transfer to the same address and port
  and carried it past the window;
* a domestic canary (``Config.canaries``) that carried it past the window
  from this vantage: the path carries long transfers, just not to this
  service.

A canary that froze too means the vantage's path freezes long transfers
(mobile data, or an IP-class rule hitting the canary as well): then it is
not this service's block, and the verdict says so.

Pure: observations in, findings out.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.analysis.controls import seen
from probe.control.api import Answer
from probe.model import Finding, TransferObservation, Verdict, Witness
from probe.vocab import CheckKind, Method, Purpose, Status, failure_string

FREEZE_FROM = 8_192  # bytes, both directions together
FREEZE_TO = 36_864  # bytes, either direction


def in_window(sent: int, received: int) -> bool:
    return sent + received >= FREEZE_FROM and max(sent, received) <= FREEZE_TO


def freeze_signature(o: TransferObservation) -> bool:
    """Stalled, no reset or EOF, inside the window: what the filter does."""
    return o.stalled and in_window(o.sent, o.received)


def carried(sent: int, received: int, failure: str | None, stalled: bool) -> bool:
    """A transfer that got past every point where the freeze cuts."""
    return failure is None and not stalled and max(sent, received) > FREEZE_TO


def needs_canary_transfer(o: TransferObservation) -> bool:
    """The check's transfer froze: does the vantage carry the same transfer elsewhere?"""
    return o.purpose is Purpose.CHECK and freeze_signature(o)


def _where(o: TransferObservation) -> str:
    return f"freeze {o.address}:{o.port}"


def _control_witnesses(o: TransferObservation, answers: Sequence[Answer]) -> tuple[list[Witness], bool]:
    """Peers that carried the transfer to the same address and port; and whether one stalled too."""
    witnesses, stalled = [], False
    for peer, summary in seen(answers):
        for t in summary.transfer:
            if (t.address, t.port) != (o.address, o.port):
                continue
            if carried(t.sent, t.received, t.failure, t.stalled):
                witnesses.append(
                    Witness(
                        "control",
                        f"control peer {peer} carried {t.received} bytes received ({t.sent} sent)"
                        f" from {o.address}:{o.port}",
                    )
                )
                break
            stalled = stalled or t.stalled
    return witnesses, stalled


def _canaries(others: Sequence[TransferObservation]) -> tuple[list[Witness], list[TransferObservation]]:
    ok, frozen = [], []
    for c in others:
        if c.purpose is not Purpose.CANARY:
            continue
        if carried(c.sent, c.received, failure_string(c.failure, c.error), c.stalled):
            ok.append(
                Witness(
                    "canary",
                    f"canary {c.host} carried {c.received} bytes received ({c.sent} sent) from here",
                )
            )
        elif freeze_signature(c):
            frozen.append(c)
    return ok, frozen


def _stalled(
    o: TransferObservation, others: Sequence[TransferObservation], answers: Sequence[Answer]
) -> Verdict:
    failure = failure_string(o.failure, o.error)
    numbers = f"stalled after {o.received} bytes received ({o.sent} sent)"
    head = f"{_where(o)}: {numbers}, no reset"
    if not in_window(o.sent, o.received):
        evidence = (
            f"{head}; outside the freeze window ({FREEZE_FROM}–{FREEZE_TO} bytes): not the freeze signature"
        )
        return Verdict(Status.UNREACHABLE, None, failure, evidence, address=o.address)
    canary_ok, canary_frozen = _canaries(others)
    if canary_frozen:
        c = canary_frozen[0]
        evidence = (
            f"{head}; canary {c.host} froze too (after {c.received} bytes received, {c.sent} sent):"
            " this vantage's path freezes long transfers (an IP-class or network-wide freeze),"
            " not this service alone"
        )
        return Verdict(Status.UNREACHABLE, None, failure, evidence, address=o.address)
    controls, control_stalled = _control_witnesses(o, answers)
    witnesses = controls + canary_ok
    if not witnesses:
        note = "; the control peer stalled too" if control_stalled else ""
        return Verdict(Status.UNREACHABLE, None, failure, f"{head}{note}", address=o.address)
    evidence = f"{head}; " + "; ".join(w.detail for w in witnesses)
    return Verdict(
        Status.BLOCKED, Method.TCP_FREEZE, failure, evidence, address=o.address, witnesses=tuple(witnesses)
    )


def freeze_verdict(
    o: TransferObservation, others: Sequence[TransferObservation], answers: Sequence[Answer]
) -> Verdict | None:
    """One check transfer's verdict (None: it carried, or did not run)."""
    if o.stalled:
        return _stalled(o, others, answers)
    if o.failure is None:
        return None
    # A reset or an EOF is a fact of its own, never the silent freeze.
    failure = failure_string(o.failure, o.error)
    evidence = f"{_where(o)}: {failure} after {o.received} bytes received ({o.sent} sent): not a freeze"
    return Verdict(Status.UNREACHABLE, None, failure, evidence, address=o.address)


def transfers(other: Sequence[object]) -> list[TransferObservation]:
    return [o for o in other if isinstance(o, TransferObservation)]


def freeze_findings(other: Sequence[object], answers: Sequence[Answer]) -> list[Finding]:
    every = transfers(other)
    out = []
    for o in every:
        if o.purpose is not Purpose.CHECK:
            continue
        verdict = freeze_verdict(o, every, answers)
        if verdict is not None:
            out.append(Finding(CheckKind.FREEZE, verdict))
    return out
