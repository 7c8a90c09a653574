"""The packet witnesses on loopback: the capture, the grouping and the rows, for real.

On loopback every "censor" of the testbed is the server's own kernel, so
its resets are genuine by every packet fingerprint (same TTL, one copy, no
race): the witness must say so and never mark them, while the verdict still
comes from the decoy. The testbed's DNS injector answers from the resolver's
own socket, so only its second reply to one transmission gives it away.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from probe.config.model import Config, Raw
from probe.model_packets import RawDns, RawReset
from probe.raw.capability import raw_problem
from probe.testbed.dns_rules import Inject
from probe.testbed.middlebox import Reset
from probe.testbed.scenarios import FakeService
from probe.vocab import Method, Status
from tests.conftest import REQUIRE_TOOLS, require_root
from tests.e2e.harness import by_service, run


@pytest.fixture(autouse=True)
def capable() -> None:
    require_root("captures on loopback (NET_RAW)")
    problem = raw_problem()
    if problem is not None:
        if REQUIRE_TOOLS:
            pytest.fail(problem)
        pytest.skip(problem)


def with_packets(config: Config) -> dict[str, Any]:
    return {"raw": replace(config.raw, packets=True)}


def rows(result: Any, prefix: str) -> list[Any]:
    return [r for r in result.checks if r.check.startswith(prefix)]


def test_a_servers_own_reset_is_witnessed_genuine_and_the_decoy_still_decides() -> None:
    result = by_service(run([FakeService("reset", tls=Reset())], raw=Raw(packets=True)))["reset"]
    assert result.verdict.status is Status.BLOCKED and result.verdict.method is Method.TLS_RESET
    resets = [o for o in result.observations.other if isinstance(o, RawReset)]
    check = [o for o in resets if o.purpose == "check"]
    assert len(check) == 1, resets
    witness = check[0]
    assert witness.step == "tls" and witness.trigger_sent and witness.failure is None
    assert witness.synack is not None and witness.resets[0].ttl == witness.synack.ttl == 64
    (row,) = rows(result, "raw:reset:")
    assert row.ok and row.detail["verdict"] == "genuine", row
    assert all(w.kind != "packet" for w in result.verdict.witnesses)


def test_a_closed_port_is_a_genuine_reset_to_the_syn() -> None:
    result = by_service(run([FakeService("closed", tcp="closed")], raw=Raw(packets=True)))["closed"]
    resets = [o for o in result.observations.other if isinstance(o, RawReset) and o.purpose == "check"]
    assert resets and all(o.step == "connect" and o.synack is None for o in resets)
    assert all(r.ok for r in rows(result, "raw:reset:"))
    assert result.verdict.status is not Status.BLOCKED


def test_two_replies_to_one_transmission_are_injected() -> None:
    result = by_service(run([FakeService("injected", dns=Inject(delay=0.02))], raw=Raw(packets=True)))[
        "injected"
    ]
    (witness,) = [o for o in result.observations.other if isinstance(o, RawDns)]
    assert witness.failure is None and len(witness.replies) == 2 and witness.baseline
    (row,) = rows(result, "raw:dns")
    assert not row.ok and any("2 different replies" in m for m in row.detail["injected"])
    assert result.verdict.method is Method.DNS_INJECTED


def test_a_clean_service_pays_no_raw_dns_query() -> None:
    result = by_service(run([FakeService("clean")], raw=Raw(packets=True)))["clean"]
    assert not [o for o in result.observations.other if isinstance(o, RawDns)]
    assert result.verdict.status is Status.OK
