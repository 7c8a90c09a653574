"""Throttling through a real middlebox: the kernel's per-flow policer on an SNI.

The censor router marks a connection whose ClientHello carries the real
name (``-m string``, ``CONNMARK``) and drops, per flow and per direction,
what exceeds 16 kB/s after a 16 KiB burst (``-m hashlimit``): Russia's
Twitter throttling of 2021 (~128 kbit/s by packet drops, IMC'21), with the
qdisc-free tools every kernel here has. The servers are
``tests.netns.serve_throttle`` at 10.77.2.60–62 (this module's range).

- the SNI-triggered policer: T0 sees a slow download, the pairs see the
  real name at the policer's rate and the decoy fast → ``blocked throttled``;
- no rule: ``ok``;
- the same policer on every flow to the address, no SNI trigger: both names
  are slow, so nothing proves a name-based throttle → never ``blocked``.

The budget the probe charged covers what the server moved for the pairs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_netns
from tests.netns import topology
from tests.netns.topology import Network

THROTTLED_IP = "10.77.2.60"
DNS_IP = "10.77.2.62"
HOST = "slowchat.msgprobe.test"
DECOY = "decoy.msgprobe.test"
RATE = "16kb/s"
BURST = "16384b"  # hashlimit's least byte-mode burst
ONCE_TIMEOUT = 90.0  # s for one `msgprobe once`: T0 (3 s) and three pairs of at most 10 s arms
START_TIMEOUT = 30.0
TIMEOUTS = {"dns": "2s", "connect": "3s", "tls": "3s", "http": "3s", "cycle": "80s"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netns-throttle")


@pytest.fixture(scope="module")
def network(workdir: Path) -> Iterator[Network]:
    require_netns()
    document = {
        "catalog": "none",
        "confirm": 1,
        "probe": {"id": "netns-throttle"},
        "timeouts": TIMEOUTS,
        "resolvers": [DNS_IP],
        "control_resolvers": [f"https://{DNS_IP}/dns-query"],
        "dns": {"canary": f"canary.{HOST}"},
        "decoy": {"sni": DECOY, "host": DECOY},
        "tls": {"ca_bundle": str(workdir / "ca.pem")},
        "test_networks": ["10.77.0.0/16"],
        "services": [
            {
                "name": "slowchat",
                "expected": {"prefixes": [f"{THROTTLED_IP}/32"]},
                "endpoints": [
                    {
                        "host": HOST,
                        "checks": ["tls:443", f"http:https://{HOST}/media", "throttle:443"],
                        "source": "tests/netns: a counting HTTPS server behind a policer",
                    }
                ],
            }
        ],
    }
    (workdir / "probe.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with topology.network() as net:
        net.start_servers(
            "tests.netns.serve_throttle",
            workdir,
            addresses=(THROTTLED_IP, DNS_IP),
            args=[
                *("--address", THROTTLED_IP, "--dns", DNS_IP),
                *("--name", f"{HOST}={THROTTLED_IP}", "--name", f"canary.{HOST}={DNS_IP}"),
            ],
            stdin=True,
            timeout=START_TIMEOUT,
        )
        yield net
    assert not [n for n in topology.ours() if net.tag in n], "namespaces left behind"


@pytest.fixture
def net(network: Network) -> Iterator[Network]:
    with network.flushed():
        yield network


def police(net: Network, *match: str) -> None:
    """Mark the flows ``match`` selects, then drop what a flow sends beyond RATE after BURST."""
    net.censor_rule("-A", "FORWARD", "-p", "tcp", *match, "-j", "CONNMARK", "--set-mark", "1")
    net.censor_rule(
        "-A",
        "FORWARD",
        "-m",
        "connmark",
        "--mark",
        "1",
        "-m",
        "hashlimit",
        "--hashlimit-above",
        RATE,
        "--hashlimit-burst",
        BURST,
        "--hashlimit-mode",
        "srcip,dstip,srcport,dstport",
        "--hashlimit-name",
        f"mpt{os.getpid()}",
        "-j",
        "DROP",
    )


def once(net: Network, workdir: Path) -> dict[str, Any]:
    (result,) = net.once(workdir / "probe.yaml", timeout=ONCE_TIMEOUT)["results"]
    assert isinstance(result, dict)
    return result


def show(result: dict[str, Any]) -> str:
    """What a failed assertion prints: the verdict, the rows, the pairs' arms."""
    transfers = [e["samples"] for e in result["trace"] if e["operation"] == "transfer"]
    shown = [result["evidence"], result["checks"], result["observations"]["other"], transfers]
    return json.dumps(shown)[:20000]


def rows(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c for c in result["checks"] if c["check"].startswith(kind + ":")]


def test_an_sni_triggered_policer_is_throttled(net: Network, workdir: Path) -> None:
    police(net, "-d", THROTTLED_IP, "--dport", "443", "-m", "string", "--algo", "bm", "--string", HOST)
    result = once(net, workdir)
    evidence = result["evidence"]
    assert (result["status"], result["method"]) == ("blocked", "throttled"), show(result)
    assert [w["kind"] for w in evidence["witnesses"]] == ["decoy"] and DECOY in evidence["witnesses"][0][
        "detail"
    ]
    (http,) = rows(result, "http")
    assert http["slow"].startswith("slow: "), http  # T0: slow, not http.timeout
    (pairs,) = rows(result, "throttle")
    real, decoy = pairs["real_goodput_Bps"], pairs["decoy_goodput_Bps"]
    assert 4_000 < real < 40_000, pairs  # the policer's 16 kB/s, as a dropping policer delivers it
    assert decoy >= 10 * real, pairs


def test_no_rule_is_ok(net: Network, workdir: Path) -> None:
    result = once(net, workdir)
    assert (result["status"], result["method"]) == ("ok", None), show(result)
    (pairs,) = rows(result, "throttle")
    assert pairs.get("skipped") == "not due", pairs  # nothing slow: no pairs spent


def test_the_same_policer_without_the_sni_trigger_is_never_a_block(net: Network, workdir: Path) -> None:
    police(net, "-d", THROTTLED_IP, "--dport", "443")
    result = once(net, workdir)
    assert result["status"] != "blocked", show(result)
    (pairs,) = rows(result, "throttle")
    assert pairs["reason"].startswith("slow transfer"), pairs  # the pairs ran, and found both slow
    assert pairs["decoy_goodput_Bps"] < 10 * pairs["real_goodput_Bps"], pairs
