"""The built-in catalog: what it must cover, that it is internally consistent,
and that it measures end to end — pointed at the loopback censor, never at
the real services."""

from __future__ import annotations

import asyncio
import ipaddress
import tempfile
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from probe.cli import main
from probe.config.catalog import load_catalog
from probe.config.fingerprints import load_fingerprints
from probe.config.load import load_config
from probe.config.model import DEFAULT_WHITELIST_CANARIES, Check, Service
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


def _checks(service: str, host: str) -> set[str]:
    (endpoint,) = [e for e in CATALOG[service].endpoints if e.host == host]
    return {c.label for c in endpoint.checks}


def test_the_2026_kinds_sit_where_the_research_puts_them() -> None:
    # controls-throttling.md C: WhatsApp media CDNs throttled (then NSDI), Telegram slowed in
    # Feb 2026, Meta's calls filtered by STUN signature.
    assert {"throttle:443", "freeze:443"} <= _checks("whatsapp", "mmg.whatsapp.net")
    assert "throttle:443" in _checks("whatsapp", "media-arn2-1.cdn.whatsapp.net")
    assert "throttle:443" in _checks("telegram", "web.telegram.org")
    assert "stun:stun.fbsbx.com:3478" in _checks("fbmessenger", "stun.fbsbx.com")
    assert "updates2.signal.org" in {e.host for e in CATALOG["signal"].endpoints}


def test_throttle_freeze_and_stun_checks_are_few_and_measurable() -> None:
    kinds = (CheckKind.THROTTLE, CheckKind.FREEZE, CheckKind.STUN)
    new = [(s, e, c) for s, e in ENDPOINTS for c in e.checks if c.kind in kinds]
    for s, e, c in new:
        where = f"{s.name}/{e.host} {c.label}"
        # Active, or legacy where a check's argument is weakly sourced (the fbsbx STUN port).
        assert e.state in (EndpointState.ACTIVE, EndpointState.LEGACY) and e.source and e.confidence, where
        assert e.state is EndpointState.ACTIVE or c.kind == CheckKind.STUN, where
        if c.kind == CheckKind.THROTTLE:
            # T1 pairs a real SNI with a decoy: only a TLS host has one (never a DC literal).
            assert not e.is_ip and any(x.kind is CheckKind.TLS and x.port == c.port for x in e.checks), where
        if c.kind == CheckKind.STUN:
            assert c.url.rpartition(":")[0].strip("[]") == e.host.strip("[]"), where
    # Every throttle and freeze byte comes out of one daily budget (5 MB by default), and a
    # freeze transfer runs every cycle: the catalog spends it on the research's media CDNs only.
    assert sum(1 for _, _, c in new if c.kind == CheckKind.FREEZE) <= 1
    assert sum(1 for _, _, c in new if c.kind == CheckKind.THROTTLE) <= 4


def test_domestic_canaries_are_never_services() -> None:
    # Max and the other whitelisted domestic services witness a whitelist regime; their
    # verdicts are never published as a messenger's.
    canaries = {c for names in DEFAULT_WHITELIST_CANARIES.values() for c in names} | {"oneme.ru"}
    assert "max.ru" in canaries
    assert not CATALOG.keys() & {"max", "vk", "yandex", "gosuslugi"}
    judged = [f"{s.name}/{e.host}" for s, e in ENDPOINTS if _on(e.host, tuple(canaries))]
    assert not judged, judged


def test_targets_lists_the_new_check_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines()[1:] if line.strip() and len(line.split()) > 3}
    assert "throttle:443" in rows["mmg.whatsapp.net"] and "freeze:443" in rows["mmg.whatsapp.net"]
    assert "stun:stun.fbsbx.com:3478" in rows["stun.fbsbx.com"]


def _onto_the_testbed(services: list[Service], bed: LoopbackCensor) -> list[Service]:
    """throttle and freeze ports onto the testbed's TLS port, as retarget does for tcp/tls."""
    ports = (bed.http_port, bed.tls_port)

    def moved(check: Check) -> Check:
        if check.kind in (CheckKind.THROTTLE, CheckKind.FREEZE) and check.port not in ports:
            return replace(check, port=bed.http_port if check.port == 80 else bed.tls_port)
        return check

    return [
        replace(s, endpoints=tuple(replace(e, checks=tuple(map(moved, e.checks))) for e in s.endpoints))
        for s in services
    ]


def test_the_whole_catalog_measures_ok_against_a_clean_loopback_censor() -> None:
    async def scenario() -> tuple[int, set[Status], list[str]]:
        with tempfile.TemporaryDirectory() as workdir:
            count = sum(len(s.endpoints) for s in CATALOG.values())
            async with LoopbackCensor(Path(workdir), max_services=count) as bed:
                services = _onto_the_testbed(await bed.retarget(list(CATALOG.values())), bed)
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
