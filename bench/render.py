"""``/metrics`` render figures (a benchmark that prints, not a timed test).

    python -m bench.render

For a catalog-sized snapshot and one cut to ~2,000 series it prints:
collect (building the families), our text encoder and the client library's
text and OpenMetrics encoders on a fresh snapshot (what the first scrape
after a cycle pays),
and a scrape of an unchanged snapshot through the real handler.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from probe.export.metrics import SnapshotCollector, render_families
from probe.export.scrape import metrics_handler
from probe.export.text_format import encode_text
from probe.state import Snapshot
from tests.export import snapshots

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def _median_ms(work: Callable[[], object], repeat: int = 30) -> float:
    work()  # warm caches and imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _series(snapshot: Snapshot) -> int:
    return sum(len(f.samples) for f in render_families(snapshot))


def figures(snapshot: Snapshot) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot))
    handler = metrics_handler(lambda: snapshot, registry)

    loop = asyncio.new_event_loop()
    try:

        def warm_scrape(accept: str) -> Callable[[], object]:
            request = make_mocked_request("GET", "/metrics", headers={"Accept": accept}, loop=loop)

            def once() -> object:
                return loop.run_until_complete(handler(request))

            once()  # fills the cache for this snapshot
            return once

        text_warm = warm_scrape("text/plain")
        om_warm = warm_scrape(OPENMETRICS)
        return {
            "endpoints": len(snapshot.endpoints),
            "series": _series(snapshot),
            "collect_ms": _median_ms(lambda: render_families(snapshot)),
            # What a scrape pays: our text encoder; the library's beside it, for the ratio.
            "text_fresh_ms": _median_ms(lambda: encode_text(registry.collect())),
            "library_text_fresh_ms": _median_ms(lambda: generate_latest(registry)),
            "openmetrics_fresh_ms": _median_ms(lambda: generate_openmetrics(registry)),
            "text_scrape_cached_ms": _median_ms(text_warm, repeat=200),
            "openmetrics_scrape_cached_ms": _median_ms(om_warm, repeat=200),
        }
    finally:
        loop.close()


def main() -> None:
    rows = [
        ("~2,000 series", figures(snapshots.catalog(services=7, per_service=8))),
        ("catalog", figures(snapshots.catalog())),
    ]
    keys = list(rows[0][1])
    print(f"{'':28}" + "".join(f"{name:>16}" for name, _ in rows))
    for key in keys:
        cells = "".join(
            f"{values[key]:>16.0f}" if key in ("endpoints", "series") else f"{values[key]:>16.2f}"
            for _, values in rows
        )
        print(f"{key:28}{cells}")


if __name__ == "__main__":
    main()
