"""What every server process of the namespace tests shares.

A server module is run inside a namespace as ``python -m MODULE --workdir
DIR`` (``Network.start_servers``). It prints ``ready`` once everything
listens, may obey one command per stdin line (answering each ``ok
COMMAND``), and stops on SIGTERM, SIGINT or the end of stdin: a test
process that dies takes its servers along.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

Commands = Callable[[asyncio.Event], Awaitable[None]]


async def stdin_lines() -> AsyncIterator[str]:
    """Each stdin line, stripped, until EOF."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        yield line.strip()


async def until_stopped(commands: Commands | None = None) -> None:
    """Say ``ready``, obey ``commands`` (which sets the event at EOF), return on a stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(commands(stop)) if commands is not None else None
    print("ready", flush=True)
    await stop.wait()
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main(serve: Callable[[Path], Awaitable[None]], doc: str | None) -> int:
    """``--workdir DIR`` (where the test CA and any shared files go), then ``serve`` it."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    asyncio.run(serve(parser.parse_args().workdir))
    return 0
