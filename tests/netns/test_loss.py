"""No false blocks under loss: 1,000 measurements of clean services through
a censor that drops 10% of packets at random, in both directions, and does
nothing else, give zero ``blocked`` (``msgprobe once`` as a volunteer runs
it: a non-ok endpoint measured again and kept only if the attempts agree).

The services sit behind a resolver whose answers rotate (a slow recursive
resolver in front of a round-robin name: a retransmitted query gets the
other address), so lost DNS packets also produce two different genuine
replies to one query, the case ``dns.injected`` must not mistake for an
injection.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_netns
from tests.netns import topology
from tests.netns.serve_loss import ADDRESSES, CANARY, DOH_IP, RESOLVER_IP, SERVER_IPS, names

RUNS = 8  # x 125 endpoints = 1,000 measurements
LOSS = "0.1"
ONCE_TIMEOUT = 120.0


def _config(workdir: Path) -> dict[str, Any]:
    return {
        "catalog": "none",
        "confirm": 2,
        "concurrency": 32,
        "timeouts": {"dns": "4s", "connect": "5s", "tls": "5s", "http": "10s", "cycle": "100s"},
        "resolvers": [RESOLVER_IP],
        "control_resolvers": [f"https://{DOH_IP}/dns-query"],
        "dns": {"canary": CANARY},
        "decoy": {"sni": "decoy.msgprobe.test", "host": "decoy.msgprobe.test"},
        "tls": {"ca_bundle": str(workdir / "ca.pem")},
        "test_networks": ["10.77.0.0/16"],
        "services": [
            {
                "name": f"clean{n}",
                "expected": {"prefixes": [f"{ip}/32" for ip in SERVER_IPS]},
                "endpoints": [
                    {
                        "host": name,
                        "checks": ["dns", "tcp:443", "tls:443", f"http:https://{name}/"],
                        "source": "tests/netns/serve_loss: a genuine server",
                    }
                ],
            }
            for n, name in enumerate(names())
        ],
    }


def test_ten_percent_loss_gives_no_block(tmp_path: Path) -> None:
    require_netns()
    (tmp_path / "probe.yaml").write_text(yaml.safe_dump(_config(tmp_path)), encoding="utf-8")
    statuses: collections.Counter[str] = collections.Counter()
    blocked: list[dict[str, Any]] = []
    with topology.network() as net:
        net.start_servers("tests.netns.serve_loss", tmp_path, addresses=ADDRESSES)
        net.censor_rule(
            "-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", LOSS, "-j", "DROP"
        )
        for _ in range(RUNS):
            report = net.once(tmp_path / "probe.yaml", timeout=ONCE_TIMEOUT)
            for result in report["results"]:
                statuses[result["status"]] += 1
                if result["status"] == "blocked":
                    blocked.append({k: result[k] for k in ("service", "method", "evidence")})
        dropped = net.exec(net.censor, "iptables", "-w", "5", "-L", "FORWARD", "-v", "-x", "-n")
    print(f"10% loss: {sum(statuses.values())} measurements: {dict(statuses)}")
    print(dropped)
    assert sum(statuses.values()) == RUNS * len(names())
    assert not blocked, json.dumps(blocked[:5], indent=1)
