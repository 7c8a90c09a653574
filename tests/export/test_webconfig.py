"""``--web.config.file``: every bad fixture gives exactly its message; TLS and basic auth on real
servers (127.0.0.1, ephemeral ports) with a test CA."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import shutil
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry

from probe.cli import main
from probe.config.nodes import ConfigError
from probe.export.metrics import SnapshotCollector
from probe.export.web import bound_addresses, make_app, serve
from probe.export.webconfig import ClientAuthType, TLSVersion, WebConfig, load_web_config
from probe.testbed.pki import TestCA
from tests.export import snapshots

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webconfig"
BAD = sorted(FIXTURES.glob("*.yaml"))
# Low rounds: the tests exercise the check, not its cost.
RIGHT = b"correct horse"
HASH = bcrypt.hashpw(RIGHT, bcrypt.gensalt(4)).decode()
CHALLENGE = 'Basic realm="msgprobe"'


@dataclasses.dataclass(frozen=True)
class Pki:
    """A test CA and the files a web config names, in one directory."""

    ca: TestCA
    dir: Path

    def copy_to(self, target: Path) -> None:
        for path in self.dir.iterdir():
            shutil.copy(path, target / path.name)

    def client_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.dir / "ca.crt")
        if client_cert:
            context.load_cert_chain(self.dir / "client.crt", self.dir / "client.key")
        return context


def _client_leaf(ca: TestCA) -> tuple[bytes, bytes]:
    """A client certificate from ``ca``: TestCA's leaves are for servers (EKU serverAuth only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prometheus")]))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = TestCA()
    directory = tmp_path_factory.mktemp("pki")
    server, other = ca.issue(["127.0.0.1"]), ca.issue(["other.test"])
    client_cert, client_key = _client_leaf(ca)
    for name, data in {
        "ca.crt": ca.cert_pem,
        "server.crt": server.cert_pem,
        "server.key": server.key_pem,
        "other.key": other.key_pem,
        "client.crt": client_cert,
        "client.key": client_key,
        "garbage.pem": b"not a certificate, not a key\n",
    }.items():
        (directory / name).write_bytes(data)
    return Pki(ca, directory)


def _expected(path: Path, copy: Path) -> list[str]:
    """The fixture's leading ``# expect:`` lines, for its copy at ``copy``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    expected = [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]
    assert expected and lines[0].startswith("# expect: "), path
    return [e.replace("{path}", str(copy)).replace("{dir}", str(copy.parent)) for e in expected]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_each_bad_fixture_gives_its_message(path: Path, pki: Pki, tmp_path: Path) -> None:
    # Copied next to the PKI's files: the fixtures name them relative to themselves.
    pki.copy_to(tmp_path)
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    with pytest.raises(ConfigError) as caught:
        load_web_config(copy)
    assert caught.value.problems == _expected(path, copy)


def test_a_bad_hash_is_never_echoed(pki: Pki, tmp_path: Path) -> None:
    # Someone pastes the password itself: it must not reach the terminal or a log.
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n  alice: hunter2\n")
    with pytest.raises(ConfigError) as caught:
        load_web_config(config)
    assert "hunter2" not in str(caught.value)


def test_all_problems_are_listed_at_once(pki: Pki, tmp_path: Path) -> None:
    pki.copy_to(tmp_path)
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n  min_version: TLS10\n"
        "basic_auth_users:\n  alice: plain\n  bob: also-plain\n"
        "extra: 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_web_config(config)
    keys = [p.split(": ")[1] for p in caught.value.problems]
    assert keys == [
        "extra",
        "tls_server_config.cert_file",
        "tls_server_config.min_version",
        "basic_auth_users.alice",
        "basic_auth_users.bob",
    ]


def test_run_exits_2_with_the_message_before_listening(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki.copy_to(tmp_path)
    fixture = FIXTURES / "key_mismatch.yaml"
    copy = tmp_path / fixture.name
    shutil.copy(fixture, copy)
    assert main(["run", "--web.config.file", str(copy), "--web.listen-address", "127.0.0.1:0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"msgprobe: {e}" for e in _expected(fixture, copy)
    ]


def test_paths_are_relative_to_the_file_and_the_defaults_are_the_toolkits(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki.copy_to(tmp_path)
    (tmp_path / "web.yml").write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    monkeypatch.chdir(pki.dir.parent)  # not where the files are
    config = load_web_config(tmp_path / "web.yml")
    assert config.tls is not None
    assert (config.tls.cert_file, config.tls.key_file) == (tmp_path / "server.crt", tmp_path / "server.key")
    assert config.tls.client_auth_type is ClientAuthType.NO_CLIENT_CERT
    assert config.tls.min_version is TLSVersion.TLS12
    assert config.ssl_context() is config.ssl_context()  # built once
    assert config.users == {}


def test_an_empty_file_means_plain_http_without_auth(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("")
    config = load_web_config(tmp_path / "web.yml")
    assert (config.tls, config.users, config.ssl_context()) == (None, {}, None)


# --- real servers ---------------------------------------------------------------------------


class Counting:
    """The bcrypt seam: counts checks, and can hold one until the test lets it go."""

    def __init__(self, *, gate: threading.Event | None = None) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.gate = gate

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.calls += 1
        self.entered.set()
        if self.gate is not None and not self.gate.wait(10):
            raise AssertionError("the test never released the bcrypt check")
        return bcrypt.checkpw(password, hashed)


def _write(directory: Path, text: str) -> Path:
    path = directory / "web.yml"
    path.write_text(text)
    return path


TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
USERS = f"basic_auth_users:\n  prometheus: {HASH}\n"


@asynccontextmanager
async def running(
    config: WebConfig | None, context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """The exporter's own app, served with ``config``; a session (trusting ``context``) and its base URL."""
    registry = CollectorRegistry(auto_describe=True)
    snapshot = snapshots.scenario()
    registry.register(SnapshotCollector(lambda: snapshot))
    runner = await serve(make_app(lambda: snapshot, registry=registry), "127.0.0.1:0", web_config=config)
    try:
        (address,) = bound_addresses(runner)
        scheme = "https" if config is not None and config.tls is not None else "http"
        connector = aiohttp.TCPConnector(ssl=context if context is not None else True)
        async with aiohttp.ClientSession(connector=connector) as session:
            yield session, f"{scheme}://{address}"
    finally:
        await runner.cleanup()


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def auth(user: str, password: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user.encode() + b":" + password).decode()}


def test_tls_serves_a_client_that_trusts_the_ca(pki: Pki, tmp_path: Path) -> None:
    pki.copy_to(tmp_path)
    config = load_web_config(_write(tmp_path, TLS))

    async def test() -> None:
        async with running(config, pki.client_context()) as (session, base):
            assert base.startswith("https://")
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert "msgprobe_build_info" in await response.text()

    run(test)


def test_plain_http_to_the_tls_port_fails(pki: Pki, tmp_path: Path) -> None:
    pki.copy_to(tmp_path)
    config = load_web_config(_write(tmp_path, TLS))

    async def test() -> None:
        async with running(config, pki.client_context()) as (session, base):
            with pytest.raises(aiohttp.ClientError):
                async with session.get(base.replace("https://", "http://") + "/-/healthy"):
                    pass

    run(test)


def test_a_client_that_does_not_trust_the_ca_is_refused(pki: Pki, tmp_path: Path) -> None:
    pki.copy_to(tmp_path)
    config = load_web_config(_write(tmp_path, TLS))
    stranger = TestCA("someone else's CA")
    context = ssl.create_default_context(cadata=stranger.cert_pem.decode())

    async def test() -> None:
        async with running(config, context) as (session, base):
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with session.get(f"{base}/-/healthy"):
                    pass

    run(test)


def test_min_version_tls13_refuses_a_tls12_client(pki: Pki, tmp_path: Path) -> None:
    pki.copy_to(tmp_path)
    config = load_web_config(_write(tmp_path, TLS + "  min_version: TLS13\n"))
    old = pki.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2

    async def test() -> None:
        async with running(config, pki.client_context()) as (session, base):
            async with session.get(f"{base}/-/healthy") as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"{base}/-/healthy", ssl=old):
                    pass

    run(test)


def test_require_and_verify_client_cert(pki: Pki, tmp_path: Path) -> None:
    pki.copy_to(tmp_path)
    text = TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
    config = load_web_config(_write(tmp_path, text))

    async def test() -> None:
        async with running(config, pki.client_context(client_cert=True)) as (session, base):
            async with session.get(f"{base}/-/healthy") as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"{base}/-/healthy", ssl=pki.client_context()) as response:
                    await response.read()  # TLS 1.3: the server's refusal arrives after the handshake

    run(test)


def test_basic_auth_guards_every_route(tmp_path: Path) -> None:
    config = load_web_config(_write(tmp_path, USERS))

    async def test() -> None:
        async with running(config) as (session, base):
            for route in ("/metrics", "/-/healthy", "/-/ready", "/status", "/"):
                async with session.get(f"{base}{route}") as response:
                    assert response.status == 401, route
                    assert response.headers["WWW-Authenticate"] == CHALLENGE
            async with session.post(f"{base}/-/reload") as response:
                assert response.status == 401
            async with session.get(f"{base}/-/healthy", headers=auth("prometheus", RIGHT)) as response:
                assert response.status == 200
                assert await response.text() == "OK\n"

    run(test)


@pytest.mark.parametrize(
    "headers",
    [
        auth("prometheus", b"wrong"),
        auth("nobody", RIGHT),
        auth("prometheus", RIGHT + b"x" * 80),  # over bcrypt's 72 bytes: refused, not truncated
        {"Authorization": "Bearer " + base64.b64encode(b"prometheus:" + RIGHT).decode()},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no colon").decode()},
    ],
    ids=["wrong-password", "unknown-user", "too-long", "not-basic", "not-base64", "no-colon"],
)
def test_anything_but_the_right_password_is_401(tmp_path: Path, headers: dict[str, str]) -> None:
    config = load_web_config(_write(tmp_path, USERS))

    async def test() -> None:
        async with (
            running(config) as (session, base),
            session.get(f"{base}/metrics", headers=headers) as response,
        ):
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == CHALLENGE

    run(test)


def test_htpasswd_2y_hashes_work(tmp_path: Path) -> None:
    # htpasswd -B writes $2y$; bcrypt's own gensalt writes $2b$: the same algorithm.
    config = load_web_config(_write(tmp_path, USERS.replace("$2b$", "$2y$")))

    async def test() -> None:
        async with running(config) as (session, base):
            response = await session.get(f"{base}/metrics", headers=auth("prometheus", RIGHT))
            assert response.status == 200
            response.release()

    run(test)


def test_a_verified_password_is_not_checked_again_and_a_wrong_one_always_is(tmp_path: Path) -> None:
    counting = Counting()
    config = dataclasses.replace(load_web_config(_write(tmp_path, USERS)), checkpw=counting)

    async def test() -> None:
        async with running(config) as (session, base):

            async def status(password: bytes, user: str = "prometheus") -> int:
                async with session.get(f"{base}/metrics", headers=auth(user, password)) as response:
                    return response.status

            assert await status(RIGHT) == 200
            assert counting.calls == 1
            assert [await status(RIGHT) for _ in range(3)] == [200, 200, 200]
            assert counting.calls == 1  # remembered: a scrape every 15 s pays bcrypt once
            assert [await status(b"wrong"), await status(b"wrong")] == [401, 401]
            assert counting.calls == 3  # failures are never remembered
            assert await status(RIGHT, user="nobody") == 401
            assert counting.calls == 4  # an unknown user costs a check too: no timing oracle
            assert await status(RIGHT) == 200
            assert counting.calls == 4  # a wrong guess did not evict the right password

    run(test)


def test_the_loop_keeps_serving_while_bcrypt_runs(tmp_path: Path) -> None:
    gate = threading.Event()
    counting = Counting(gate=gate)
    config = dataclasses.replace(load_web_config(_write(tmp_path, USERS)), checkpw=counting)

    async def test() -> None:
        async with running(config) as (session, base):

            async def scrape() -> int:
                async with session.get(f"{base}/metrics", headers=auth("prometheus", RIGHT)) as response:
                    return response.status

            held = asyncio.create_task(scrape())
            try:
                # The check is running in its thread, and held there.
                assert await asyncio.to_thread(counting.entered.wait, 5)
                # Had it run on the loop, nothing below could happen until the gate opened.
                async with session.get(f"{base}/-/healthy") as response:
                    assert response.status == 401
                ticked = asyncio.Event()

                async def ticker() -> None:
                    for _ in range(100):
                        await asyncio.sleep(0)
                    ticked.set()

                ticking = asyncio.create_task(ticker())
                async with asyncio.timeout(5):
                    await ticked.wait()
                await ticking
                assert not held.done()
            finally:
                gate.set()
            assert await held == 200
            assert counting.calls == 1

    run(test)


def test_tls_and_basic_auth_together(pki: Pki, tmp_path: Path) -> None:
    pki.copy_to(tmp_path)
    config = load_web_config(_write(tmp_path, TLS + USERS))

    async def test() -> None:
        async with running(config, pki.client_context()) as (session, base):
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 401
            async with session.get(f"{base}/metrics", headers=auth("prometheus", RIGHT)) as response:
                assert response.status == 200

    run(test)


def test_without_a_web_config_it_is_plain_http_without_auth() -> None:
    async def test() -> None:
        async with running(None) as (session, base):
            assert base.startswith("http://")
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200

    run(test)
