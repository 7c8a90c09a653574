"""Resolver transports, late DNS replies and the ASN database, against the loopback censor."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from probe.config.model import Expected, ResolverSpec
from probe.measure.asn import AsnDatabase
from probe.measure.toolkit import open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.resolver import Answer, Inject
from probe.testbed.scenarios import GENUINE_IP, WRONG_NAME_IP, FakeService, LoopbackCensor
from probe.vocab import Method, Status
from tests.e2e.harness import FINGERPRINTS, by_service, run


def _resolver_forms(bed: LoopbackCensor) -> dict[str, ResolverSpec]:
    host, port = bed.resolver.address
    return {
        "udp": ResolverSpec(f"{host}:{port}", "udp", host, port),
        "tcp": ResolverSpec(f"tcp://{host}:{port}", "tcp", host, port),
        "doh": ResolverSpec(bed.control.url, "doh", bed.control.host, bed.control.port, bed.control.url),
    }


def test_udp_tcp_and_doh_resolvers_all_measure_the_clean_service() -> None:
    async def scenario() -> dict[str, tuple[Status, str]]:
        out = {}
        with tempfile.TemporaryDirectory() as workdir:
            async with LoopbackCensor(Path(workdir), max_services=1) as bed:
                service = await bed.add(FakeService("clean"))
                for name, spec in _resolver_forms(bed).items():
                    config = bed.config([service], resolvers=(spec,))
                    async with open_toolkit(config) as kit:
                        result = (await run_cycle(kit, FINGERPRINTS, config.services)).results[0]
                    transport = next(o.transport for o in result.observations.dns if o.role == "probe")
                    out[name] = (result.verdict.status, transport)
        return out

    assert asyncio.run(scenario()) == {
        "udp": (Status.OK, "udp"),
        "tcp": (Status.OK, "tcp"),
        "doh": (Status.OK, "doh"),
    }


def test_a_second_reply_to_one_query_is_recorded_and_is_dns_injected() -> None:
    cycle = run(
        [FakeService("injected", dns=Inject([GENUINE_IP], ["127.0.0.10"], delay=0.01))], injection_window=0.3
    )
    result = cycle.results[0]
    first = next(o for o in result.observations.dns if o.role == "probe" and o.qtype == "A")
    assert first.addresses == (GENUINE_IP,)
    assert [r.addresses for r in first.extra_replies] == [("127.0.0.10",)]
    assert result.verdict.method is Method.DNS_INJECTED


def _asn_database(path: Path, networks: dict[str, int]) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for network, asn in networks.items():
        writer.insert_network(IPSet([network]), {"autonomous_system_number": asn})
    writer.to_db_file(str(path))
    return path


def test_asn_database_lookup(tmp_path: Path) -> None:
    db = AsnDatabase(_asn_database(tmp_path / "asn.mmdb", {"127.0.0.0/24": 64500, "127.0.1.0/24": 64501}))
    try:
        assert (db.lookup("127.0.0.9"), db.lookup("127.0.1.9"), db.lookup("10.0.0.1")) == (64500, 64501, None)
    finally:
        db.close()


def test_expected_asns_decide_consistency_without_prefixes(tmp_path: Path) -> None:
    """Answers judged by ASN alone: the service's own AS is fine, another AS
    that disagrees with the control and fails TLS is dns.inconsistent."""
    database = _asn_database(tmp_path / "asn.mmdb", {"127.0.0.0/28": 64501, "127.0.0.16/28": 64500})

    async def scenario() -> CycleResult:
        # Services from 127.0.0.16 on (AS64500); the wrong-name server is 127.0.0.6 (AS64501).
        async with LoopbackCensor(tmp_path, first_ip=16, max_services=2) as bed:
            genuine = await bed.add(FakeService("by-asn-ok"))
            hijacked = await bed.add(FakeService("by-asn-bad", dns=Answer([WRONG_NAME_IP])))
            services = [
                replace(s, endpoints=tuple(replace(e, expected=Expected(asns=(64500,))) for e in s.endpoints))
                for s in (genuine, hijacked)
            ]
            config = bed.config(services, asn_database=database)
            async with open_toolkit(config) as kit:
                return await run_cycle(kit, FINGERPRINTS, config.services)

    results = by_service(asyncio.run(scenario()))
    ok, bad = results["by-asn-ok"], results["by-asn-bad"]
    assert ok.verdict.status is Status.OK, ok.verdict.evidence
    assert dict(ok.observations.asns)[ok.observations.tcp[0].address] == 64500
    assert (bad.verdict.status, bad.verdict.method) == (Status.BLOCKED, Method.DNS_INCONSISTENT), (
        bad.verdict.evidence
    )
