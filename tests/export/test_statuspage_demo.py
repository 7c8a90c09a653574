"""The newcomer's first look: ``msgprobe demo`` as a process, its page
fetched right after the first cycle. The demo's blocks need two cycles to
be confirmed; until then the page must show them as confirming, not a page
of ``unknown`` with nothing blocked."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from probe.testbed.scenarios import DEMO

FIRST_CYCLE_TIMEOUT = 90  # the demo's first cycle takes about 7 s on a 2-core machine


async def _first_cycle_page() -> tuple[str, dict[str, object]]:
    # An interval far longer than the test, so the page read is the first cycle's.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "probe",
        "demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--interval",
        "1h",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        address = None
        async with asyncio.timeout(FIRST_CYCLE_TIMEOUT):
            # Wait on the daemon's own log lines: where it listens, then the first cycle's end.
            while line := (await process.stderr.readline()).decode():
                seen.append(line)
                if found := re.search(r"msg=listening address=(\S+)", line):
                    address = found.group(1)
                if 'msg="cycle done"' in line:
                    break
        assert address is not None and 'msg="cycle done"' in seen[-1], "".join(seen)[-3000:]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{address}/") as r:
                assert r.status == 200
                page = await r.text()
            async with http.get(f"http://{address}/status") as r:
                status: dict[str, object] = await r.json()
        return page, status
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            await process.communicate()


def test_the_demos_first_cycle_page_shows_blocks_as_confirming() -> None:
    page, status = asyncio.run(_first_cycle_page())
    assert status["cycles"] == 1  # the page is the first cycle's
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    services = len(DEMO)
    assert f"0 of {services} services blocked · " in text  # nothing is confirmed after one cycle ...
    confirming = text.count("blocked — confirming, 1 of 2 cycles")
    assert confirming >= services // 2, text[:2000]  # ... but the blocks are there, as confirming
    assert "nothing confirmed yet" in text
    assert len(re.findall(r'<a class="tile s-blocked confirming"', page)) == confirming
    assert "vantage online" in text and "controls 1/1 up" in text
