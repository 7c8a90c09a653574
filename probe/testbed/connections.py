"""Per-connection bookkeeping shared by the testbed's stream servers: every
client task is tracked so that closing a server cancels its clients, and a
client that hangs up (or is cancelled) never leaks a socket or a warning."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

Tasks = set[asyncio.Task[None]]


@contextlib.asynccontextmanager
async def tracked(tasks: Tasks, writer: asyncio.StreamWriter) -> AsyncIterator[None]:
    task = asyncio.current_task()
    assert task is not None
    tasks.add(task)
    try:
        yield
    except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass  # the client went away, a backend refused, or the server is closing: nothing to report
    finally:
        tasks.discard(task)
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await writer.wait_closed()


async def cancel_all(tasks: Tasks) -> None:
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
