"""Every refusal: its status, its message, and not one packet to the testbed.

``traffic()`` counts DNS queries at the censor's resolver and connections at
the counting listeners; a refused request must leave all three unchanged
(a hostname endpoint is resolved before anything connects, so a leak for it
shows as a query)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from probe.control.api import MAX_BODY
from tests.control.bed import RELAY_IP, STALL_IP, TOKENS, Bed, Reply, control_bed

CLEAN = {"service": "clean", "endpoint": "clean.msgprobe.test"}
RELAYED = {"service": "relayed", "endpoint": RELAY_IP}


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


async def refused(bed: Bed, status: int, message: str, body: Any = None, **kw: Any) -> Reply:
    before = bed.traffic()
    reply = await bed.post(body, **kw)
    assert (reply.status, reply.body) == (status, {"error": message}), (body, kw)
    await asyncio.sleep(0.02)  # a leak that answered first and measured after would show now
    assert bed.traffic() == before, f"refused {body!r} yet the control sent packets"
    return reply


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (the state is the server's, not an event's)
            await asyncio.sleep(0.005)


def test_no_token_or_a_wrong_one_is_401_before_the_body_is_read() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            reply = await refused(bed, 401, "missing bearer token", CLEAN, token=None)
            assert reply.headers["WWW-Authenticate"] == 'Bearer realm="msgprobe control"'
            await refused(bed, 401, "unknown token", CLEAN, token="not-a-token")
            await refused(bed, 401, "unknown token", CLEAN, token=TOKENS["probe-a"] + "x")
            await refused(
                bed, 401, "missing bearer token", CLEAN, token=None, headers={"Authorization": "Basic dTpw"}
            )
            await refused(bed, 401, "unknown token", CLEAN, token="x" * 200)
            await refused(bed, 401, "missing bearer token", CLEAN, token="x" * 300)  # never hashed
            # Nothing is read before the token: not even an oversized or broken body.
            await refused(bed, 401, "missing bearer token", token=None, raw=b"x" * (MAX_BODY * 4))
            await refused(bed, 401, "unknown token", token="nope", raw=b"{not json")
            assert bed.sample("msgprobe_control_requests_total", result="unauthorized") == 8

    run(test)


def test_an_endpoint_outside_the_catalog_is_403() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            outside = [
                ("clean", "other.msgprobe.test"),
                ("clean", "example.org"),
                ("relayed", "clean.msgprobe.test"),  # in the catalog, under another service
                ("nope", RELAY_IP),
                ("clean", "CLEAN.msgprobe.test"),  # exactly as in the catalog, or not at all
            ]
            for service, endpoint in outside:
                message = f"endpoint {endpoint!r} of service {service!r} is not in this control's catalog"
                await refused(bed, 403, message, {"service": service, "endpoint": endpoint})
            assert bed.sample("msgprobe_control_requests_total", result="forbidden") == len(outside)

    run(test)


def test_a_check_the_endpoint_does_not_have_is_403() -> None:
    """No port or URL outside the catalog: the control is not a port scanner or a proxy."""

    async def test() -> None:
        async with control_bed() as bed:
            port = bed.censor.tls_port
            clean = ", ".join(c.label for c in bed.clean.endpoints[0].checks)
            asked = [
                (CLEAN, ["tcp:22"], "tcp:22", "clean.msgprobe.test", clean),
                (
                    CLEAN,
                    ["dns", "http:https://example.org/"],
                    "http:https://example.org/",
                    "clean.msgprobe.test",
                    clean,
                ),
                (CLEAN, [f"tls:{port + 1}"], f"tls:{port + 1}", "clean.msgprobe.test", clean),
                (RELAYED, ["tcp:22"], "tcp:22", RELAY_IP, f"tcp:{port}"),
                (RELAYED, [f"tls:{port}"], f"tls:{port}", RELAY_IP, f"tcp:{port}"),  # the port, not the kind
                (
                    RELAYED,
                    [f"http:http://{RELAY_IP}:{port}/"],
                    f"http:http://{RELAY_IP}:{port}/",
                    RELAY_IP,
                    f"tcp:{port}",
                ),
            ]
            for base, checks, bad, host, configured in asked:
                message = f"check {bad!r} is not configured for {host} (only {configured})"
                await refused(bed, 403, message, {**base, "checks": checks})

    run(test)


def test_a_private_or_reserved_address_is_403() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            reserved = ["10.0.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1"]
            reserved += ["::1", "fd00::1", "fe80::1", "::ffff:10.0.0.1"]
            for address in reserved:
                shown = ipaddress.ip_address(address)
                message = f"address {shown} is private or reserved: this control does not measure it"
                await refused(bed, 403, message, {**CLEAN, "addresses": [RELAY_IP, address]})
                await refused(bed, 403, message, {**RELAYED, "addresses": [address]})
            # 127.0.0.0/8 is measured here only because this control's config names it a test network.
            assert [str(n) for n in bed.config.test_networks] == ["127.0.0.0/8"]

    run(test)


def test_malformed_is_400_with_the_contracts_message() -> None:
    async def test() -> None:
        async with control_bed() as bed:
            cases: list[tuple[bytes, str]] = [
                (b"{not json", "request body is not JSON"),
                (b"", "request body is not JSON"),
                (b"\xff\xfe{}", "request body is not UTF-8"),
                (b"[]", "request: expected an object"),
                (b'{"service": 1, "endpoint": "x"}', "service: expected a string of at most 512 characters"),
                (b'{"service": "clean"}', "endpoint: expected a string of at most 512 characters"),
                (
                    b'{"service": "clean", "endpoint": "x", "url": "http://a/"}',
                    "request: unknown field 'url'",
                ),
                (
                    b'{"service": "clean", "endpoint": "x", "addresses": ["example.org"]}',
                    "addresses[]: 'example.org' is not an IP address",
                ),
                (
                    b'{"service": "clean", "endpoint": "x", "addresses": '
                    + b'["1.1.1.1"'
                    + b', "1.1.1.1"' * 16
                    + b"]}",
                    "addresses: expected a list of at most 16 items",
                ),
                (
                    b'{"service": "clean", "endpoint": "x", "checks": "tcp:443"}',
                    "checks: expected a list of at most 16 items",
                ),
            ]
            for raw, message in cases:
                await refused(bed, 400, message, raw=raw)
            assert bed.sample("msgprobe_control_requests_total", result="bad_request") == len(cases)

    run(test)


def test_a_body_over_the_limit_is_413_declared_or_streamed() -> None:
    async def chunked(size: int) -> AsyncIterator[bytes]:
        for _ in range(size // 1024):
            yield b" " * 1024

    async def test() -> None:
        async with control_bed() as bed:
            message = f"request body over {MAX_BODY} bytes"
            await refused(bed, 413, message, raw=b" " * (MAX_BODY + 1))
            await refused(bed, 413, message, raw=chunked(MAX_BODY + 4096))  # no Content-Length to trust
            # Exactly the limit is read (whitespace, then a real request).
            padded = (
                b" " * (MAX_BODY - 60) + b'{"service": "relayed", "endpoint": "' + RELAY_IP.encode() + b'"}'
            )
            assert len(padded) <= MAX_BODY
            assert (await bed.post(raw=padded)).status == 200
            assert bed.sample("msgprobe_control_requests_total", result="too_large") == 2

    run(test)


def test_beyond_max_in_flight_is_503_at_once() -> None:
    async def test() -> None:
        async with control_bed(max_in_flight=1) as bed:
            holder = asyncio.create_task(bed.post({"service": "slow", "endpoint": STALL_IP}))
            await until(lambda: bed.control.in_flight.count == 1 and bed.staller.accepted == 1)
            message = "busy: 1 measurements in flight (the limit); try later"
            reply = await refused(bed, 503, message, CLEAN)
            assert reply.headers["Retry-After"] == "1"
            await refused(bed, 503, message, RELAYED)
            assert bed.sample("msgprobe_control_in_flight") == 1
            assert (await holder).status == 200
            assert (await bed.post(RELAYED)).status == 200  # the slot is free again
            assert bed.sample("msgprobe_control_requests_total", result="busy") == 2

    run(test)


def test_over_the_rate_per_token_is_429_with_retry_after() -> None:
    async def test() -> None:
        now = [1000.0]
        async with control_bed(rate_per_minute=2, clock=lambda: now[0]) as bed:
            assert (await bed.post(RELAYED)).status == 200
            assert (await bed.post(RELAYED)).status == 200
            reply = await refused(bed, 429, "over 2 requests per minute", RELAYED)
            assert reply.headers["Retry-After"] == "30"
            # Refused before the body is read: a malformed one makes no difference.
            await refused(bed, 429, "over 2 requests per minute", raw=b"{not json")
            # Per token: another probe has its own allowance.
            assert (await bed.post(RELAYED, token=TOKENS["probe-b"])).status == 200
            now[0] += 30  # one request's worth refilled
            assert (await bed.post(RELAYED)).status == 200
            await refused(bed, 429, "over 2 requests per minute", RELAYED)
            assert bed.sample("msgprobe_control_requests_total", result="rate_limited") == 3

    run(test)
