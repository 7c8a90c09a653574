"""A bounded load test on loopback: 100 requests at once against max-in-flight 8.

Each measurement stalls in TLS (the silent listener) for a second or two, so
all 100 arrive while the first 8 are still running: exactly 8 are measured,
92 are refused at once, the gauge never passes 8, nothing outlives its bound.
"""

from __future__ import annotations

import asyncio
import time

from probe.config.model import Timeouts
from tests.control.bed import STALL_IP, control_bed

REQUESTS = 100
MAX_IN_FLIGHT = 8
REFUSAL_BOUND = 1.0  # seconds: "at once", with room for a loaded CI machine
TEST_BOUND = 30.0


def test_a_burst_beyond_max_in_flight_is_refused_at_once_and_bounded() -> None:
    async def test() -> dict[str, float]:
        timeouts = Timeouts(dns=1.0, connect=1.0, tls=1.0, http=1.0, cycle=10.0)
        async with control_bed(max_in_flight=MAX_IN_FLIGHT, timeouts=timeouts, connections=REQUESTS) as bed:
            peak = 0.0
            done = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, bed.sample("msgprobe_control_in_flight") or 0.0)
                    await asyncio.sleep(0.001)

            async def one() -> tuple[int, float]:
                started = time.monotonic()
                reply = await bed.post({"service": "slow", "endpoint": STALL_IP})
                return reply.status, time.monotonic() - started

            sampler = asyncio.create_task(sample())
            async with asyncio.timeout(TEST_BOUND):
                results = await asyncio.gather(*(one() for _ in range(REQUESTS)))
            done.set()
            await sampler
            ok = [t for s, t in results if s == 200]
            busy = [t for s, t in results if s == 503]
            assert (len(ok), len(busy)) == (MAX_IN_FLIGHT, REQUESTS - MAX_IN_FLIGHT), sorted(results)
            assert peak == MAX_IN_FLIGHT  # reached, never passed
            assert max(busy) < REFUSAL_BOUND
            assert max(ok) < bed.control.deadline
            assert bed.sample("msgprobe_control_in_flight") == 0
            assert bed.sample("msgprobe_control_requests_total", result="busy") == len(busy)
            assert bed.sample("msgprobe_control_request_duration_seconds_count") == len(ok)
            return {
                "requests": REQUESTS,
                "503": len(busy),
                "max_in_flight": peak,
                "max_503_s": max(busy),
                "max_200_s": max(ok),
            }

    figures = asyncio.run(test())
    print(f"\nload: {figures}")
