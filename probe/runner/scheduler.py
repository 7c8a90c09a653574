"""When cycles run: every ``interval`` plus random jitter, never overlapping.

The clock is injected (``Clock``) so tests drive the schedule on a fake
clock. A cycle that overruns its slot is followed at once by the next one,
not by a burst of catch-up cycles: measurements are snapshots, and a
backlog of them would only hammer the network.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep_until(self, deadline: float, stop: asyncio.Event) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float, stop: asyncio.Event) -> None:
        delay = deadline - self.now()
        if delay <= 0:
            return
        try:
            async with asyncio.timeout(delay):
                await stop.wait()
        except TimeoutError:
            pass


class Scheduler:
    def __init__(
        self,
        interval: float,
        jitter: float,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.interval = interval
        self.jitter = jitter
        self.clock = clock or MonotonicClock()
        self.rng = rng or random.Random()

    def next_start(self, started: float, now: float) -> float:
        planned = started + self.interval + self.rng.uniform(0, self.jitter)
        return max(planned, now)

    async def run(self, cycle: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = self.clock.now()
            await cycle()
            if stop.is_set():
                break
            await self.clock.sleep_until(self.next_start(started, self.clock.now()), stop)
