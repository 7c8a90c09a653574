"""Where on the path interference starts, from a recorded censor traceroute (pure).

CenTrace's hop decision (controls-throttling.md D1), reduced to what one
walk on a fixed 5-tuple can show. The control payload is the yardstick: at
every TTL it drew what the path itself does (a router's time exceeded, or
the server's answer), so the trigger is judged only against the control at
the same TTL:

- **reset**: the trigger drew a reset where the control did not (a reset
  both drew is the far end's own: a firewall for every name, not a censor);
- **drop**: the trigger drew silence at a TTL and at the next one while the
  control drew an answer at both. Two TTLs, because one lost or rate-limited
  time exceeded is common on real paths and must not read as a censor;
- **forged**: the trigger drew a server-looking answer at a TTL below the
  one where the control first reached the server: nothing at that hop is the
  server, so something on the path answered for it.

The trigger reaching the server as the control did is a clean path: None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probe.model_packets import RawTraceroute, TraceHop

_SILENT = ("none", "not sent")  # no answer, or never probed (a walk stopped before that TTL)


@dataclass(frozen=True, slots=True)
class CensorHop:
    hop: int  # the TTL at which the trigger first met interference
    interference: str  # "reset" | "drop" | "forged"
    last_router: str | None  # the last router that answered the trigger before that hop
    router: str | None  # the router the control payload met at that hop (the censor's box, if it answers)


def _dropped(hops: Sequence[TraceHop], index: int) -> bool:
    """Silence for the trigger here and at the next TTL, both of which answered the control."""
    if index + 1 >= len(hops):
        return False
    here, after = hops[index], hops[index + 1]
    return (
        after.ttl == here.ttl + 1
        and here.trigger_answer == after.trigger_answer == "none"
        and here.control_answer not in _SILENT
        and after.control_answer not in _SILENT
    )


def censor_hop(trace: RawTraceroute) -> CensorHop | None:
    """None: the walk found no hop where the trigger fares worse than the control."""
    hops = sorted(trace.hops, key=lambda h: h.ttl)
    server_ttl = next((h.ttl for h in hops if h.control_answer == "server"), None)
    last_router: str | None = None
    for index, h in enumerate(hops):
        answer = h.trigger_answer
        if answer == "not sent":
            break
        found: str | None = None
        if answer == "reset" and h.control_answer != "reset":
            found = "reset"
        elif answer == "server" and (
            h.ttl < server_ttl if server_ttl is not None else h.control_answer == "icmp"
        ):
            found = "forged"
        elif answer == "none" and _dropped(hops, index):
            found = "drop"
        if found is not None:
            return CensorHop(h.ttl, found, last_router, h.control_router)
        if answer in ("server", "reset"):
            return None  # the far end answered the trigger as it did the control
        if answer == "icmp" and h.trigger_router is not None:
            last_router = h.trigger_router
    return None
