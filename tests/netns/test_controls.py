"""Peer controls through a real censor: an IP block told from an outage, an
unknown blockpage told from the real page.

The network is ``tests.netns.topology``'s (client — censor — servers —
control); the servers are ``tests.netns.serve``. The probe runs
``msgprobe once --format json`` in the client namespace, the control peer
``msgprobe control`` in the control namespace, both with the catalog below.
Each test sets its censor rules on a flushed censor and flushes them again
after, so no test depends on another's.
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
from tests.conftest import require_netns
from tests.netns import topology
from tests.netns.topology import (
    BLOCKPAGE_IP,
    CHAT_IP,
    CONTROL_IP,
    CONTROL_PORT,
    DNS_IP,
    DOH_IP,
    DYNAMIC_IP,
    FORGED_IP,
    LYING_DNS_IP,
    WEB_IP,
    Network,
)

PEER = f"{CONTROL_IP}:{CONTROL_PORT}"  # the peer's label in evidence and metrics
ONCE_TIMEOUT = 60.0  # s for one `msgprobe once`: every step below is bounded far under it
START_TIMEOUT = 30.0  # s for the servers and the control to say they listen
TIMEOUTS = {"dns": "1s", "connect": "2s", "tls": "2s", "http": "3s", "control": "10s", "cycle": "40s"}

SERVICES: list[dict[str, Any]] = [
    {
        "name": "chat",
        "expected": {"prefixes": [f"{CHAT_IP}/32"]},
        "endpoints": [
            {
                "host": "chat.msgprobe.test",
                "checks": ["dns", "tcp:443", "tls:443"],
                "source": "tests/netns: the genuine HTTPS server",
            }
        ],
    },
    {
        "name": "web",
        "expected": {"prefixes": [f"{WEB_IP}/32"]},
        "endpoints": [
            {
                "host": "web.msgprobe.test",
                "checks": ["dns", "tcp:80", "http:http://web.msgprobe.test/"],
                "source": "tests/netns: the genuine plain-HTTP page",
            }
        ],
    },
    {
        "name": "news",
        "expected": {"prefixes": [f"{DYNAMIC_IP}/32"]},
        "endpoints": [
            {
                "host": "news.msgprobe.test",
                "checks": ["dns", "tcp:80", "http:http://news.msgprobe.test/"],
                "source": "tests/netns: a page whose counter changes on every request",
            }
        ],
    },
]


def _common(workdir: Path) -> dict[str, Any]:
    return {
        "catalog": "none",
        "confirm": 1,
        "concurrency": 8,
        "timeouts": TIMEOUTS,
        "control_resolvers": [f"https://{DOH_IP}/dns-query"],
        "dns": {"canary": "canary.msgprobe.test"},
        "decoy": {"sni": "decoy.msgprobe.test", "host": "decoy.msgprobe.test"},
        "tls": {"ca_bundle": str(workdir / "ca.pem")},
        "test_networks": ["10.77.0.0/16"],
        "services": SERVICES,
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netns-controls")


@pytest.fixture(scope="module")
def network(workdir: Path) -> Iterator[Network]:
    # Every test comes through here before anything is created: without root or the
    # tools each one skips with the reason (fails in CI, MSGPROBE_REQUIRE_TOOLS=1).
    require_netns()
    token = tokens.add(workdir / "tokens", "netns-probe")
    (workdir / "token").write_text(token + "\n", encoding="utf-8")
    for resolver, name in ((DNS_IP, "probe.yaml"), (LYING_DNS_IP, "probe-lying-dns.yaml")):
        document = {
            **_common(workdir),
            "probe": {"id": "netns-client"},
            "resolvers": [resolver],
            "control_peers": [{"url": f"http://{PEER}", "token_file": str(workdir / "token")}],
        }
        (workdir / name).write_text(yaml.safe_dump(document), encoding="utf-8")
    control = {**_common(workdir), "probe": {"id": "netns-control"}, "resolvers": [DNS_IP]}
    (workdir / "control.yaml").write_text(yaml.safe_dump(control), encoding="utf-8")
    with topology.network() as net:
        servers = net.start(
            net.servers,
            "servers",
            [sys.executable, "-m", "tests.netns.serve", "--workdir", str(workdir)],
            stdin=True,
        )
        servers.stdout.expect("ready", START_TIMEOUT)
        peer = net.start(
            net.control,
            "control",
            [
                sys.executable,
                "-m",
                "probe",
                "control",
                "--config.file",
                str(workdir / "control.yaml"),
                "--tokens.file",
                str(workdir / "tokens"),
                "--web.listen-address",
                PEER,
            ],
        )
        peer.stderr.expect("control listening", START_TIMEOUT)
        yield net
    assert not [n for n in topology.ours() if net.tag in n], "namespaces left behind"


@pytest.fixture
def net(network: Network) -> Iterator[Network]:
    """The network with a censor that has no rule and every server up, before and after the test."""
    servers = next(c for c in network.children if c.name == "servers")
    network.flush_censor()
    servers.send("reset")
    try:
        yield network
    finally:
        network.flush_censor()
        servers.send("reset")


def once(net: Network, workdir: Path, config: str = "probe.yaml") -> dict[str, dict[str, Any]]:
    """One probe cycle in the client namespace: each service's result, by service name."""
    report = net.once(workdir / config, timeout=ONCE_TIMEOUT)
    assert report["vantage_online"] is True, json.dumps(report)[:2000]
    return {r["service"]: r for r in report["results"]}


def assert_verdict(result: dict[str, Any], status: str, method: str | None) -> dict[str, Any]:
    evidence: dict[str, Any] = result["evidence"]
    assert (result["status"], result["method"]) == (status, method), json.dumps(evidence, indent=1)
    return evidence


def control_witness(evidence: dict[str, Any]) -> str:
    """The one witness, a control; its detail."""
    kinds = [w["kind"] for w in evidence["witnesses"]]
    assert kinds == ["control"], json.dumps(evidence, indent=1)
    detail: str = evidence["witnesses"][0]["detail"]
    return detail


def peer_answer(result: dict[str, Any]) -> dict[str, Any]:
    """The control peer's answer recorded in the observations (asked, and answered)."""
    answers = result["observations"]["controls"]
    assert [a["peer"] for a in answers] == [PEER], answers
    assert answers[0]["error"] is None and answers[0]["summary"] is not None, answers
    summary: dict[str, Any] = answers[0]["summary"]
    return summary


def drop_chat(net: Network, *target: str) -> None:
    net.censor_rule("-A", "FORWARD", "-d", CHAT_IP, "-p", "tcp", "--dport", "443", "-j", *target)


def test_a_clean_mirror_is_ok_everywhere(net: Network, workdir: Path) -> None:
    results = once(net, workdir)
    for name in ("chat", "web", "news"):
        assert_verdict(results[name], "ok", None)
    # Plain-HTTP checks always ask the peer: its view is what an unknown blockpage is compared with.
    assert peer_answer(results["web"])["http"][0]["status"] == 200


def test_a_dropped_ip_is_a_tcp_timeout_where_the_control_connects(net: Network, workdir: Path) -> None:
    drop_chat(net, "DROP")
    evidence = assert_verdict(once(net, workdir)["chat"], "blocked", "tcp.timeout")
    assert evidence["failure"] == "generic_timeout_error" and evidence["address"] == CHAT_IP
    assert control_witness(evidence) == f"control {PEER} connects to {CHAT_IP}:443"


@pytest.mark.parametrize(
    ("target", "failure"),
    [
        (("REJECT", "--reject-with", "tcp-reset"), "connection_refused"),
        (("REJECT", "--reject-with", "icmp-admin-prohibited"), "host_unreachable"),
    ],
    ids=["rst", "icmp-admin-prohibited"],
)
def test_a_rejected_connection_is_tcp_refused_where_the_control_connects(
    net: Network, workdir: Path, target: tuple[str, ...], failure: str
) -> None:
    drop_chat(net, *target)
    evidence = assert_verdict(once(net, workdir)["chat"], "blocked", "tcp.refused")
    assert evidence["failure"] == failure
    assert control_witness(evidence) == f"control {PEER} connects to {CHAT_IP}:443"


def test_a_stopped_server_is_down_because_the_control_fails_too(net: Network, workdir: Path) -> None:
    servers = next(c for c in net.children if c.name == "servers")
    servers.send("stop chat")
    result = once(net, workdir)["chat"]
    evidence = assert_verdict(result, "down", None)
    assert evidence["failure"] == "connection_refused"
    assert evidence["summary"] == f"tcp {CHAT_IP}:443: connection_refused, and at control {PEER} too"
    assert [c["failure"] for c in peer_answer(result)["tcp"]] == ["connection_refused"]


def test_a_dropped_control_leaves_the_block_unknown(net: Network, workdir: Path) -> None:
    drop_chat(net, "DROP")
    net.censor_rule(
        "-A", "FORWARD", "-d", CONTROL_IP, "-p", "tcp", "--dport", str(CONTROL_PORT), "-j", "DROP"
    )
    results = once(net, workdir)
    evidence = assert_verdict(results["chat"], "unknown", None)
    assert evidence["witnesses"] == []
    assert f"no control peer reachable ({PEER}: generic_timeout_error)" in evidence["summary"]
    answers = results["chat"]["observations"]["controls"]
    assert [(a["peer"], a["summary"], a["error"]) for a in answers] == [(PEER, None, "generic_timeout_error")]
    # The pages still read ok: a missing control proves nothing either way.
    assert_verdict(results["web"], "ok", None)


def test_an_unknown_blockpage_is_an_http_diff(net: Network, workdir: Path) -> None:
    net.censor_rule(
        "-t", "nat", "-A", "PREROUTING", "-d", WEB_IP, "-p", "tcp", "--dport", "80",
        "-j", "DNAT", "--to-destination", f"{BLOCKPAGE_IP}:80",
    )  # fmt: skip
    result = once(net, workdir)["web"]
    evidence = assert_verdict(result, "blocked", "http.diff")
    summary = evidence["summary"]
    assert "HTTP 200 both" in summary and "(ratio " in summary, summary
    assert "title 'Notice' vs 'msgprobe testbed: genuine service'" in summary, summary
    assert control_witness(evidence) == f"{PEER} gets the service's own page"
    assert peer_answer(result)["http"][0]["title"] == "msgprobe testbed: genuine service"


def test_a_dynamic_page_with_the_same_title_is_ok(net: Network, workdir: Path) -> None:
    result = once(net, workdir)["news"]
    assert_verdict(result, "ok", None)
    here = result["observations"]["http"][0]
    there = peer_answer(result)["http"][0]
    # Different bodies, lengths too far apart for OONI's 0.7 ratio: the title alone says same page.
    assert here["body_sha256"] != there["body_sha256"]
    assert (
        min(here["body_length"], there["body_length"]) / max(here["body_length"], there["body_length"]) < 0.7
    )
    assert here["title"] == there["title"] == "news.msgprobe.test: latest"


def test_a_forged_answer_is_dns_inconsistent_when_the_controls_address_works(
    net: Network, workdir: Path
) -> None:
    evidence = assert_verdict(
        once(net, workdir, "probe-lying-dns.yaml")["chat"], "blocked", "dns.inconsistent"
    )
    assert evidence["address"] == FORGED_IP
    assert control_witness(evidence) == f"{CHAT_IP} connects"
    assert f"control says {CHAT_IP}" in evidence["summary"], evidence["summary"]
    assert f"while the control's address {CHAT_IP} works" in evidence["summary"], evidence["summary"]
