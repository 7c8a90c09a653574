"""The built-in catalog: what it must cover, and that it measures end to end
— pointed at the loopback censor, never at the real services."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from probe.config import load_catalog
from probe.config.fingerprints import load_fingerprints
from probe.config.load import builtin_path, load_config
from probe.measure.endpoint import open_toolkit
from probe.runner.cycle import run_cycle
from probe.testbed.scenarios import LoopbackCensor
from probe.vocab import CheckKind, EndpointState, Status

CATALOG = {s.name: s for s in load_catalog(builtin_path("targets.yaml"))}
REQUIRED = {
    "wechat",
    "line",
    "zello",
    "bbm",
    "telegram",
    "whatsapp",
    "signal",
    "viber",
    "threema",
    "fbmessenger",
}


def test_required_services_with_sources() -> None:
    assert CATALOG.keys() >= REQUIRED
    for service in CATALOG.values():
        for e in service.endpoints:
            assert e.source, f"{service.name}/{e.host} has no source"


def test_bbm_has_defunct_endpoints() -> None:
    states = {e.state for e in CATALOG["bbm"].endpoints}
    assert EndpointState.DEFUNCT in states


def test_telegram_dc_ip_literals_with_http_post_on_80_and_443() -> None:
    dcs = [e for e in CATALOG["telegram"].endpoints if e.is_ip]
    assert len(dcs) >= 5
    posts = {c.url for e in dcs for c in e.checks if c.kind is CheckKind.HTTP_POST}
    assert any(u.endswith(":443/") for u in posts) and any(u.count(":") == 1 for u in posts)
    assert all(c.kind is not CheckKind.DNS for e in dcs for c in e.checks)


def test_wechat_long_link_is_plain_tcp_and_short_link_is_http() -> None:
    endpoints = {e.host: e for e in CATALOG["wechat"].endpoints}
    long_link = endpoints["long.weixin.qq.com"]
    assert {c.port for c in long_link.checks if c.kind is CheckKind.TCP} == {80, 443, 8080}
    assert not [c for c in long_link.checks if c.kind is CheckKind.TLS]  # MMTLS is not TLS
    assert any(c.kind is CheckKind.HTTP for c in endpoints["short.weixin.qq.com"].checks)


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
