"""The control's own metrics: how many requests, how each ended, how busy.

Like ``probe.export``, the only place here that imports prometheus_client.
The registry is made per app (tests get a fresh one); every series is
declared once, below, and every ``result`` label exists from the start at 0
so a rate() over it never begins with a gap.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from probe.control.policy import Result

# A measurement is bounded by the deadline (at most 30 s); refusals take
# about a millisecond and are not observed (they would drown the signal).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)


class ControlMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "msgprobe_control_requests",
            "Measure requests answered, by how they ended.",
            ["result"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "msgprobe_control_in_flight",
            "Measurements running now (bounded by --control.max-in-flight).",
            registry=self.registry,
        )
        self.duration = Histogram(
            "msgprobe_control_request_duration_seconds",
            "Time to answer a request that was measured (result ok, timeout or error).",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        for result in Result:
            self.requests.labels(result.value)

    def count(self, result: Result) -> None:
        self.requests.labels(result.value).inc()

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
