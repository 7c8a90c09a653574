"""The decoy-witness rule, one for every step that can run a decoy.

A reset or a stall with the real name (SNI, Host) proves nothing alone: the
server may be dead. The same step to the same address with a harmless name
is the control. If the decoy completes, the path reacted to the name
(``*.reset`` / ``*.timeout``); if it fails too, or could not run, the honest
answer is ``unreachable``. TLS and HTTP use this rule; throttling will too.
"""

from __future__ import annotations

from probe.model import Verdict, Witness
from probe.vocab import Failure, Method, Status


def decoy_witness(
    failure: Failure,
    *,
    decoy_ok: bool,
    reset: Method,
    timeout: Method,
    address: str,
    seen: str,
    survived: str,
    failed: str,
) -> Verdict:
    """``seen`` says what failed, ``survived`` what the decoy did, ``failed`` why it proves nothing."""
    if decoy_ok:
        method = timeout if failure is Failure.TIMEOUT else reset
        return Verdict(
            Status.BLOCKED,
            method,
            failure,
            f"{seen}; {survived}",
            address=address,
            witnesses=(Witness("decoy", survived),),
        )
    return Verdict(Status.UNREACHABLE, None, failure, f"{seen}; {failed}", address=address)
