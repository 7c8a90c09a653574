"""Packet evidence through a real path: client — r1 — r2 — censor — server.

The probe runs ``msgprobe once`` in the client namespace of
``tests.netns.path`` with ``raw.packets`` and ``raw.traceroute`` on; the
censor's iptables rules and its scapy DNS injector set each scenario. The
witnesses are judged from what the packets showed: the censor's forged
reset arrives with TTL 253 where the server's SYN-ACK has 61, the injected
DNS reply with 198 where the resolver's own has 61. The server's own resets
(a closed port, an application abort) must never be marked, and without
NET_RAW every raw check says so while the rest of the probe works as before.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_netns
from tests.netns.path import (
    CENSOR_RST_TTL,
    CLIENT_IP,
    R2_IP,
    SERVER_IP,
    SERVER_TTL,
    SILENT_IP,
    PathNetwork,
    path_network,
)

ONCE_TIMEOUT = 90.0
TIMEOUTS = {"dns": "2s", "connect": "2s", "tls": "2s", "http": "3s", "cycle": "60s"}
RAW = {
    "packets": True,
    "no_resolver": [SILENT_IP],
    "traceroute": True,
    "max_hops": 8,
    "hop_wait": "0.5s",
    "pace": "0.05s",
    "trace_budget": "30s",
}
FORGED_IP = SILENT_IP  # the injector's answer: outside chat's expected /32, and a SYN there is reset at once


def service(name: str, host: str, checks: list[str], prefix: str = f"{SERVER_IP}/32") -> dict[str, Any]:
    return {
        "name": name,
        "expected": {"prefixes": [prefix]},
        "endpoints": [{"host": host, "checks": checks, "source": "tests/netns/test_packets.py"}],
    }


SERVICES = [
    service("chat", "chat.path.test", ["dns", "tcp:443", "tls:443"]),
    service("blocked", "blocked.path.test", ["dns", "tcp:443", "tls:443"]),
    service("web", "blocked.path.test", ["dns", "tcp:80", "http:http://blocked.path.test/"]),
    # The server's own resets: an abort after the ClientHello (4433), a closed port (8443).
    service("resets", "clean.path.test", ["dns", "tcp:4433", "tls:4433", "tcp:8443"]),
    # An answer outside the expected networks with no injector on the path: asked again, found genuine.
    service("misfit", "clean.path.test", ["dns", "tcp:443"], prefix="10.79.9.0/24"),
]


def config(workdir: Path, name: str, *, raw: dict[str, Any] | None = None, **extra: Any) -> Path:
    document = {
        "probe": {"id": "netns-packets"},
        "catalog": "none",
        "confirm": 1,
        "concurrency": 8,
        "timeouts": TIMEOUTS,
        "resolvers": ["10.79.4.53:53"],
        "dns": {"canary": "canary.path.test", "injection_window": "0.6s"},
        "decoy": {"sni": "example.com", "host": "example.com"},
        "tls": {"ca_bundle": str(workdir / "ca.pem")},
        "test_networks": ["10.79.0.0/16"],
        "raw": RAW if raw is None else raw,
        "services": SERVICES,
        **extra,
    }
    path = workdir / name
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netns-packets")


@pytest.fixture(scope="module")
def network(workdir: Path) -> Iterator[PathNetwork]:
    require_netns()
    with path_network() as net:
        net.start_server(workdir)
        yield net


@pytest.fixture
def net(network: PathNetwork) -> Iterator[PathNetwork]:
    with network.flushed():
        yield network


def once(net: PathNetwork, path: Path, *, net_raw: bool = True) -> dict[str, dict[str, Any]]:
    report = (
        net.once(path, timeout=ONCE_TIMEOUT)
        if net_raw
        else net.once_without_net_raw(path, timeout=ONCE_TIMEOUT)
    )
    # The probe's own address is in every captured packet; it must be in nothing it reports.
    assert CLIENT_IP not in json.dumps(report)
    return {r["service"]: r for r in report["results"]}


def row(result: dict[str, Any], check: str) -> dict[str, Any]:
    rows = [c for c in result["checks"] if c["check"] == check]
    assert len(rows) == 1, json.dumps(result["checks"], indent=1)
    found: dict[str, Any] = rows[0]
    return found


def raw_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in result["checks"] if c["check"].startswith("raw:")]


def packet_witnesses(result: dict[str, Any]) -> list[str]:
    return [w["detail"] for f in result["findings"] for w in f["witnesses"] if w["kind"] == "packet"]


def test_an_injected_dns_reply_is_told_by_its_ttl_and_the_silent_address(
    net: PathNetwork, workdir: Path
) -> None:
    injector = net.inject_dns(["chat.path.test"], FORGED_IP)
    chat = once(net, config(workdir, "dns.yaml"))["chat"]
    injector.stdout.expect("injected chat.path.test", 5.0)
    assert chat["method"] == "dns.injected", json.dumps(chat["evidence"], indent=1)
    dns = row(chat, "raw:dns")
    assert not dns["ok"] and "injected" in dns, dns
    marks = " | ".join(dns["injected"])
    assert f"ttl 198 vs {SERVER_TTL}" in marks
    assert f"from {SILENT_IP}, which runs no resolver" in marks
    assert dns["baseline_ttl"] == SERVER_TTL and dns["no_resolver_answers"] == {SILENT_IP: 1}
    assert sorted(r["ttl"] for r in dns["replies"]) == [SERVER_TTL, 198]
    assert packet_witnesses(chat)


def test_a_suspect_answer_on_a_clean_path_is_found_genuine(net: PathNetwork, workdir: Path) -> None:
    misfit = once(net, config(workdir, "clean.yaml"))["misfit"]
    dns = row(misfit, "raw:dns")
    assert dns["ok"] and "injected" not in dns, dns
    assert [r["ttl"] for r in dns["replies"]] == [SERVER_TTL] and dns["baseline_ttl"] == SERVER_TTL
    assert dns["no_resolver_answers"] == {SILENT_IP: 0}
    assert not packet_witnesses(misfit) and misfit["method"] != "dns.injected"


def test_a_forged_reset_is_marked_and_the_censor_found_at_hop_3(net: PathNetwork, workdir: Path) -> None:
    net.reset_sni("blocked.path.test")
    blocked = once(net, config(workdir, "reset.yaml"))["blocked"]
    assert (blocked["status"], blocked["method"]) == ("blocked", "tls.reset"), blocked["evidence"]
    reset = row(blocked, "raw:reset:443")
    assert not reset["ok"] and reset["verdict"] == "forged" and reset["step"] == "tls"
    assert (reset["reset_ttl"], reset["synack_ttl"]) == (CENSOR_RST_TTL, SERVER_TTL)
    assert reset["after_trigger_ms"] is not None and reset["after_trigger_ms"] < 100
    trace = row(blocked, "raw:trace:443")
    assert not trace["ok"] and trace["trigger"] == "sni", trace
    assert (trace["hop"], trace["interference"], trace["last_router"]) == (3, "reset", R2_IP)


def test_a_forged_reset_proves_tls_reset_when_the_decoy_is_reset_too(net: PathNetwork, workdir: Path) -> None:
    net.reset_sni("blocked.path.test")
    net.reset_sni("example.com")  # residual blocking, or a censor that resets every name: no decoy survives
    blocked = once(net, config(workdir, "both.yaml", raw={**RAW, "traceroute": False}))["blocked"]
    assert (blocked["status"], blocked["method"]) == ("blocked", "tls.reset"), json.dumps(blocked, indent=1)
    assert [w["kind"] for w in blocked["evidence"]["witnesses"]] == ["packet"]
    assert f"reset ttl {CENSOR_RST_TTL} vs {SERVER_TTL}" in blocked["evidence"]["witnesses"][0]["detail"]


def test_the_servers_own_resets_are_not_marked(net: PathNetwork, workdir: Path) -> None:
    resets = once(net, config(workdir, "genuine.yaml"))["resets"]
    abort, closed = row(resets, "raw:reset:4433"), row(resets, "raw:reset:8443")
    assert abort["ok"] and abort["verdict"] == "genuine" and abort["step"] == "tls", abort
    assert abort["reset_ttl"] == abort["synack_ttl"] == SERVER_TTL
    assert closed["ok"] and closed["verdict"] == "genuine" and closed["step"] == "connect", closed
    assert not packet_witnesses(resets) and resets["status"] != "blocked", resets["evidence"]


def test_a_dropped_host_is_found_at_hop_3(net: PathNetwork, workdir: Path) -> None:
    net.drop_host("blocked.path.test")
    web = once(net, config(workdir, "drop.yaml"))["web"]
    assert (web["status"], web["method"]) == ("blocked", "http.timeout"), web["evidence"]
    trace = row(web, "raw:trace:80")
    assert trace["trigger"] == "host" and (trace["hop"], trace["interference"]) == (3, "drop"), trace
    assert trace["last_router"] == R2_IP


def test_without_net_raw_each_raw_check_says_so_and_the_rest_works(net: PathNetwork, workdir: Path) -> None:
    net.reset_sni("blocked.path.test")
    net.inject_dns(["chat.path.test"], FORGED_IP)
    results = once(net, config(workdir, "no-net-raw.yaml"), net_raw=False)
    blocked, chat, resets = results["blocked"], results["chat"], results["resets"]
    errors = [r for result in (blocked, chat, resets) for r in raw_rows(result)]
    checks = {r["check"] for r in errors}
    assert {"raw:dns", "raw:reset:443", "raw:trace:443", "raw:reset:4433", "raw:reset:8443"} <= checks, checks
    assert all(not r["ok"] and r["failure"] == "error: needs NET_RAW" for r in errors), errors
    # Everything else measured as without raw checks: the decoy still proves the block.
    assert (blocked["status"], blocked["method"]) == ("blocked", "tls.reset")
    assert row(blocked, "tcp:443")["ok"] and not row(blocked, "tls:443")["ok"]
    assert row(chat, "dns")["failure"] is None and chat["status"] == "blocked", chat["evidence"]
    assert row(resets, "tcp:4433")["ok"]


FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"


def sample(exposition: str, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels`` (any order)."""
    found = []
    for line in exposition.splitlines():
        head, _, value = line.rpartition(" ")
        if head == name or head.startswith(name + "{"):
            pairs = dict(re.findall(r'(\w+)="([^"]*)"', head))
            if labels.items() <= pairs.items():
                found.append(float(value))
    assert len(found) == 1, (name, labels, found)
    return found[0]


def fetch(net: PathNetwork, url: str) -> str:
    done = net.python(net.client, "-c", FETCH, url, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_daemon_exports_the_packets_and_its_event_loop_stays_responsive(
    net: PathNetwork, workdir: Path
) -> None:
    net.reset_sni("blocked.path.test")
    net.inject_dns(["chat.path.test"], FORGED_IP)
    lags = {}
    for label, raw in (("raw", RAW), ("baseline", {"packets": False, "traceroute": False})):
        path = config(workdir, f"daemon-{label}.yaml", raw=raw, interval="1h", jitter="0s")
        daemon = net.start(
            net.client,
            f"daemon-{label}",
            [sys.executable, "-m", "probe", "run", "--config.file", str(path), "--log.format", "json",
             "--web.listen-address", "127.0.0.1:9490", "--evidence.path", str(workdir / f"{label}.jsonl")],
        )  # fmt: skip
        try:
            line = daemon.stderr.expect('"cycle done"', ONCE_TIMEOUT)
            if label == "raw":
                metrics = fetch(net, "http://127.0.0.1:9490/metrics")
                status = json.loads(fetch(net, "http://127.0.0.1:9490/status"))
        finally:
            daemon.stop()
        lags[label] = float(json.loads(line)["max_loop_lag_s"])
    print(f"event-loop lag, worst of one cycle: raw {lags['raw']:.3f} s, baseline {lags['baseline']:.3f} s")
    # The probe calls its own timeouts unreliable past a quarter of the shortest one (0.5 s
    # here, apply_overload); raw checks must stay far below that: a fifth of it.
    assert lags["raw"] < 0.1, lags
    assert sample(metrics, "msgprobe_injection_detected", service="blocked", kind="reset") == 1
    assert sample(metrics, "msgprobe_injection_detected", service="chat", kind="dns") == 1
    assert sample(metrics, "msgprobe_injection_detected", service="resets", kind="reset") == 0
    assert sample(metrics, "msgprobe_censor_hop", service="blocked") == 3
    assert sample(metrics, "msgprobe_raw_ready") == 1 and status["raw"] == {"ready": True, "problem": None}
    assert CLIENT_IP not in metrics and CLIENT_IP not in json.dumps(status)
    endpoints = {(s["service"], e["endpoint"]): e for s in status["services"] for e in s["endpoints"]}
    censor = endpoints[("blocked", "blocked.path.test")]["packets"]["censor"]
    assert (censor["hop"], censor["interference"], censor["last_router"]) == (3, "reset", R2_IP), censor
    # The once-a-day promise outlives the process: the walk is in the log beside the evidence.
    assert "blocked/blocked.path.test:443" in json.loads((workdir / "traceroutes.json").read_text())
