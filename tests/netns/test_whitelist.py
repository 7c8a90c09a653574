"""The whitelist regime through a real censor (iptables in the censor namespace).

The network is ``tests.netns.topology``'s; its servers here are
``tests.netns.whitelist_serve`` on 10.77.2.90–95 (two domestic canaries, two
foreign services, the domestic resolver, a control DoH resolver). The probe
runs ``msgprobe once --format json`` in the client namespace with
``probe.country: RU`` and the two canaries as its white-list canaries.

- a censor that forwards only the canaries and DNS: ``whitelist``, every
  foreign service ``blocked whitelist`` (the control resolver, asked for the
  name the domestic resolver removed, is dropped too);
- the same with the control resolver let through: ``online``, and nothing
  is blocked by the white list (a foreign control answered);
- a censor that drops everything: ``offline``, every verdict ``unknown``;
- no censor rule: ``online``, every service ``ok``, the canaries answering.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_netns
from tests.netns import topology
from tests.netns.topology import Network
from tests.netns.whitelist_serve import ADDRESSES, CANARIES, CHAT_IP, DNS_IP, DOH_IP, MAX_IP, WEB_IP, YA_IP

ONCE_TIMEOUT = 90.0  # s for one `msgprobe once`: every step below is bounded far under it
START_TIMEOUT = 30.0  # s for the servers to say they listen
TIMEOUTS = {"dns": "1s", "connect": "2s", "tls": "2s", "http": "3s", "cycle": "40s"}
FOREIGN = ("chat", "web", "gone")

CONFIG: dict[str, Any] = {
    "probe": {"id": "netns-whitelist", "country": "RU"},
    "whitelist_canaries": {"RU": list(CANARIES)},
    "catalog": "none",
    "confirm": 1,
    "concurrency": 8,
    "timeouts": TIMEOUTS,
    "resolvers": [DNS_IP],
    "control_resolvers": [f"https://{DOH_IP}/dns-query"],
    "dns": {"canary": "max.msgprobe.test"},
    "decoy": {"sni": "decoy.msgprobe.test", "host": "decoy.msgprobe.test"},
    "test_networks": ["10.77.0.0/16"],
    "services": [
        {
            "name": "chat",
            "expected": {"prefixes": [f"{CHAT_IP}/32"]},
            "endpoints": [{"host": "chat.msgprobe.test", "checks": ["dns", "tcp:443", "tls:443"]}],
        },
        {
            "name": "web",
            "expected": {"prefixes": [f"{WEB_IP}/32"]},
            "endpoints": [
                {"host": "web.msgprobe.test", "checks": ["dns", "tcp:80", "http:http://web.msgprobe.test/"]}
            ],
        },
        {
            # Removed from the domestic resolver: only the control resolver can say it exists.
            "name": "gone",
            "expected": {"prefixes": [f"{CHAT_IP}/32"]},
            "endpoints": [{"host": "gone.msgprobe.test", "checks": ["dns", "tcp:443", "tls:443"]}],
        },
    ],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netns-whitelist")


@pytest.fixture(scope="module")
def network(workdir: Path) -> Iterator[Network]:
    require_netns()
    document = {**CONFIG, "tls": {"ca_bundle": str(workdir / "ca.pem")}}
    (workdir / "probe.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with topology.network() as net:
        net.start_servers(
            "tests.netns.whitelist_serve", workdir, addresses=ADDRESSES, stdin=True, timeout=START_TIMEOUT
        )
        yield net
    assert not [n for n in topology.ours() if net.tag in n], "namespaces left behind"


@pytest.fixture
def net(network: Network) -> Iterator[Network]:
    """The network with a censor that has no rule, before and after the test."""
    with network.flushed():
        yield network


def once(net: Network, workdir: Path) -> dict[str, Any]:
    return net.once(workdir / "probe.yaml", timeout=ONCE_TIMEOUT)


def results(report: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {r["service"]: (r["status"], r["method"]) for r in report["results"]}


def let_through(net: Network, *addresses: str) -> None:
    """Forward these addresses both ways; a final rule drops everything else."""
    for address in addresses:
        net.censor_rule("-A", "FORWARD", "-d", address, "-j", "ACCEPT")
        net.censor_rule("-A", "FORWARD", "-s", address, "-j", "ACCEPT")
    net.censor_rule("-A", "FORWARD", "-j", "DROP")


def test_only_the_canaries_routed_is_the_whitelist_regime(net: Network, workdir: Path) -> None:
    let_through(net, MAX_IP, YA_IP, DNS_IP)
    report = once(net, workdir)
    assert (report["regime"], report["vantage_online"]) == ("whitelist", True), report["results"]
    assert report["canaries"] == {"max.msgprobe.test": True, "ya.msgprobe.test": True}
    assert results(report) == {name: ("blocked", "whitelist") for name in FOREIGN}
    by_service = {r["service"]: r for r in report["results"]}
    chat = by_service["chat"]["evidence"]
    assert chat["summary"].startswith(
        "whitelist regime: only domestic canaries answered (max.msgprobe.test, ya.msgprobe.test); "
        f"foreign controls and every foreign endpoint failed; here: tcp {CHAT_IP}:443: generic_timeout_error"
    ), chat
    assert [w["detail"] for w in chat["witnesses"]] == [
        f"max.msgprobe.test: TLS verified at {MAX_IP}:443",
        f"ya.msgprobe.test: TLS verified at {YA_IP}:443",
    ]
    # The removed name made the probe ask its control resolver, and the censor dropped that too.
    control = [d for d in by_service["gone"]["observations"]["dns"] if d["role"] == "control"]
    assert control and all(d["rcode"] is None for d in control), control


def test_a_foreign_control_answering_keeps_the_vantage_online(net: Network, workdir: Path) -> None:
    let_through(net, MAX_IP, YA_IP, DNS_IP, DOH_IP)
    report = once(net, workdir)
    assert (report["regime"], report["vantage_online"]) == ("online", True), report["results"]
    got = results(report)
    # No white list proven: without a control peer, a dropped SYN stays unreachable.
    assert got["chat"] == ("unreachable", None) and got["web"] == ("unreachable", None), got
    assert got["gone"] == ("blocked", "dns.nxdomain"), got


def test_a_censor_that_drops_everything_is_offline(net: Network, workdir: Path) -> None:
    net.censor_rule("-A", "FORWARD", "-j", "DROP")
    report = once(net, workdir)
    assert (report["regime"], report["vantage_online"]) == ("offline", False), report["results"]
    assert report["canaries"] == {"max.msgprobe.test": False, "ya.msgprobe.test": False}
    assert results(report) == {name: ("unknown", None) for name in FOREIGN}


def test_no_censor_is_online_with_the_canaries_answering(net: Network, workdir: Path) -> None:
    report = once(net, workdir)
    assert (report["regime"], report["vantage_online"]) == ("online", True)
    assert report["canaries"] == {"max.msgprobe.test": True, "ya.msgprobe.test": True}
    got = results(report)
    assert got["chat"] == ("ok", None) and got["web"] == ("ok", None), got
    assert got["gone"] == ("blocked", "dns.nxdomain"), got
