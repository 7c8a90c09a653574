"""Run a testbed test on a fresh event loop and prove it left nothing behind.

The testbed starts and stops thousands of servers in benchmarks and demos,
so each test checks what filterwarnings=error alone would miss: no task
still pending when the test body returns (asyncio.run would cancel it
silently) and no file descriptor left open once the loop is gone.
"""

from __future__ import annotations

import asyncio
import gc
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar

from probe.testbed.pki import TestCA

T = TypeVar("T")

# The tests' own address block: far from probe.testbed.scenarios' 127.0.0.x.
HOST = "127.0.3.1"
OTHER_HOST = "127.0.3.2"


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def run(body: Callable[[], Awaitable[T]]) -> T:
    async def checked() -> T:
        result = await body()
        await asyncio.sleep(0)  # let just-closed transports run their connection_lost
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        assert not pending, f"tasks still running after the servers closed: {pending}"
        return result

    before = _open_fds()
    result = asyncio.run(checked())
    leaked = _open_fds() - before
    if leaked:  # maybe garbage not yet collected: collecting closes it, with a ResourceWarning
        gc.collect()
        leaked = _open_fds() - before
    assert not leaked, f"file descriptors left open: {[os.readlink(f'/proc/self/fd/{fd}') for fd in leaked]}"
    return result


def client_context(ca: TestCA) -> ssl.SSLContext:
    """A client that trusts only the test CA (and verifies names, as the probe does)."""
    return ssl.create_default_context(cadata=ca.cert_pem.decode())
