"""The built-in catalog: what it must cover, that it is internally consistent,
and that it measures end to end — pointed at the loopback censor, never at
the real services."""

from __future__ import annotations

import asyncio
import ipaddress
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from probe.config.catalog import load_catalog
from probe.config.fingerprints import load_fingerprints
from probe.config.load import load_config
from probe.config.nodes import builtin_path
from probe.measure.toolkit import open_toolkit
from probe.runner.cycle import run_cycle
from probe.testbed.scenarios import LoopbackCensor
from probe.vocab import CheckKind, EndpointState, Status

CATALOG = {s.name: s for s in load_catalog(builtin_path("targets.yaml"))}
REQUIRED = {
    "wechat",
    "line",
    "zello",
    "bbm",
    "bbme",
    "telegram",
    "whatsapp",
    "signal",
    "viber",
    "threema",
    "fbmessenger",
}
ENDPOINTS = [(s, e) for s in CATALOG.values() for e in s.endpoints]


def _on(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def test_required_services_with_sources() -> None:
    assert CATALOG.keys() >= REQUIRED
    missing = [f"{s.name}/{e.host}" for s, e in ENDPOINTS if not e.source]
    assert not missing, f"endpoints without a source: {missing}"


def test_every_service_names_its_domains_and_every_host_is_on_them() -> None:
    # A redirect from one of the service's own hosts to a sibling must never
    # read as `http.redirect`: every host name is on the declared domains.
    off = [f"{s.name}/{e.host}" for s, e in ENDPOINTS if not e.is_ip and not _on(e.host, s.domains)]
    assert not off, off
    for service in CATALOG.values():
        assert service.domains and service.endpoints, service.name


def test_bbm_consumer_is_defunct_and_bbm_enterprise_never_decides() -> None:
    assert {e.state for e in CATALOG["bbm"].endpoints} == {EndpointState.DEFUNCT}
    assert {e.state for e in CATALOG["bbme"].endpoints} == {EndpointState.LEGACY}


def test_telegram_dc_ip_literals_are_posted_to_on_80_and_443_like_ooni() -> None:
    dcs = [e for e in CATALOG["telegram"].endpoints if e.is_ip and e.state is EndpointState.ACTIVE]
    assert len(dcs) >= 6
    posted = 0
    for e in dcs:
        assert all(c.kind is not CheckKind.DNS for c in e.checks), e.host
        assert {c.port for c in e.checks if c.kind is CheckKind.TCP} == {80, 443}, e.host
        posts = {c.url for c in e.checks if c.kind is CheckKind.HTTP_POST}
        if posts:
            # Plain HTTP on both ports: the DCs do not speak TLS on 443.
            assert posts == {f"http://{e.host}/", f"http://{e.host}:443/"}, e.host
            posted += 1
    assert posted >= 6
    # Every DC address lies in the service's own expected prefixes.
    prefixes = CATALOG["telegram"].expected.prefixes
    for e in CATALOG["telegram"].endpoints:
        if e.is_ip:
            address = ipaddress.ip_address(e.host)
            assert any(address.version == p.version and address in p for p in prefixes), e.host


def test_ipv6_literals_never_decide_a_service() -> None:
    # An IPv4-only vantage cannot route them; that is not the service's state.
    v6 = [e for _, e in ENDPOINTS if e.is_ip and ":" in e.host]
    assert v6 and all(e.state is EndpointState.LEGACY for e in v6)


def test_wechat_long_link_is_plain_tcp_and_short_link_is_http() -> None:
    endpoints = {e.host: e for e in CATALOG["wechat"].endpoints}
    for host in ("long.weixin.qq.com", "szlong.weixin.qq.com", "hklong.weixin.qq.com", "sglong.wechat.com"):
        long_link = endpoints[host]
        assert {c.port for c in long_link.checks if c.kind is CheckKind.TCP} == {80, 443, 8080}, host
        assert not [c for c in long_link.checks if c.kind is CheckKind.TLS], host  # MMTLS is not TLS
    short = endpoints["short.weixin.qq.com"].checks
    assert [c.url for c in short if c.kind is CheckKind.HTTP] == ["http://short.weixin.qq.com/"]
    assert any(c.kind is CheckKind.HTTP_POST for c in endpoints["szextshort.weixin.qq.com"].checks)


def test_wechat_mainland_hosts_assert_no_networks() -> None:
    # The research: mainland servers sit in carrier IDC space, not Tencent's ASNs.
    for e in CATALOG["wechat"].endpoints:
        if e.host.endswith(".qq.com"):
            assert not e.expected.asserted, e.host
    assert CATALOG["wechat"].endpoints[0].expected.asns  # web.wechat.com: Tencent


def test_urls_stay_on_their_endpoint_and_checks_are_supported() -> None:
    for s, e in ENDPOINTS:
        assert e.checks, f"{s.name}/{e.host} has no checks"
        for c in e.checks:
            if c.kind in (CheckKind.HTTP, CheckKind.HTTP_POST):
                assert urlsplit(c.url).hostname == e.host.strip("[]"), c.url


def test_the_whole_catalog_measures_ok_against_a_clean_loopback_censor() -> None:
    async def scenario() -> tuple[int, set[Status], list[str]]:
        with tempfile.TemporaryDirectory() as workdir:
            count = sum(len(s.endpoints) for s in CATALOG.values())
            async with LoopbackCensor(Path(workdir), max_services=count) as bed:
                services = await bed.retarget(list(CATALOG.values()))
                config = bed.config(services)
                async with open_toolkit(config) as kit:
                    cycle = await run_cycle(kit, load_fingerprints(), config.services)
        bad = [
            f"{r.service}/{r.endpoint}: {r.verdict.evidence}"
            for r in cycle.results
            if r.verdict.status is not Status.OK
        ]
        return len(cycle.results), {r.verdict.status for r in cycle.results}, bad

    measured, statuses, bad = asyncio.run(scenario())
    assert measured > 100
    # A clean censor serves every endpoint, defunct ones included: all must be ok.
    assert statuses == {Status.OK}, bad[:5]


def test_embedded_default_points_at_the_catalog() -> None:
    assert {s.name for s in load_config().services} == set(CATALOG)
