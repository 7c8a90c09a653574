"""A control peer answering real requests on loopback: what a good request
gets back, the deadline, and the control's own routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.parser import text_string_to_metric_families

from probe.config.model import Timeouts
from probe.control.api import Summary
from probe.testbed.scenarios import CANARY
from tests.control.bed import CLEAN_IP, RELAY_IP, STALL_IP, control_bed

CLEAN = {"service": "clean", "endpoint": "clean.msgprobe.test"}


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_a_good_request_gets_a_summary_of_the_controls_and_the_requested_addresses() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            reply = await bed.post({**CLEAN, "addresses": [RELAY_IP]})
            assert reply.status == 200, reply.body
            assert reply.headers["Cache-Control"] == "no-store"
            summary = Summary.from_json(reply.body)
            port = bed.censor.tls_port
            assert summary.dns is not None
            assert summary.dns.addresses == (CLEAN_IP,) and summary.dns.failure is None
            both = {CLEAN_IP, RELAY_IP}  # its own answer, and the one the probe passed
            assert {(c.address, c.port, c.failure) for c in summary.tcp} == {(a, port, None) for a in both}
            assert {(t.address, t.failure) for t in summary.tls} == {(a, None) for a in both}
            assert all(t.issuer and "msgprobe testbed CA" in t.issuer for t in summary.tls)
            assert {h.address for h in summary.http} == both
            for h in summary.http:
                assert (h.failure, h.status, h.body_truncated) == (None, 200, False)
                assert h.url == f"https://clean.msgprobe.test:{port}/"
                assert h.title == "msgprobe testbed: genuine service"
                assert h.body_length > 0 and h.body_sha256 is not None and len(h.body_sha256) == 64
            # Summaries, never content: no body, and the body's hash only.
            assert "body" not in {k for h in reply.body["http"] for k in h}
            assert bed.relay.accepted == 1  # TCP, TLS and HTTP on one connection
            assert bed.sample("msgprobe_control_requests_total", result="ok") == 1

    run(test)


def test_only_the_checks_asked_for_are_measured() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            port = bed.censor.tls_port
            reply = await bed.post({**CLEAN, "checks": [f"tcp:{port}"]})
            assert reply.status == 200, reply.body
            summary = Summary.from_json(reply.body)
            assert [(c.address, c.failure) for c in summary.tcp] == [(CLEAN_IP, None)]
            assert summary.tls == () and summary.http == ()

    run(test)


def test_an_ip_literal_endpoint_is_measured_without_dns() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            reply = await bed.post({"service": "relayed", "endpoint": RELAY_IP})
            assert reply.status == 200, reply.body
            summary = Summary.from_json(reply.body)
            assert summary.dns is None
            assert [(c.address, c.failure) for c in summary.tcp] == [(RELAY_IP, None)]
            assert bed.traffic() == (0, 1, 0)
            # The canary name was never asked: nothing but the endpoint was measured.
            assert CANARY not in bed.censor.resolver.queries

    run(test)


def test_a_measurement_past_the_deadline_is_a_504_and_frees_its_slot() -> None:
    async def test() -> None:
        timeouts = Timeouts(dns=1.0, connect=1.0, tls=1.5, http=2.0, cycle=0.3)
        async with control_bed(timeouts=timeouts, max_in_flight=1) as bed:
            assert bed.control.deadline == 0.3
            started = time.monotonic()
            reply = await bed.post({"service": "slow", "endpoint": STALL_IP})
            elapsed = time.monotonic() - started
            assert reply.status == 504
            assert reply.body == {"error": "measurement did not finish within 0.3 s"}
            assert 0.3 <= elapsed < 1.3
            assert bed.control.in_flight.count == 0
            assert bed.sample("msgprobe_control_in_flight") == 0
            assert bed.sample("msgprobe_control_requests_total", result="timeout") == 1
            again = await bed.post({"service": "relayed", "endpoint": RELAY_IP})
            assert again.status == 200

    run(test)


def test_the_deadline_is_the_cycle_timeout_capped_at_30_s() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            assert bed.config.timeouts.cycle == 60
            assert bed.control.deadline == 30

    run(test)


def test_healthy_and_its_own_metrics() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            assert await bed.get("/-/healthy") == (200, "OK\n")
            await bed.post({"service": "relayed", "endpoint": RELAY_IP})
            await bed.post({"service": "relayed", "endpoint": RELAY_IP}, token="wrong")
            await bed.post({"service": "nope", "endpoint": RELAY_IP})
            status, text = await bed.get("/metrics")
            assert status == 200
            families = {f.name: f for f in text_string_to_metric_families(text)}
            requests = {s.labels["result"]: s.value for s in families["msgprobe_control_requests"].samples}
            assert requests == {
                "ok": 1,
                "unauthorized": 1,
                "forbidden": 1,
                "bad_request": 0,
                "too_large": 0,
                "rate_limited": 0,
                "busy": 0,
                "timeout": 0,
                "error": 0,
            }
            assert families["msgprobe_control_in_flight"].samples[0].value == 0
            count = bed.sample("msgprobe_control_request_duration_seconds_count")
            assert count == 1  # refusals are not observed: only what was measured

    run(test)


def test_a_measurement_the_control_could_not_run_is_a_500_not_a_summary_with_holes() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            bed.control.kit = replace(bed.control.kit, resolver_problems=("resolver system: no nameserver",))
            reply = await bed.post(CLEAN)
            assert (reply.status, reply.body) == (
                500,
                {"error": "the control could not measure this endpoint"},
            )
            assert bed.sample("msgprobe_control_requests_total", result="error") == 1
            assert bed.traffic() == (0, 0, 0)

    run(test)


def test_the_web_configs_basic_auth_guards_every_route_but_the_measure_one() -> None:
    """Basic auth and the bearer token share the Authorization header: the measure
    route takes its tokens; the web config's middleware guards the rest."""

    @web.middleware
    async def deny_all(request: web.Request, handler: Handler) -> web.StreamResponse:
        return web.Response(status=401, text="Unauthorized\n")

    async def test() -> None:
        async with control_bed(middlewares=[deny_all]) as bed:
            assert (await bed.get("/metrics"))[0] == 401
            assert (await bed.get("/-/healthy"))[0] == 401
            assert (await bed.post({"service": "relayed", "endpoint": RELAY_IP})).status == 200
            assert (await bed.post({"service": "relayed", "endpoint": RELAY_IP}, token=None)).status == 401

    run(test)
