"""Run one censor traceroute and print it as JSON (``python -m tests.netns.trace_driver``).

Started inside the client namespace by tests/netns/test_traceroute.py, so
that the walk's packets (and its NET_RAW sockets) live in that namespace.
With ``--cancel-after S`` the walk is cancelled S seconds in, and what it
left behind (open sockets, capture threads) is printed instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import threading

from probe.config.model import Raw
from probe.raw.traceroute import traceroute


def sockets() -> int:
    """Open sockets of this process (every kind: TCP, raw, packet, UDP)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used, already closed
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "msgprobe capture"]


async def cancelled(walk: asyncio.Task[object], after: float) -> dict[str, object]:
    await asyncio.sleep(after)  # any moment will do: whatever the walk is doing, it must clean up
    walk.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await walk
    for thread in capture_threads():  # the reader sees its stop flag within 50 ms
        await asyncio.to_thread(thread.join, 5.0)
    return {
        "cancelled": walk.cancelled(),
        "sockets_after": sockets(),
        "capture_threads": len(capture_threads()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("--trigger", choices=("sni", "host"), required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--hop-wait", type=float, default=0.5)
    parser.add_argument("--pace", type=float, default=0.05)
    parser.add_argument("--per-hop", type=int, default=1)
    parser.add_argument("--max-hops", type=int, default=8)
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--cancel-after", type=float, default=None)
    args = parser.parse_args()
    raw = Raw(
        traceroute=True,
        max_hops=args.max_hops,
        per_hop=args.per_hop,
        hop_wait=args.hop_wait,
        pace=args.pace,
        trace_budget=args.budget,
    )
    walk = traceroute(
        args.address,
        args.port,
        trigger=args.trigger,
        name=args.name,
        control_name=args.control,
        raw=raw,
        connect_timeout=2.0,
    )
    if args.cancel_after is None:
        print(json.dumps(dataclasses.asdict(asyncio.run(walk))))
        return
    import scapy.layers.inet  # noqa: F401  (what the walk imports first, sockets and all, before counting)

    async def run() -> dict[str, object]:
        before = sockets()  # the loop's own self-pipe included
        return {"sockets_before": before, **await cancelled(asyncio.ensure_future(walk), args.cancel_after)}

    print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":
    main()
