"""T3 against the testbed's control peer (``msgprobe control``'s own server,
now over HTTPS): downloads and uploads with the real SNI and the decoy.

The probe's route to the peer passes a ``CensorProxy`` that polices flows
naming the service (as an SNI policer on the way abroad would): the
confirmation then shows the real name at the policer's rate and the decoy
fast, with the control peer as witness. Without the policer on that path,
T3 runs and finds nothing (T1 still proves the block at the endpoint)."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from probe.config.model import Throttle as ThrottleConfig
from probe.measure.toolkit import Resources, open_toolkit
from probe.model import ConfirmObservation
from probe.runner.cycle import run_cycle
from probe.testbed.control_peer import control_peer
from probe.testbed.middlebox import CensorProxy, Throttle
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import Method, Status
from tests.e2e.harness import FINGERPRINTS

POLICER = Throttle(32_000, 16_384)
PROXY_IP = "127.0.77.61"  # the policed path to the peer


async def _cycle(workdir: Path, *, police_peer: bool) -> Any:
    async with LoopbackCensor(workdir, max_services=1) as bed:
        fake = FakeService("throttled", tls=POLICER, checks=("dns", "tls", "https:/huge", "throttle"))
        service = await bed.add(fake)
        config = replace(bed.config([service]), throttle=ThrottleConfig(confirm=True, pairs=2))
        async with control_peer(bed, config, workdir) as peer:
            config = replace(config, control_peers=(peer,))
            parts = urlsplit(peer.url)
            assert parts.hostname and parts.port
            rules = {fake.host: POLICER} if police_peer else {}
            async with CensorProxy(PROXY_IP, 0, backend=(parts.hostname, parts.port), sni_rules=rules) as box:
                route = {(parts.hostname, parts.port): box.address}
                resources = replace(Resources.create(config), route=route)
                async with open_toolkit(config, resources=resources) as kit:
                    cycle = await run_cycle(kit, FINGERPRINTS, config.services)
    return cycle.results[0]


def _run(police_peer: bool) -> Any:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        return asyncio.run(_cycle(Path(workdir), police_peer=police_peer))


def test_confirmation_at_the_control_peer_shows_the_policer() -> None:
    result = _run(police_peer=True)
    assert (result.verdict.status, result.verdict.method) == (Status.BLOCKED, Method.THROTTLED)
    (confirm,) = [o for o in result.observations.other if isinstance(o, ConfirmObservation)]
    assert confirm.skipped is None and len(confirm.arms) == 4, confirm
    found = [f for f in result.findings if f.verdict.witnesses and f.verdict.witnesses[0].kind == "control"]
    assert found and "confirm at control peer" in found[0].verdict.evidence, result.findings
    (row,) = [r for r in result.checks if r.detail.get("stage") == "confirm"]
    assert not row.ok and row.detail["real_download_Bps"] * 10 <= row.detail["decoy_download_Bps"], row.detail


def test_confirmation_on_a_clean_path_finds_nothing() -> None:
    result = _run(police_peer=False)
    assert result.verdict.method is Method.THROTTLED  # T1's pairs at the endpoint still prove it
    (confirm,) = [o for o in result.observations.other if isinstance(o, ConfirmObservation)]
    assert confirm.skipped is None and all(a.failure is None for a in confirm.arms), confirm
    assert all(a.download_bytes >= 128 * 1024 and a.upload_bytes >= 64 * 1024 for a in confirm.arms)
    (row,) = [r for r in result.checks if r.detail.get("stage") == "confirm"]
    assert row.ok, row.detail


def test_an_http_control_peer_cannot_confirm_and_the_row_says_so(tmp_path: Path) -> None:
    from probe.config.model import ControlPeer
    from probe.control.client import Peer
    from probe.measure.budget import ByteBudget
    from probe.measure.confirm import measure_confirm
    from probe.measure.tls import TlsContexts
    from probe.measure.trace import Trace

    peer = Peer(ControlPeer("http://127.0.0.1:9", tmp_path / "token"), "token", None)
    budget = ByteBudget(10_000_000)
    o = asyncio.run(
        measure_confirm(
            Trace(),
            TlsContexts.create(),
            budget,
            peer,
            address="127.0.0.10",
            host="chat.example",
            decoy_sni="example.com",
            pairs=3,
            timeout=1.0,
        )
    )
    assert o.skipped is not None and "not https" in o.skipped and not o.arms
    assert budget.used == 0  # nothing reserved, nothing sent
