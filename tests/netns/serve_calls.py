"""The call servers of ``tests/netns/test_calls.py``, run inside the servers namespace.

``python -m tests.netns.serve_calls`` (addresses added by the test first):

- ``RELAY_IP``:3478 — a messenger's call relay: answers STUN Binding
  Requests and echoes any other datagram (so a random payload gets an
  answer when the path lets plain UDP through);
- ``NEUTRAL_IP``:3478 — a neutral STUN server;
- ``ONLINE_IP``:80 — a TCP listener that accepts and closes: the cycle's
  proof that the vantage is online when every UDP server is dropped.

Prints ``ready`` once all listen; EOF on stdin or SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from probe.testbed.stun import Respond, StunServer

RELAY_IP = "10.77.2.80"
NEUTRAL_IP = "10.77.2.81"
ONLINE_IP = "10.77.2.82"
STUN_PORT = 3478
ONLINE_PORT = 80


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def main() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin, lambda: stop.set() if not sys.stdin.readline() else None)
    async with (
        StunServer(RELAY_IP, STUN_PORT, Respond(echo=True)),
        StunServer(NEUTRAL_IP, STUN_PORT),
    ):
        server = await asyncio.start_server(_close, ONLINE_IP, ONLINE_PORT)
        async with server:
            print("ready", flush=True)
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
