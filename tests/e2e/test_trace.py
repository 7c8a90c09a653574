"""The trace against the loopback censor: every operation recorded, HTTP on
the TCP/TLS check's own connection, follow-ups with records of their own."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from probe.config.model import ResolverSpec
from probe.measure.dns import SystemResolver
from probe.measure.toolkit import Resources, open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.middlebox import Reset
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import Failure, Method, Operation, Purpose, Status
from tests.e2e.harness import FINGERPRINTS, by_service, run


@pytest.fixture(scope="module")
def cycle() -> dict[str, object]:
    return by_service(
        run(
            [
                FakeService("clean-messenger"),
                FakeService("tls-reset", tls=Reset()),
                FakeService("https-only-reset", tls=Reset(), checks=("dns", "tcp", "https")),
                FakeService("plain", checks=("dns", "tcp", "http")),
            ]
        )
    )


def test_https_rides_the_tls_checks_connection(cycle: dict[str, object]) -> None:
    result = cycle["clean-messenger"]
    trace = result.observations.trace  # type: ignore[attr-defined]
    connects = [e for e in trace if e.operation is Operation.CONNECT]
    shakes = [e for e in trace if e.operation is Operation.TLS_HANDSHAKE]
    trips = [e for e in trace if e.operation is Operation.HTTP_ROUND_TRIP]
    assert (len(connects), len(shakes), len(trips)) == (1, 1, 1)
    assert connects[0].transaction == shakes[0].transaction == trips[0].transaction
    assert connects[0].started <= shakes[0].started <= trips[0].started
    (http,) = result.observations.http  # type: ignore[attr-defined]
    assert http.reused_connection and http.status == 200
    # Bytes were counted while the response came in: goodput data for later checks.
    assert trips[0].bytes_sent > 0 and trips[0].bytes_received >= http.body_length > 0
    assert trips[0].samples and trips[0].samples[-1].received == trips[0].bytes_received
    assert http.time_to_first_byte is not None and 0 <= http.time_to_first_byte <= trips[0].duration


def test_http_on_a_port_without_tcp_check_dials_its_own_measured_connection(cycle: dict[str, object]) -> None:
    trace = cycle["plain"].observations.trace  # type: ignore[attr-defined]
    (own,) = [e for e in trace if e.operation is Operation.CONNECT and e.purpose is Purpose.HTTP]
    (trip,) = [e for e in trace if e.operation is Operation.HTTP_ROUND_TRIP]
    assert trip.transaction == own.transaction and trip.port == own.port
    (http,) = cycle["plain"].observations.http  # type: ignore[attr-defined]
    assert not http.reused_connection and http.status == 200


def test_every_dns_transmission_and_reply_is_recorded(cycle: dict[str, object]) -> None:
    trace = cycle["clean-messenger"].observations.trace  # type: ignore[attr-defined]
    queries = [e for e in trace if e.operation is Operation.DNS_QUERY]
    assert {e.detail.split()[1] for e in queries} == {"A", "AAAA"}
    for query in queries:
        sends = [e for e in trace if e.operation is Operation.DNS_SEND and e.transaction == query.transaction]
        replies = [
            e for e in trace if e.operation is Operation.DNS_REPLY and e.transaction == query.transaction
        ]
        assert len(sends) >= 1 and len(replies) >= 1


def test_the_decoy_has_its_own_connection_and_handshake(cycle: dict[str, object]) -> None:
    result = cycle["tls-reset"]
    assert result.verdict.method is Method.TLS_RESET  # type: ignore[attr-defined]
    trace = result.observations.trace  # type: ignore[attr-defined]
    decoys = [e for e in trace if e.purpose is Purpose.DECOY]
    assert [e.operation for e in decoys] == [Operation.CONNECT, Operation.TLS_HANDSHAKE]
    assert decoys[1].failure is None and decoys[1].detail == "example.com"
    real = next(e for e in trace if e.operation is Operation.TLS_HANDSHAKE and e.purpose is Purpose.CHECK)
    assert real.failure is Failure.CONNECTION_RESET and real.transaction != decoys[0].transaction


def test_an_https_request_reset_in_its_own_handshake_is_tls_reset(cycle: dict[str, object]) -> None:
    """No tls: check on the port: the HTTP check's handshake is the one reset, and says so."""
    result = cycle["https-only-reset"]
    v = result.verdict  # type: ignore[attr-defined]
    assert (v.status, v.method) == (Status.BLOCKED, Method.TLS_RESET), v.evidence
    assert "during the TLS handshake" in v.evidence
    (real,) = [h for h in result.observations.http if not h.decoy]  # type: ignore[attr-defined]
    assert real.failed_operation is Operation.TLS_HANDSHAKE


def test_no_resolver_configuration_is_an_error_not_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "resolv.conf"

    async def measure() -> CycleResult:
        with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
            async with LoopbackCensor(Path(workdir), max_services=1) as bed:
                service = await bed.add(FakeService("clean-messenger"))
                config = bed.config([service], resolvers=(ResolverSpec("system", "system"),))
                resources = replace(Resources.create(config), system=SystemResolver(str(missing)))
                async with open_toolkit(config, resources=resources) as kit:
                    return await run_cycle(kit, FINGERPRINTS, config.services)

    (result,) = asyncio.run(measure()).results
    assert result.verdict.status is Status.ERROR
    assert result.verdict.evidence == f"resolver system: no nameserver in {missing}"
    assert result.observations.trace == ()  # nothing was sent anywhere
