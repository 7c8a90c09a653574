"""Our text encoder writes exactly what prometheus_client's generate_latest writes."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from probe.export.metrics import SnapshotCollector
from probe.export.text_format import encode_text
from tests.export import snapshots


@pytest.mark.parametrize("services", [1, 7])
def test_same_bytes_as_the_library_for_a_catalog(services: int) -> None:
    snapshot = snapshots.catalog(services=services, per_service=8)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot))
    assert encode_text(registry.collect()) == generate_latest(registry)


class _Odd:
    """Values and docs the format must escape, and the special floats."""

    def collect(self):  # type: ignore[no-untyped-def]
        g = GaugeMetricFamily("odd_gauge", 'help with \\ and\nnewline "quoted"', labels=["v"])
        for i, value in enumerate([0.0, -1.5, math.inf, -math.inf, math.nan, 1e21, 123456789.0]):
            g.add_metric([f'a"b\\c\nd{i}'], value)
        c = CounterMetricFamily("odd_requests", "a counter", labels=["path"], created=1700000000.0)
        c.add_metric(['/x?y="1"'], 3.0, created=1700000000.5)
        i = InfoMetricFamily("odd_build", "an info", value={"version": "1.0"})
        empty = GaugeMetricFamily("odd_plain", "no labels", value=7.0)
        yield from (g, c, i, empty)


def test_same_bytes_as_the_library_for_escapes_and_special_values() -> None:
    registry = CollectorRegistry()
    registry.register(_Odd())
    assert encode_text(registry.collect()) == generate_latest(registry)
