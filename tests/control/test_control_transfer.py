"""The transfer routes (T3's cooperative source and sink): exact sizes, the
same token and rate guards as /v1/measure, counted in its metrics."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine
from typing import Any

from probe.control.transfer import MAX_TRANSFER, SINK, SOURCE
from tests.control.bed import TOKENS, Bed, control_bed

AUTH = {"Authorization": f"Bearer {TOKENS['probe-a']}"}


def run(test: Callable[[Bed], Coroutine[Any, Any, None]], **kw: Any) -> None:
    async def main() -> None:
        async with control_bed(**kw) as bed:
            await test(bed)

    asyncio.run(main())


def test_source_sends_exactly_n_bytes_and_sink_counts_the_body() -> None:
    async def test(bed: Bed) -> None:
        async with bed.session.get(f"{bed.url}{SOURCE}?bytes=131072", headers=AUTH) as r:
            assert r.status == 200 and len(await r.read()) == 131072
        async with bed.session.post(f"{bed.url}{SINK}", data=b"x" * 65536, headers=AUTH) as r:
            assert r.status == 200 and await r.json() == {"received": 65536}
        assert bed.sample("msgprobe_control_requests_total", result="ok") == 2.0
        assert bed.traffic() == (0, 0, 0)  # bytes, never a measurement

    run(test)


def test_transfers_are_refused_like_measure_requests() -> None:
    async def test(bed: Bed) -> None:
        async with bed.session.get(f"{bed.url}{SOURCE}?bytes=10") as r:
            assert r.status == 401 and "WWW-Authenticate" in r.headers
        async with bed.session.get(f"{bed.url}{SOURCE}?bytes={MAX_TRANSFER + 1}", headers=AUTH) as r:
            assert r.status == 400
        async with bed.session.get(f"{bed.url}{SOURCE}?bytes=-1", headers=AUTH) as r:
            assert r.status == 400
        async with bed.session.post(
            f"{bed.url}{SINK}", data=io.BytesIO(b"x" * (MAX_TRANSFER + 1)), headers=AUTH
        ) as r:
            assert r.status == 413
        async with bed.session.get(f"{bed.url}{SOURCE}?bytes=10", headers=AUTH) as r:
            assert r.status == 429 and "Retry-After" in r.headers  # the token's rate is shared
        assert bed.sample("msgprobe_control_requests_total", result="unauthorized") == 1.0
        assert bed.sample("msgprobe_control_requests_total", result="rate_limited") == 1.0

    run(test, rate_per_minute=3)
