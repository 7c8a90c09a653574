"""The schedule on a fake clock: intervals, jitter bounds, no overlap, stop."""

from __future__ import annotations

import asyncio
import itertools
import random

from probe.runner.scheduler import Scheduler


class FakeClock:
    """Time moves only when the code under test sleeps or a cycle 'takes' time."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float, stop: asyncio.Event) -> None:
        self.t = max(self.t, deadline)
        await asyncio.sleep(0)


def _run(scheduler: Scheduler, clock: FakeClock, durations: list[float]) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    stop = asyncio.Event()
    todo = list(durations)

    async def cycle() -> None:
        start = clock.now()
        clock.t += todo.pop(0)
        spans.append((start, clock.now()))
        if not todo:
            stop.set()

    asyncio.run(scheduler.run(cycle, stop))
    return spans


def test_cycles_start_every_interval_plus_bounded_jitter() -> None:
    clock = FakeClock()
    spans = _run(Scheduler(300, 30, clock=clock, rng=random.Random(7)), clock, [5.0] * 50)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(spans)]
    assert len(spans) == 50
    assert all(300 <= g <= 330 for g in gaps)
    assert max(gaps) - min(gaps) > 10  # the jitter is really there


def test_a_cycle_longer_than_the_interval_is_never_overlapped() -> None:
    clock = FakeClock()
    spans = _run(Scheduler(60, 0, clock=clock), clock, [90.0, 10.0, 90.0, 10.0])
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start >= end
    assert spans[1][0] == spans[0][1]  # overrun: the next starts at once, no catch-up burst
    assert spans[2][0] == spans[1][0] + 60


def test_stop_during_the_wait_ends_the_loop() -> None:
    async def scenario() -> int:
        stop = asyncio.Event()
        runs = 0

        async def cycle() -> None:
            nonlocal runs
            runs += 1
            asyncio.get_running_loop().call_later(0.05, stop.set)

        await asyncio.wait_for(Scheduler(3600, 0).run(cycle, stop), timeout=2)
        return runs

    assert asyncio.run(scenario()) == 1
