"""The probe against servers run by a hostile network (``probe.testbed.hostile``).

Every exchange ends within its step timeouts whatever the server does, the
probe's memory stays bounded (the body cap, h11's header limit, the gzip
decoder's bound), the event loop stays responsive (the daemon would keep
answering /-/healthy), nothing reads as a block, and one hostile endpoint
costs no other endpoint its measurement: a clean one measured in the same
cycle is ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import tempfile
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from probe.config.model import Check, Endpoint, ResolverSpec, Service
from probe.measure.toolkit import open_toolkit
from probe.model import EndpointResult
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.hostile import HTTP_BEHAVIOURS, GarbageDns, HostileServer, garbage_tls
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import CheckKind, Status
from tests.e2e.harness import FINGERPRINTS

HOSTILE_IP = "127.0.3.1"
# Every step's timeout in these configs is at most 2 s; a cycle that takes
# longer than the sum of a few steps did not bound something.
CYCLE_BOUND = 20.0
MEMORY_BOUND = 48 << 20  # peak Python allocations over the whole suite's cycle


def _ip_endpoint(name: str, host: str, url: str, kind: str = CheckKind.HTTP) -> Service:
    endpoint = Endpoint(host, (Check(kind, url=url),), source="probe.testbed.hostile")
    return Service(name, name, (endpoint,))


async def _hostile_cycle() -> tuple[CycleResult, int]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-hostile-") as workdir:
        async with contextlib.AsyncExitStack() as stack:
            bed = await stack.enter_async_context(LoopbackCensor(Path(workdir), max_services=1))
            clean = await bed.add(FakeService("clean", checks=("dns", "tcp", "http")))
            services = [clean]
            for index, (name, behaviour) in enumerate(HTTP_BEHAVIOURS.items()):
                host = f"127.0.3.{index + 1}"
                server = await stack.enter_async_context(HostileServer(host, behaviour))
                services.append(_ip_endpoint(name, host, f"http://{host}:{server.port}/"))
            tls = await stack.enter_async_context(HostileServer("127.0.3.100", garbage_tls))
            services.append(_ip_endpoint("garbage-tls", tls.host, f"https://{tls.host}:{tls.port}/"))
            loop = asyncio.get_running_loop()
            garbage_dns, _ = await loop.create_datagram_endpoint(GarbageDns, local_addr=("127.0.3.200", 0))
            stack.callback(garbage_dns.close)
            dns_port = garbage_dns.get_extra_info("sockname")[1]
            config = bed.config(services)
            async with open_toolkit(config) as kit:
                tracemalloc.start()
                try:
                    cycle = await run_cycle(kit, FINGERPRINTS, config.services)
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
            # Garbage DNS: the clean service's name asked of a resolver that answers noise.
            noisy = bed.config(
                [clean], resolvers=(ResolverSpec(f"127.0.3.200:{dns_port}", "udp", "127.0.3.200", dns_port),)
            )
            async with open_toolkit(noisy) as kit:
                dns_cycle = await run_cycle(kit, FINGERPRINTS, noisy.services)
            result = CycleResult(
                cycle.started,
                dns_cycle.finished,
                cycle.vantage_online,
                cycle.results + tuple(replace_service(r, "garbage-dns") for r in dns_cycle.results),
                max(cycle.max_lag, dns_cycle.max_lag),
            )
            return result, peak


def replace_service(result: EndpointResult, name: str) -> EndpointResult:
    return replace(result, service=name)


@pytest.fixture(scope="module")
def hostile() -> tuple[CycleResult, int]:
    return asyncio.run(_hostile_cycle())


def test_every_hostile_exchange_is_bounded_in_time(hostile: tuple[CycleResult, int]) -> None:
    cycle, _ = hostile
    print(f"hostile suite: cycle {cycle.duration:.1f} s, event loop at most {cycle.max_lag:.2f} s late")
    assert cycle.duration < CYCLE_BOUND, cycle.duration
    # The loop kept turning: /-/healthy would have answered all along.
    assert cycle.max_lag < 1.0, cycle.max_lag


def test_memory_stays_bounded(hostile: tuple[CycleResult, int]) -> None:
    _, peak = hostile
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB"
    print(f"hostile suite: peak Python allocations {peak / 2**20:.1f} MiB, max RSS {_rss_mib():.0f} MiB")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("name", [*HTTP_BEHAVIOURS, "garbage-tls", "garbage-dns"])
def test_nothing_hostile_reads_as_a_block_or_crashes(hostile: tuple[CycleResult, int], name: str) -> None:
    cycle, _ = hostile
    result = next(r for r in cycle.results if r.service == name)
    assert result.verdict.status not in (Status.BLOCKED, Status.ERROR), result.verdict
    assert result.verdict.evidence


def test_a_hostile_endpoint_costs_no_other_endpoint_its_measurement(hostile: tuple[CycleResult, int]) -> None:
    cycle, _ = hostile
    clean = next(r for r in cycle.results if r.service == "clean")
    assert clean.verdict.status is Status.OK, clean.verdict


def test_bodies_and_headers_were_cut_at_their_caps(hostile: tuple[CycleResult, int]) -> None:
    cycle, _ = hostile
    by = {r.service: r for r in cycle.results}
    for name in ("huge-body", "gzip-bomb"):
        (http,) = [h for h in by[name].observations.http if not h.decoy]
        assert http.body_truncated or http.failure is not None, (name, http)
        assert len(http.body) <= 512 * 1024
    redirects = [h for h in by["redirect-loop"].observations.http if not h.decoy]
    assert redirects and all(len(h.redirects) <= 10 for h in redirects)
