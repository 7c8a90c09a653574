"""A certificate OpenSSL accepts and cryptography rejects costs nothing but its
own evidence: the handshake is a fact, the unreadable certificate is data,
every other endpoint of the cycle is measured, and ``msgprobe once`` exits 0.

The censor controls both halves (it resets the real SNI, so the decoy
handshake lands on its server), so before this was contained one such
certificate stopped every cycle.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import yaml

from probe.testbed.config_document import config_document
from probe.testbed.middlebox import Reset
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import Method, Purpose, Status
from tests.e2e.harness import by_service, run

FAKES = [
    FakeService("decoy-bad-san", tls=Reset(), backend="bad-der"),
    FakeService("decoy-duplicate-extension", tls=Reset(), backend="bad-der-duplicate"),
    FakeService("inspect-bad-san", backend="bad-der"),
    FakeService("clean-messenger"),
]


@pytest.fixture(scope="module")
def cycle() -> dict[str, object]:
    return by_service(run(FAKES))


@pytest.mark.parametrize("name", ["decoy-bad-san", "decoy-duplicate-extension"])
def test_a_decoy_landing_on_malformed_der_still_proves_the_reset(cycle: dict[str, object], name: str) -> None:
    result = cycle[name]
    v = result.verdict  # type: ignore[attr-defined]
    assert (v.status, v.method) == (Status.BLOCKED, Method.TLS_RESET), v.evidence
    (decoy,) = [t for t in result.observations.tls if t.purpose is Purpose.DECOY]  # type: ignore[attr-defined]
    assert decoy.failure is None and decoy.certificate is None
    assert decoy.certificate_error and decoy.certificate_error.split(":")[0] in (
        "ValueError",
        "DuplicateExtension",
    )


def test_an_unreadable_certificate_on_inspection_is_evidence(cycle: dict[str, object]) -> None:
    result = cycle["inspect-bad-san"]
    v = result.verdict  # type: ignore[attr-defined]
    assert v.status is Status.UNREACHABLE and "certificate unreadable: ValueError" in v.evidence, v.evidence
    (row,) = [r for r in result.checks if r.check.startswith("tls:")]  # type: ignore[attr-defined]
    assert str(row.detail["certificate_error"]).startswith("ValueError")


def test_the_rest_of_the_cycle_is_measured(cycle: dict[str, object]) -> None:
    assert cycle["clean-messenger"].verdict.status is Status.OK  # type: ignore[attr-defined]


def test_msgprobe_once_reports_and_exits_zero(tmp_path: Path) -> None:
    async def once() -> tuple[int, bytes, bytes]:
        async with LoopbackCensor(tmp_path, max_services=len(FAKES)) as bed:
            config = bed.config([await bed.add(f) for f in FAKES])
            path = tmp_path / "probe.yaml"
            path.write_text(yaml.safe_dump(config_document(config)))
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "probe",
                "once",
                "--config",
                str(path),
                "--format",
                "json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode or 0, out, err

    code, out, err = asyncio.run(once())
    assert code == 0, err.decode()
    assert b"Traceback" not in err
    report = json.loads(out)
    statuses = {r["service"]: (r["status"], r["method"]) for r in report["results"]}
    assert statuses["decoy-bad-san"] == ("blocked", "tls.reset")
    assert statuses["clean-messenger"] == ("ok", None)
