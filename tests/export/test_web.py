"""Every route of the exporter on a real socket (127.0.0.1, ephemeral port)."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from probe.export.metrics import SnapshotCollector
from probe.export.web import Reload, bound_addresses, make_app, parse_listen, serve
from probe.state import Snapshot
from tests.export import snapshots

OPENMETRICS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)  # what Prometheus 2.x sends


class Holder:
    """Stands in for the tracker: the newest snapshot, swapped by the test."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def get(self) -> Snapshot:
        return self.snapshot


@asynccontextmanager
async def running(
    holder: Holder, reload: Reload | None = None, *, cache_metrics: bool = True
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SnapshotCollector(holder.get))
    runner = await serve(
        make_app(holder.get, registry=registry, reload=reload, cache_metrics=cache_metrics), "127.0.0.1:0"
    )
    try:
        (address,) = bound_addresses(runner)
        async with aiohttp.ClientSession() as session:
            yield session, f"http://{address}"
    finally:
        await runner.cleanup()


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_metrics_text_by_default_and_openmetrics_on_request() -> None:
    async def main() -> None:
        async with running(Holder(snapshots.scenario())) as (http, base):
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = (await r.read()).decode()
            families = {f.name for f in text_string_to_metric_families(text)}
            assert "msgprobe_endpoint_status" in families
            assert 'msgprobe_endpoint_blocked{endpoint="short.weixin.qq.com",method="tls.reset"' in text

            async with http.get(f"{base}/metrics", headers={"Accept": OPENMETRICS_ACCEPT}) as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
                om = (await r.read()).decode()
            assert om.endswith("# EOF\n")
            assert {f.name for f in parse_openmetrics(om)} >= {"msgprobe_cycles", "msgprobe_build"}

    run(main)


def test_metrics_gzip_when_accepted() -> None:
    async def main() -> None:
        async with running(Holder(snapshots.scenario())) as (_, base):
            async with aiohttp.ClientSession(auto_decompress=False) as http:
                async with http.get(f"{base}/metrics", headers={"Accept-Encoding": "gzip"}) as r:
                    assert r.headers["Content-Encoding"] == "gzip"
                    text = gzip.decompress(await r.read()).decode()
                async with http.get(f"{base}/metrics", headers={"Accept-Encoding": "identity"}) as r:
                    assert "Content-Encoding" not in r.headers
                    assert (await r.read()).decode() == text
            assert "msgprobe_cycles_total 12.0" in text

    run(main)


@pytest.mark.parametrize("cache", [True, False])
def test_metrics_follow_each_new_snapshot(cache: bool) -> None:
    async def main() -> None:
        holder = Holder(snapshots.empty())
        async with running(holder, cache_metrics=cache) as (http, base):
            async with http.get(f"{base}/metrics") as r:
                assert "msgprobe_cycles_total 0.0" in (await r.read()).decode()
            holder.snapshot = snapshots.scenario()
            for _ in range(2):  # a second scrape of the same snapshot reads the same state
                async with http.get(f"{base}/metrics") as r:
                    assert "msgprobe_cycles_total 12.0" in (await r.read()).decode()

    run(main)


def test_metrics_name_filter() -> None:
    async def main() -> None:
        async with running(Holder(snapshots.scenario())) as (http, base):
            async with http.get(f"{base}/metrics", params={"name[]": "msgprobe_cycles_total"}) as r:
                text = (await r.read()).decode()
            assert "msgprobe_cycles_total 12.0" in text
            assert "msgprobe_endpoint_status" not in text

    run(main)


def test_healthy_and_ready_before_and_after_the_first_cycle() -> None:
    async def main() -> None:
        holder = Holder(snapshots.empty())
        async with running(holder) as (http, base):
            for path in ("/-/healthy", "/healthz"):
                async with http.get(base + path) as r:
                    assert r.status == 200 and (await r.text()).strip() == "OK"
            async with http.get(f"{base}/-/ready") as r:
                assert r.status == 503
                assert "not ready" in await r.text()
            holder.snapshot = snapshots.scenario()
            async with http.get(f"{base}/-/ready") as r:
                assert r.status == 200

    run(main)


def test_reload_success_failure_and_method() -> None:
    outcomes = [(True, "reloaded"), (False, "config.yaml:3: interval: not a duration\nmore detail")]
    calls = []

    async def reload() -> tuple[bool, str]:
        calls.append(1)
        return outcomes[len(calls) - 1]

    async def main() -> None:
        async with running(Holder(snapshots.scenario()), reload) as (http, base):
            async with http.post(f"{base}/-/reload") as r:
                assert r.status == 200 and (await r.text()) == "reloaded\n"
            async with http.post(f"{base}/-/reload") as r:
                assert r.status == 500
                assert (await r.text()) == "config.yaml:3: interval: not a duration\n"
            async with http.get(f"{base}/-/reload") as r:
                assert r.status == 405
            assert len(calls) == 2

    run(main)


def test_reload_without_a_reloader() -> None:
    async def main() -> None:
        async with running(Holder(snapshots.scenario())) as (http, base), http.post(f"{base}/-/reload") as r:
            assert r.status == 501

    run(main)


def test_status_json() -> None:
    async def main() -> None:
        async with running(Holder(snapshots.scenario())) as (http, base), http.get(f"{base}/status") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("application/json")
            body = json.loads(await r.read())
        assert body["probe"]["id"] == "vol-7" and body["cycles"] == 12
        line = next(s for s in body["services"] if s["service"] == "line")
        page = next(e for e in line["endpoints"] if e["endpoint"] == "line.me")
        assert page["method"] == "http.blockpage"
        assert page["latest"]["evidence"]["fingerprint"] == "test-blockpage"
        assert page["recent_failures"][0]["method"] == "http.blockpage"
        text = json.dumps(body)
        for forbidden in ('"local_address"', '"sockname"', '"config_path"', '"body"'):
            assert forbidden not in text

    run(main)


def test_status_page_route() -> None:
    async def main() -> None:
        async with running(Holder(snapshots.scenario())) as (http, base), http.get(f"{base}/") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/html")
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            html = await r.text()
        assert "short.weixin.qq.com" in html and '<meta http-equiv="refresh" content="30">' in html

    run(main)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        (":9490", (None, 9490)),
        ("127.0.0.1:9490", ("127.0.0.1", 9490)),
        ("[::1]:9490", ("::1", 9490)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str | None, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9490", "::1:9490", "127.0.0.1:http", "127.0.0.1:70000"])
def test_parse_listen_rejects(listen: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        parse_listen(listen)


def test_serve_on_ipv6_loopback() -> None:
    async def main() -> None:
        holder = Holder(snapshots.empty())
        registry = CollectorRegistry()
        try:
            runner = await serve(make_app(holder.get, registry=registry), "[::1]:0")
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback here: {exc}")
        try:
            (address,) = bound_addresses(runner)
            assert address.startswith("[::1]:")
            async with aiohttp.ClientSession() as http, http.get(f"http://{address}/-/healthy") as r:
                assert r.status == 200
        finally:
            await runner.cleanup()

    run(main)


def test_serve_reports_a_busy_port() -> None:
    async def main() -> None:
        holder = Holder(snapshots.empty())
        first = await serve(make_app(holder.get, registry=CollectorRegistry()), "127.0.0.1:0")
        try:
            (address,) = bound_addresses(first)
            with pytest.raises(OSError):
                await serve(make_app(holder.get, registry=CollectorRegistry()), address)
        finally:
            await first.cleanup()

    run(main)
