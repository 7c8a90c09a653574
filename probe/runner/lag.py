"""Event-loop lag during a cycle: how late a 100 ms heartbeat wakes up.

When the probe itself is overloaded (too much concurrency for its CPU), its
timers fire late and replies sit unread: timeouts become the probe's own.
The figure goes to analysis, which refuses to call such timeouts a block.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

HEARTBEAT = 0.1


class LagMonitor:
    def __init__(self) -> None:
        self.max_lag = 0.0

    async def _beat(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(HEARTBEAT)
            self.max_lag = max(self.max_lag, time.monotonic() - before - HEARTBEAT)


@contextlib.asynccontextmanager
async def monitored() -> AsyncIterator[LagMonitor]:
    monitor = LagMonitor()
    task = asyncio.create_task(monitor._beat())
    try:
        yield monitor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
