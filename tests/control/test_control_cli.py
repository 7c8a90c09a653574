"""``msgprobe control`` from the command line: issuing a token, and a real process serving."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import yaml

from probe import cli
from probe.control import tokens
from probe.control.api import PATH, Summary
from probe.testbed.config_document import config_document
from probe.testbed.pki import TestCA
from probe.testbed.scenarios import FakeService, LoopbackCensor
from tests.control.bed import CLIENT_IP, RELAY_IP


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """``cli.main`` sets up logging for the process; give the next test its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def control(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", "control", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )


def test_tokens_add_prints_the_token_once_and_keeps_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restored_logging: None
) -> None:
    path = tmp_path / "tokens"
    assert cli.main(["control", "--tokens.file", str(path), "--tokens.add", "probe-ru-1"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert "shown only this once" in err and token not in err
    assert path.read_text() == tokens.line_for("probe-ru-1", token) + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli.main(["control", "--tokens.file", str(path), "--tokens.add", "probe-ru-1"]) == 2
    assert "a token with this name exists" in capsys.readouterr().err


def test_bad_flags_and_files_start_nothing(tmp_path: Path) -> None:
    absent = control("--tokens.file", str(tmp_path / "absent"), "--web.listen-address", "127.0.0.1:0")
    assert absent.returncode == 2
    assert absent.stderr.startswith(f"msgprobe: {tmp_path / 'absent'}: cannot read the token file")
    (tmp_path / "tokens").write_text("probe-1 sha256:beef\n")
    bad = control("--tokens.file", str(tmp_path / "tokens"), "--control.max-in-flight", "0")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == ["msgprobe: --control.max-in-flight 0: at least 1"]
    web = control("--tokens.file", str(tmp_path / "tokens"), "--web.config.file", str(tmp_path / "web.yml"))
    assert web.returncode == 2  # a web config that cannot be read: never serve in the clear
    assert str(tmp_path / "web.yml") in web.stderr
    broken = control("--tokens.file", str(tmp_path / "tokens"), "--web.listen-address", "127.0.0.1:0")
    assert broken.returncode == 2
    assert "tokens:1: probe-1: expected sha256: and 64 lower-case hex digits" in broken.stderr


def test_a_control_process_answers_a_probe_and_stops_on_sigterm(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, Summary, int, str]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            config = bed.config([await bed.add(FakeService("clean"))])
            path = tmp_path / "control.yaml"
            path.write_text(yaml.safe_dump(config_document(config)))
            token_path = tmp_path / "tokens"
            token = tokens.add(token_path, "probe-1")
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "probe",
                "control",
                "--config.file",
                str(path),
                "--tokens.file",
                str(token_path),
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.level",
                "debug",
                stderr=asyncio.subprocess.PIPE,
            )
            assert proc.stderr is not None
            log: list[str] = []
            try:
                async with asyncio.timeout(20):
                    while "control listening" not in (line := (await proc.stderr.readline()).decode()):
                        assert line, "".join(log)
                        log.append(line)
                log.append(line)
                address = re.search(r"address=(\S+)", line).group(1)  # type: ignore[union-attr]
                connector = aiohttp.TCPConnector(local_addr=(CLIENT_IP, 0), family=socket.AF_INET)
                body = {"service": "clean", "endpoint": "clean.msgprobe.test", "addresses": [RELAY_IP]}
                auth = {"Authorization": f"Bearer {token}"}
                async with (
                    aiohttp.ClientSession(connector=connector) as http,
                    http.post(f"http://{address}{PATH}", json=body, headers=auth) as r,
                ):
                    status, summary = r.status, Summary.from_json(await r.json())
            finally:
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(proc.wait(), 10)
            rest = "".join(log) + (await proc.stderr.read()).decode()
            return status, summary, code, rest

    status, summary, code, log = asyncio.run(scenario())
    assert status == 200
    # Nothing listens at the relay address in this test: the probe's answer fails, the control's works.
    assert {(c.address, c.failure) for c in summary.tcp} == {
        ("127.0.0.10", None),
        (RELAY_IP, "connection_refused"),
    }
    assert code == 0, log
    assert "control request" in log and "probe=probe-1" in log and "stopped" in log
    assert CLIENT_IP not in log and "Traceback" not in log


def test_a_control_over_tls_with_basic_auth_still_takes_the_probes_tokens(tmp_path: Path) -> None:
    """--web.config.file: TLS for every route; basic auth for all but the measure route,
    which authenticates probes by their bearer tokens (both use Authorization)."""
    ca = TestCA()
    leaf = ca.issue(["127.0.0.1"])
    (tmp_path / "server.crt").write_bytes(leaf.cert_pem)
    (tmp_path / "server.key").write_bytes(leaf.key_pem)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    hashed = bcrypt.hashpw(b"watchdog-secret", bcrypt.gensalt(4)).decode()
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  watchdog: '{hashed}'\n"
    )

    async def scenario() -> tuple[int, int, int, int, int]:
        async with LoopbackCensor(tmp_path, max_services=1) as bed:
            config = bed.config([await bed.add(FakeService("clean"))])
            path = tmp_path / "control.yaml"
            path.write_text(yaml.safe_dump(config_document(config)))
            token = tokens.add(tmp_path / "tokens", "probe-1")
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "probe", "control", "--config.file", str(path)),
                *("--tokens.file", str(tmp_path / "tokens"), "--web.config.file", str(tmp_path / "web.yml")),
                *("--web.listen-address", "127.0.0.1:0"),
                stderr=asyncio.subprocess.PIPE,
            )
            assert proc.stderr is not None
            try:
                async with asyncio.timeout(20):
                    while "control listening" not in (line := (await proc.stderr.readline()).decode()):
                        assert line, "the control exited"
                address = re.search(r"address=(\S+)", line).group(1)  # type: ignore[union-attr]
                trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
                body = {"service": "clean", "endpoint": "clean.msgprobe.test"}
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as http:
                    url = f"https://{address}"
                    async with http.post(
                        url + PATH, json=body, headers={"Authorization": f"Bearer {token}"}
                    ) as r:
                        measured = r.status
                    async with http.get(url + "/metrics") as r:
                        anonymous = r.status
                    basic = {
                        "Authorization": "Basic " + base64.b64encode(b"watchdog:watchdog-secret").decode()
                    }
                    async with http.get(url + "/metrics", headers=basic) as r:
                        watchdog = r.status
                    async with http.post(url + PATH, json=body) as r:
                        no_token = r.status
                async with aiohttp.ClientSession() as plain:
                    try:
                        async with plain.get(f"http://{address}/-/healthy") as r:
                            cleartext = r.status
                    except aiohttp.ClientError:
                        cleartext = 0
            finally:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 10)
            return measured, anonymous, watchdog, no_token, cleartext

    measured, anonymous, watchdog, no_token, cleartext = asyncio.run(scenario())
    assert (measured, anonymous, watchdog, no_token) == (200, 401, 200, 401)
    assert cleartext != 200  # plain HTTP to the TLS port gets nothing
