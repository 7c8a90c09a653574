"""``tcp.freeze`` through a real middlebox: the censor's iptables drops every
packet of a flow to the service once it carried 16 KB (``connbytes``, both
directions, no reset), as the 2025 "TCP 16-20" filter does.

The network is ``tests.netns.topology``'s (client — censor — servers —
control) with this module's addresses (10.77.2.70–75) on the servers' link
and its servers (``tests.netns.freeze_serve``). The probe runs ``msgprobe
once --format json`` in the client namespace; the control peer ``msgprobe
control`` in the control namespace reaches the service without the censor.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from probe.control import tokens
from probe.measure.transfer import RESERVATION, TARGET
from tests.conftest import require_netns
from tests.netns import topology
from tests.netns.freeze_serve import ADDRESSES, BULK_IPS, FROZEN_IP, RESOLVER_IP
from tests.netns.topology import CONTROL_IP, CONTROL_PORT, Network

PEER = f"{CONTROL_IP}:{CONTROL_PORT}"
ONCE_TIMEOUT = 90.0  # s for one `msgprobe once`: the stall is 1.5 s, every step bounded far under this
START_TIMEOUT = 30.0
TIMEOUTS = {"dns": "2s", "connect": "3s", "tls": "3s", "http": "5s", "control": "20s", "cycle": "60s"}
FREEZE_AFTER = 16_384  # bytes on the wire, both directions: the reported ~16 KB
# One reservation; once a whole transfer (~82 KB) is charged, not another, in any order.
BUDGET = RESERVATION + 40_000

FROZEN: dict[str, Any] = {
    "name": "frozen",
    "expected": {"prefixes": [f"{FROZEN_IP}/32"]},
    "endpoints": [
        {
            "host": "frozen.msgprobe.test",
            "checks": ["dns", "tcp:443", "tls:443", "freeze:443"],
            "source": "tests/netns: HTTPS behind a connbytes freeze",
        }
    ],
}
BULK: list[dict[str, Any]] = [
    {
        "name": f"bulk{i}",
        "expected": {"prefixes": [f"{ip}/32"]},
        "endpoints": [
            {
                "host": f"bulk{i}.msgprobe.test",
                "checks": ["dns", "tcp:80", "freeze:80"],
                "source": "tests/netns: a keep-alive server counting bytes",
            }
        ],
    }
    for i, ip in enumerate(BULK_IPS, 1)
]


def _document(workdir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "catalog": "none",
        "confirm": 1,
        "timeouts": TIMEOUTS,
        "resolvers": [RESOLVER_IP],
        "tls": {"ca_bundle": str(workdir / "ca.pem")},
        "test_networks": ["10.77.0.0/16"],
        "services": [FROZEN],
        **extra,
    }


def _write(workdir: Path, name: str, document: dict[str, Any]) -> None:
    (workdir / name).write_text(yaml.safe_dump(document), encoding="utf-8")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netns-freeze")


@pytest.fixture(scope="module")
def network(workdir: Path) -> Iterator[Network]:
    # Before anything is created: without root or the tools each test skips with
    # the reason, and fails in CI (CI=true or MSGPROBE_REQUIRE_TOOLS=1): a skipped
    # freeze test would hide a broken detector.
    require_netns()
    token = tokens.add(workdir / "tokens", "netns-probe")
    (workdir / "token").write_text(token + "\n", encoding="utf-8")
    peers = {"control_peers": [{"url": f"http://{PEER}", "token_file": str(workdir / "token")}]}
    _write(workdir, "probe-peer.yaml", _document(workdir, **peers))
    _write(workdir, "probe-alone.yaml", _document(workdir))
    canary = {"probe": {"country": "XX"}, "whitelist_canaries": {"XX": ["home.msgprobe.test"]}}
    _write(workdir, "probe-canary.yaml", _document(workdir, **canary))
    _write(
        workdir,
        "probe-budget.yaml",
        {**_document(workdir), "services": BULK, "throttle": {"daily_bytes": BUDGET}},
    )
    _write(workdir, "control.yaml", _document(workdir))
    with topology.network() as net:
        net.start_servers(
            "tests.netns.freeze_serve", workdir, addresses=ADDRESSES, stdin=True, timeout=START_TIMEOUT
        )
        peer = net.start(
            net.control,
            "control",
            [
                sys.executable, "-m", "probe", "control",
                "--config.file", str(workdir / "control.yaml"),
                "--tokens.file", str(workdir / "tokens"),
                "--web.listen-address", PEER,
            ],
        )  # fmt: skip
        peer.stderr.expect("control listening", START_TIMEOUT)
        yield net
    assert not [n for n in topology.ours() if net.tag in n], "namespaces left behind"


@pytest.fixture
def net(network: Network) -> Iterator[Network]:
    with network.flushed():
        yield network


def freeze_service(net: Network) -> None:
    """Drop every packet of a flow to or from the service once it carried FREEZE_AFTER bytes."""
    count = ["-m", "connbytes", "--connbytes", f"{FREEZE_AFTER}:", "--connbytes-dir", "both"]
    count += ["--connbytes-mode", "bytes", "-j", "DROP"]
    net.censor_rule("-A", "FORWARD", "-d", FROZEN_IP, "-p", "tcp", "--dport", "443", *count)
    net.censor_rule("-A", "FORWARD", "-s", FROZEN_IP, "-p", "tcp", "--sport", "443", *count)


def once(net: Network, workdir: Path, config: str) -> dict[str, dict[str, Any]]:
    report = net.once(workdir / config, timeout=ONCE_TIMEOUT)
    return {r["service"]: r for r in report["results"]}


def verdict(result: dict[str, Any], status: str, method: str | None) -> dict[str, Any]:
    evidence: dict[str, Any] = result["evidence"]
    assert (result["status"], result["method"]) == (status, method), json.dumps(evidence, indent=1)
    return evidence


def transfers(result: dict[str, Any], purpose: str = "check") -> list[dict[str, Any]]:
    return [o for o in result["observations"]["other"] if o.get("purpose") == purpose and "stalled" in o]


def freeze_row(result: dict[str, Any]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [c for c in result["checks"] if c["check"].startswith("freeze:")]
    (row,) = rows
    return row


def test_an_unfrozen_path_carries_the_whole_transfer(net: Network, workdir: Path) -> None:
    result = once(net, workdir, "probe-alone.yaml")["frozen"]
    verdict(result, "ok", None)
    (o,) = transfers(result)
    assert o["sent"] >= TARGET and o["received"] >= TARGET and not o["stalled"], o
    assert freeze_row(result)["ok"] is True


def test_a_connbytes_freeze_is_tcp_freeze_where_the_control_carries_it(net: Network, workdir: Path) -> None:
    freeze_service(net)
    result = once(net, workdir, "probe-peer.yaml")["frozen"]
    evidence = verdict(result, "blocked", "tcp.freeze")
    assert evidence["address"] == FROZEN_IP and evidence["failure"] == "generic_timeout_error"
    assert [w["kind"] for w in evidence["witnesses"]] == ["control"], evidence
    assert f"control peer {PEER} carried" in evidence["witnesses"][0]["detail"]
    assert "stalled after" in evidence["summary"] and "no reset" in evidence["summary"], evidence
    (o,) = transfers(result)
    # 16 KB on the wire, both directions, TLS handshake and headers included: the
    # application bytes stop short of it, plus the request written when it froze.
    assert o["stalled"] and 6_000 <= o["sent"] + o["received"] <= FREEZE_AFTER + 4_096, o
    row = freeze_row(result)
    assert row["ok"] is False and row["stalled"] is True


def test_without_a_witness_the_freeze_is_unreachable_stalled_after(net: Network, workdir: Path) -> None:
    freeze_service(net)
    evidence = verdict(once(net, workdir, "probe-alone.yaml")["frozen"], "unreachable", None)
    assert evidence["witnesses"] == [] and "stalled after" in evidence["summary"], evidence


def test_a_domestic_canary_that_carries_the_transfer_is_the_witness(net: Network, workdir: Path) -> None:
    freeze_service(net)
    result = once(net, workdir, "probe-canary.yaml")["frozen"]
    evidence = verdict(result, "blocked", "tcp.freeze")
    assert [w["kind"] for w in evidence["witnesses"]] == ["canary"], evidence
    assert "canary home.msgprobe.test carried" in evidence["witnesses"][0]["detail"]
    (canary,) = transfers(result, "canary")
    assert canary["sent"] >= TARGET and not canary["stalled"]


def _counts(net: Network) -> dict[str, tuple[int, int]]:
    servers = next(c for c in net.children if c.name == "servers")
    seen = len(servers.stdout.seen)
    servers.send("count")
    out = {}
    for line in servers.stdout.seen[seen:]:
        if line.startswith("bytes "):
            _, ip, received, sent = line.split()
            out[ip] = (int(received), int(sent))
    return out


def test_the_daily_byte_budget_is_never_exceeded_counted_at_the_servers(net: Network, workdir: Path) -> None:
    before = _counts(net)
    results = once(net, workdir, "probe-budget.yaml")
    after = _counts(net)
    moved = {ip: sum(after[ip]) - sum(before.get(ip, (0, 0))) for ip in BULK_IPS}
    assert sum(moved.values()) <= BUDGET, moved
    ended = sorted(str(freeze_row(results[f"bulk{i}"]).get("ended")) for i in (1, 2, 3))
    assert ended == ["byte budget spent", "byte budget spent", "target reached"], ended
    # The one transfer that ran moved its target each way, and nothing else reached a server.
    assert sorted(moved.values())[:2] == [0, 0] and max(moved.values()) >= 2 * TARGET, moved
