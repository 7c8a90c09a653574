"""The probe's client of control peers: bounded per peer, and a peer's failure is data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web

from probe.config.model import ControlPeer
from probe.control.api import PATH, Request, Summary
from probe.control.client import PER_PEER_IN_FLIGHT, ControlClient, Peer
from probe.export.web import bound_addresses


def test_at_most_a_few_requests_per_peer_are_in_flight(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, list[bool]]:
        in_flight, peak, release = 0, 0, asyncio.Event()

        async def measure(request: web.Request) -> web.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            if peak >= PER_PEER_IN_FLIGHT:
                release.set()  # the bound is reached: let everyone finish
            await asyncio.wait_for(release.wait(), 5)
            in_flight -= 1
            return web.json_response(Summary(None, (), (), ()).to_json())

        app = web.Application()
        app.router.add_post(PATH, measure)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        (tmp_path / "token").write_text("t0ken\n")
        peer = Peer.create(ControlPeer(f"http://{bound_addresses(runner)[0]}", tmp_path / "token"))
        try:
            async with aiohttp.ClientSession() as session:
                client = ControlClient([peer], session, timeout=10)
                answers = await asyncio.gather(*(client.ask(Request("s", f"e{i}")) for i in range(12)))
        finally:
            await runner.cleanup()
        return peak, [a.reachable for (a,) in answers]

    peak, reachable = asyncio.run(scenario())
    assert peak == PER_PEER_IN_FLIGHT and all(reachable)
