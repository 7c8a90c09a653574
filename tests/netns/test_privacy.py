"""The volunteer's address never reaches any output, even when every server
echoes it back (``tests.netns.serve_echo``): in titles, bodies, headers,
cookies, redirect targets (plain and percent-encoded), as ``IP:port``,
``IP.`` and ``::ffff:IP``.

The probe runs in the client namespace at ``CLIENT_IP``: ``msgprobe once``
(table and JSON) and the daemon for a cycle, whose stdout, stderr (JSON
logs at debug level), ``/metrics``, ``/status``, ``/`` and evidence file are
all read back and searched for the address.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_netns
from tests.netns import topology
from tests.netns.serve_echo import ADDRESSES, DOH_IP, RESOLVER_IP
from tests.netns.topology import CLIENT_IP

LISTEN = "127.0.0.1:9490"  # the daemon's, inside the client namespace
FETCH = (
    "import sys, urllib.request\n"
    "for path in sys.argv[1:]:\n"
    "    with urllib.request.urlopen('http://" + LISTEN + "' + path, timeout=10) as r:\n"
    "        sys.stdout.write(r.read().decode())\n"
)


def _config(workdir: Path) -> dict[str, Any]:
    endpoints = [
        {
            "host": "echo.privacy.test",
            "checks": ["dns", "tcp:443", "tls:443", "http:https://echo.privacy.test/"],
        },
        {"host": "echo.privacy.test", "checks": ["dns", "tcp:80", "http:http://echo.privacy.test/"]},
        {"host": "redirect.privacy.test", "checks": ["dns", "tcp:80", "http:http://redirect.privacy.test/"]},
        {"host": "redirect.privacy.test", "checks": ["dns", "http:https://redirect.privacy.test/"]},
    ]
    return {
        "catalog": "none",
        "confirm": 1,
        "interval": "1h",
        "jitter": "0s",
        "timeouts": {"dns": "2s", "connect": "2s", "tls": "2s", "http": "3s", "cycle": "30s"},
        "resolvers": [RESOLVER_IP],
        "control_resolvers": [f"https://{DOH_IP}/dns-query"],
        "dns": {"canary": "canary.privacy.test"},
        "tls": {"ca_bundle": str(workdir / "ca.pem")},
        "test_networks": ["10.77.0.0/16"],
        "evidence": {"path": str(workdir / "evidence.jsonl")},
        "services": [
            {"name": f"echo{n}", "endpoints": [{**e, "source": "tests/netns/serve_echo"}]}
            for n, e in enumerate(endpoints)
        ],
    }


def test_no_output_carries_the_volunteers_address(tmp_path: Path) -> None:
    require_netns(iptables=False)
    config = tmp_path / "probe.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path)), encoding="utf-8")
    outputs: dict[str, str] = {}
    with topology.network() as net:
        net.start_servers("tests.netns.serve_echo", tmp_path, addresses=ADDRESSES)
        for fmt in ("table", "json"):
            run = net.python(
                net.client, "-m", "probe", "once", "--config", str(config), "--format", fmt, timeout=60
            )
            assert run.returncode == 0, run.stderr
            outputs[f"once {fmt} stdout"], outputs[f"once {fmt} stderr"] = run.stdout, run.stderr
        # The servers did echo it: the test would prove nothing otherwise.
        assert "echo" in outputs["once json stdout"] and "403" in outputs["once json stdout"]
        daemon = net.start(
            net.client,
            "daemon",
            [
                sys.executable,
                "-m",
                "probe",
                "run",
                "--config.file",
                str(config),
                "--web.listen-address",
                LISTEN,
                "--log.level",
                "debug",
                "--log.format",
                "json",
            ],
        )
        daemon.stderr.expect("cycle done", 60.0)
        fetched = net.python(net.client, "-c", FETCH, "/metrics", "/status", "/", timeout=30)
        assert fetched.returncode == 0, fetched.stderr
        outputs["http"] = fetched.stdout
        daemon.stop()
        outputs["daemon stderr"] = "\n".join(daemon.stderr.seen)
        outputs["daemon stdout"] = "\n".join(daemon.stdout.seen)
    outputs["evidence"] = (tmp_path / "evidence.jsonl").read_text(encoding="utf-8")
    assert outputs["evidence"].strip(), "no evidence was written: the echo servers answer 403"
    assert "[scrubbed]" in outputs["once json stdout"]
    leaks = {name: text.count(CLIENT_IP) for name, text in outputs.items() if CLIENT_IP in text}
    encoded = {name for name, text in outputs.items() if CLIENT_IP.replace(".", "%2E") in text}
    assert not leaks and not encoded, (leaks, encoded)
