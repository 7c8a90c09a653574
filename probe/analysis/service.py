"""A service's status from its endpoints' statuses.

OONI's early Telegram test marked the whole service blocked when *all*
endpoints failed and missed partial blocks; per-endpoint results plus "any
active endpoint blocked" avoid that. Legacy and defunct endpoints are
reported on their own but never decide the service's status.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.vocab import EndpointState, Status

_ORDER = (Status.BLOCKED, Status.UNREACHABLE, Status.ERROR, Status.UNKNOWN)


def service_status(endpoints: Sequence[tuple[EndpointState, Status]]) -> Status:
    active = [s for state, s in endpoints if state is EndpointState.ACTIVE]
    statuses = active or [s for _, s in endpoints]
    if not statuses:
        return Status.UNKNOWN
    if Status.BLOCKED in active:
        return Status.BLOCKED
    if all(s is Status.DOWN for s in statuses):
        return Status.DOWN
    for status in _ORDER:
        if status in statuses:
            return status
    return Status.OK


def service_blocked(endpoints: Sequence[tuple[EndpointState, Status]]) -> bool:
    return any(state is EndpointState.ACTIVE and s is Status.BLOCKED for state, s in endpoints)
