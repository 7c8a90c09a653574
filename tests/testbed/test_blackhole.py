"""Closed ports answer SYN with RST; black-holed ports never answer (no root)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from probe.testbed.blackhole import ABORT_ON_OVERFLOW, BlackholeListener, ClosedPort, drops_syns_when_full
from tests.testbed.loop import HOST, OTHER_HOST, run


async def connect(host: str, port: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()


def test_closed_port_refuses_and_stays_reserved() -> None:
    async def body() -> None:
        async with ClosedPort(HOST) as closed:
            assert closed.port
            with pytest.raises(ConnectionRefusedError):
                await connect(HOST, closed.port, 1.0)
            with socket.socket() as other, pytest.raises(OSError, match="Address already in use"):
                other.bind((HOST, closed.port))  # nobody can start listening there meanwhile
        with socket.socket() as other:
            other.bind((HOST, closed.port))  # released on exit

    run(body)


def test_closed_port_on_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no ::1 on this host's loopback: {exc}")

    async def body() -> None:
        async with ClosedPort("::1") as closed:
            with pytest.raises(ConnectionRefusedError):
                await connect("::1", closed.port, 1.0)

    run(body)


def test_blackhole_leaves_syns_unanswered() -> None:
    if not drops_syns_when_full():
        pytest.skip(
            f"the black hole needs Linux with {ABORT_ON_OVERFLOW} = 0 (the default); "
            "this kernel answers a full accept queue differently"
        )

    async def body() -> float:
        async with BlackholeListener(HOST) as hole, BlackholeListener(OTHER_HOST) as other:
            assert hole.port and other.port
            start = time.monotonic()
            # Many clients at once, as a benchmark sends them: every one hangs.
            results = await asyncio.gather(
                *(connect(h.host, h.port, 1.0) for h in (hole, other) for _ in range(10)),
                return_exceptions=True,
            )
            assert all(isinstance(r, TimeoutError) for r in results), results
            return time.monotonic() - start

    assert run(body) >= 1.0


def test_blackhole_port_refuses_once_closed() -> None:
    async def body() -> None:
        async with BlackholeListener(HOST) as hole:
            port = hole.port
        with pytest.raises(ConnectionRefusedError):
            await connect(HOST, port, 1.0)

    run(body)
