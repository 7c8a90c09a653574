"""The two bounds on how much a control measures: requests in flight, and a
rate per token.

In flight: a request beyond the cap is refused at once (503), never queued.
A queue would turn a burst (every probe of a fleet starting its cycle at
the same minute: oohelperd's overload in ooni/probe#2649) into latency
that outlives the probes' own timeouts, so the work would be done for
nobody; a refusal lets each probe decide now (``unknown``, or another
control).

Rate: a token bucket per probe, ``per_minute`` deep and refilled at
``per_minute`` per 60 s, so a probe may burst one minute's allowance and
then gets one request every ``60 / per_minute`` seconds. Time is passed in
(``now``) so tests need no sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class InFlight:
    limit: int
    count: int = 0

    def try_enter(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        assert self.count > 0, "leave() without try_enter()"
        self.count -= 1


@dataclass
class _Bucket:
    level: float
    stamp: float


@dataclass
class RateLimiter:
    per_minute: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str, now: float) -> float:
        """0 when ``key`` may go ahead (one unit taken), else the seconds until it may."""
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        bucket.level = min(float(self.per_minute), bucket.level + max(0.0, now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.level >= 1.0:
            bucket.level -= 1.0
            return 0.0
        return (1.0 - bucket.level) / rate


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
