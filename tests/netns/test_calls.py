"""Call reachability through a real censor: iptables drops UDP to a call relay
(or only STUN to it, by the magic cookie; or every packet of a flow after its
25th, by ``connbytes``; or answers it with ICMP port unreachable) while a
neutral STUN server answers.

The network is ``tests.netns.topology``'s; this module adds its own server
addresses (10.77.2.80-82, ``tests.netns.serve_calls``) to the servers
namespace. The probe runs ``msgprobe once --format json`` in the client
namespace against IP-literal endpoints, so no DNS is involved. Each test
starts from a flushed censor and flushes it after.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_netns
from tests.netns import topology
from tests.netns.serve_calls import NEUTRAL_IP, ONLINE_IP, ONLINE_PORT, RELAY_IP, STUN_PORT
from tests.netns.topology import DNS_IP, DOH_IP, Network

ONCE_TIMEOUT = 60.0  # s for one `msgprobe once`: two 2 s UDP exchanges and a TCP connect
START_TIMEOUT = 30.0  # s for the call servers to say they listen
RELAY = f"stun:{RELAY_IP}:{STUN_PORT}"
# STUN's magic cookie, 4 bytes into the UDP payload (IP header length from its first byte).
COOKIE_U32 = "0>>22&0x3C@12=0x2112A442"
# A short flow: 3 s at 50 requests a second, well past a 25-packet cut-off.
FLOW = {"flow_seconds": "3s", "flow_bytes": 40_000}
CUT_OFF = 25


def _config(workdir: Path, *, flow: bool = False) -> Path:
    document = {
        "probe": {"id": "netns-calls"},
        "catalog": "none",
        "confirm": 1,
        "concurrency": 4,
        "timeouts": {"dns": "1s", "connect": "2s", "tls": "2s", "http": "3s", "cycle": "40s"},
        # Never asked (IP-literal endpoints), and inside the test network anyway.
        "resolvers": [DNS_IP],
        "control_resolvers": [f"https://{DOH_IP}/dns-query"],
        "test_networks": ["10.77.0.0/16"],
        "calls": {"stun_controls": [f"{NEUTRAL_IP}:{STUN_PORT}"], "flow": flow, **FLOW},
        "services": [
            {
                "name": "relay",
                "expected": {"prefixes": [f"{RELAY_IP}/32"]},
                "endpoints": [{"host": RELAY_IP, "checks": [RELAY], "source": "tests/netns: a call relay"}],
            },
            {
                "name": "online",
                "expected": {"prefixes": [f"{ONLINE_IP}/32"]},
                "endpoints": [
                    {
                        "host": ONLINE_IP,
                        "checks": [f"tcp:{ONLINE_PORT}"],
                        "source": "tests/netns: keeps it online",
                    }
                ],
            },
        ],
    }
    path = workdir / ("probe-calls-flow.yaml" if flow else "probe-calls.yaml")
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Network, Path]]:
    # Every test comes through here first: without root or the tools each one
    # skips with the reason (fails in CI, MSGPROBE_REQUIRE_TOOLS=1).
    require_netns()
    workdir = tmp_path_factory.mktemp("netns-calls")
    config = _config(workdir)
    _config(workdir, flow=True)
    with topology.network() as net:
        for address in (RELAY_IP, NEUTRAL_IP, ONLINE_IP):
            net.ipn(net.servers, "addr", "add", f"{address}/24", "dev", "s-cs")
        servers = net.start(
            net.servers, "calls", [sys.executable, "-m", "tests.netns.serve_calls"], stdin=True
        )
        servers.stdout.expect("ready", START_TIMEOUT)
        yield net, config
    assert not [n for n in topology.ours() if net.tag in n], "namespaces left behind"


@pytest.fixture
def net(network: tuple[Network, Path]) -> Iterator[tuple[Network, Path]]:
    network[0].flush_censor()
    try:
        yield network
    finally:
        network[0].flush_censor()


def relay_result(net: Network, config: Path) -> dict[str, Any]:
    run = net.python(
        net.client, "-m", "probe", "once", "--config", str(config), "--format", "json", timeout=ONCE_TIMEOUT
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    results = {r["service"]: r for r in report["results"]}
    assert results["online"]["status"] == "ok", json.dumps(results["online"]["evidence"])
    return results["relay"]


def verdict(result: dict[str, Any]) -> tuple[str, str | None]:
    return result["status"], result["method"]


def stun_row(result: dict[str, Any]) -> dict[str, Any]:
    (row,) = [c for c in result["checks"] if c["check"] == RELAY]
    return row


def test_no_rule_is_ok(net: tuple[Network, Path]) -> None:
    result = relay_result(*net)
    assert verdict(result) == ("ok", None), json.dumps(result["evidence"])
    row = stun_row(result)
    assert row["ok"] and row["attributes"] == ["0x0020"]


def test_udp_dropped_to_the_relay_is_udp_blocked(net: tuple[Network, Path]) -> None:
    net[0].censor_rule("-A", "FORWARD", "-p", "udp", "-d", RELAY_IP, "-j", "DROP")
    result = relay_result(*net)
    assert verdict(result) == ("blocked", "udp.blocked"), json.dumps(result["evidence"])
    summary = result["evidence"]["summary"]
    assert f"no STUN answer from relay {RELAY_IP}:{STUN_PORT} after 3 tries" in summary
    assert f"neutral STUN server {NEUTRAL_IP}:{STUN_PORT} answered in" in summary
    assert "random payload of the same size got no answer either" in summary
    assert [w["kind"] for w in result["evidence"]["witnesses"]] == ["control"]


def test_both_dropped_is_not_blocked(net: tuple[Network, Path]) -> None:
    for address in (RELAY_IP, NEUTRAL_IP):
        net[0].censor_rule("-A", "FORWARD", "-p", "udp", "-d", address, "-j", "DROP")
    result = relay_result(*net)
    assert verdict(result) == ("unreachable", None), json.dumps(result["evidence"])
    assert "no neutral STUN server answered either" in result["evidence"]["summary"]


def test_only_stun_dropped_by_its_magic_cookie_is_signature_filtering(net: tuple[Network, Path]) -> None:
    rule = ("-A", "FORWARD", "-p", "udp", "-d", RELAY_IP, "-m", "u32", "--u32", COOKIE_U32, "-j", "DROP")
    net[0].censor_rule(*rule)
    result = relay_result(*net)
    assert verdict(result) == ("blocked", "udp.blocked"), json.dumps(result["evidence"])
    assert "STUN is filtered by its signature" in result["evidence"]["summary"]
    assert stun_row(result)["random_payload"] == "answered"


def test_forged_icmp_port_unreachable_is_port_unreachable(net: tuple[Network, Path]) -> None:
    reject = (
        "-A",
        "FORWARD",
        "-p",
        "udp",
        "-d",
        RELAY_IP,
        "-j",
        "REJECT",
        "--reject-with",
        "icmp-port-unreachable",
    )
    net[0].censor_rule(*reject)
    result = relay_result(*net)
    assert verdict(result) == ("unreachable", None), json.dumps(result["evidence"])
    assert result["evidence"]["failure"] == "port_unreachable"
    assert stun_row(result)["failure"] == "port_unreachable"


def test_a_flow_cut_off_after_25_packets_is_udp_blocked(net: tuple[Network, Path]) -> None:
    network, config = net
    # Every packet of a UDP flow to the relay after its 25th: the "l4-25" cut-off.
    count = ["-m", "connbytes", "--connbytes", f"{CUT_OFF + 1}:", "--connbytes-dir", "original"]
    network.censor_rule(
        "-A", "FORWARD", "-p", "udp", "-d", RELAY_IP, *count, "--connbytes-mode", "packets", "-j", "DROP"
    )
    result = relay_result(network, config.with_name("probe-calls-flow.yaml"))
    assert verdict(result) == ("blocked", "udp.blocked"), json.dumps(result["evidence"])
    assert (
        f"{CUT_OFF} of the first {CUT_OFF} requests answered, then none of the last"
        in result["evidence"]["summary"]
    )
    row = stun_row(result)
    assert row["flow"]["answered"] == CUT_OFF and row["flow"]["sent"] > 4 * CUT_OFF
    assert row["neutral_flow"]["answered"] == row["neutral_flow"]["sent"]


def test_a_clean_flow_is_ok(net: tuple[Network, Path]) -> None:
    network, config = net
    result = relay_result(network, config.with_name("probe-calls-flow.yaml"))
    assert verdict(result) == ("ok", None), json.dumps(result["evidence"])
    flow = stun_row(result)["flow"]
    assert flow["answered"] == flow["sent"] > 4 * CUT_OFF and flow["bytes"] <= 20_000
