"""Strict config loading: every bad fixture yields exactly its message, exit code 2."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from probe.cli import main
from probe.config.load import load_config
from probe.config.model import Config, ControlPeer, ResolverSpec, Timeouts
from probe.config.nodes import ConfigError
from probe.vocab import CheckKind, Confidence

FIXTURES = Path(__file__).parent / "fixtures" / "config"
BAD = sorted(FIXTURES.glob("*.yaml"))


def _expected(path: Path) -> list[str]:
    """The fixture's leading ``# expect:`` lines: one per problem, in the order reported."""
    lines = path.read_text(encoding="utf-8").splitlines()
    expected = [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]
    assert expected and lines[0].startswith("# expect: "), path
    return [e.replace("{path}", str(path)).replace("{dir}", str(path.parent)) for e in expected]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_each_bad_fixture_gives_its_message(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == _expected(path)


@pytest.mark.parametrize("path", BAD[:3], ids=[p.stem for p in BAD[:3]])
def test_check_config_exits_2_with_the_message(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"msgprobe: {e}" for e in _expected(path)]


def test_all_problems_are_listed_at_once(tmp_path: Path) -> None:
    config = tmp_path / "many.yaml"
    config.write_text(
        "catalog: none\nintervall: 5m\nconfirm: 0\nresolvers: [nope]\n"
        "services: [{name: a, endpoints: [{host: a.example, checks: [dns, ping]}]}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    keys = [p.split(": ")[1] for p in caught.value.problems]
    assert keys == ["intervall", "confirm", "resolvers", "services.a.endpoints[0].checks"]


def test_embedded_default_is_valid_and_uses_the_catalog() -> None:
    config = load_config()
    assert config.resolvers[0].transport == "system"
    assert all(r.transport == "doh" for r in config.control_resolvers)
    assert {"wechat", "line", "telegram", "zello", "bbm"} <= {s.name for s in config.services}


def test_inline_service_replaces_catalog_one_and_select_filters(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "select: [wechat, mine]\n"
        "services:\n"
        "  - name: wechat\n    endpoints: [{host: web.wechat.com, checks: [dns]}]\n"
        "  - name: mine\n    endpoints: [{host: 198.51.100.7, checks: ['tcp:443']}]\n"
    )
    loaded = load_config(config)
    assert [s.name for s in loaded.services] == ["wechat", "mine"]
    assert [e.host for e in loaded.service("wechat").endpoints] == ["web.wechat.com"]
    assert loaded.service("mine").endpoints[0].checks[0].kind is CheckKind.TCP


def test_every_key_lands_on_its_attribute(tmp_path: Path) -> None:
    # The table's rows are type-checked, but two str attributes could still be
    # swapped: every key gets a value of its own and the whole Config is compared.
    for name in ("ca.pem", "asn.mmdb", "fp.yaml", "token", "peer-ca.pem"):
        (tmp_path / name).write_text("")
    config = tmp_path / "all.yaml"
    config.write_text(
        "probe: {id: v1, country: RU, asn: 12389}\n"
        "interval: 7m\njitter: 7s\nconcurrency: 7\nconfirm: 3\n"
        "timeouts: {dns: 1s, connect: 2s, tls: 3s, http: 4s, cycle: 5s, control: 6s}\n"
        "resolvers: [192.0.2.53]\ncontrol_resolvers: [https://192.0.2.1/dns-query]\n"
        "dns: {canary: canary.example, injection_window: 7ms}\n"
        "decoy: {sni: sni.example, host: host.example}\n"
        "tls: {ca_bundle: ca.pem}\nasn_database: asn.mmdb\nblockpages: fp.yaml\n"
        "evidence: {path: ev.jsonl, max_size: 7}\ntest_networks: [198.18.0.0/15]\n"
        "control_peers: [{url: 'https://peer.example:9491/', token_file: token, ca_bundle: peer-ca.pem}]\n"
        "catalog: none\nservices: [{name: a, endpoints: [{host: a.example, checks: [dns]}]}]\n"
    )
    loaded = load_config(config)
    assert loaded == Config(
        path=config,
        services=loaded.services,
        interval=420.0,
        jitter=7.0,
        timeouts=Timeouts(dns=1.0, connect=2.0, tls=3.0, http=4.0, cycle=5.0, control=6.0),
        concurrency=7,
        confirm=3,
        resolvers=(ResolverSpec("192.0.2.53", "udp", host="192.0.2.53"),),
        control_resolvers=(
            ResolverSpec(
                "https://192.0.2.1/dns-query",
                "doh",
                host="192.0.2.1",
                port=443,
                url="https://192.0.2.1/dns-query",
            ),
        ),
        canary_name="canary.example",
        injection_window=0.007,
        decoy_sni="sni.example",
        decoy_host="host.example",
        ca_bundle=tmp_path / "ca.pem",
        asn_database=tmp_path / "asn.mmdb",
        blockpages=(tmp_path / "fp.yaml",),
        evidence_path=tmp_path / "ev.jsonl",
        evidence_max_bytes=7,
        probe_id="v1",
        country="RU",
        asn="12389",
        test_networks=(ipaddress.ip_network("198.18.0.0/15"),),
        control_peers=(
            ControlPeer("https://peer.example:9491", tmp_path / "token", tmp_path / "peer-ca.pem"),
        ),
    )
    assert loaded.control_peers[0].name == "peer.example:9491"


def test_endpoint_keeps_its_confidence(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "catalog: none\nservices: [{name: a, endpoints: [\n"
        "  {host: a.example, checks: [dns], confidence: low},\n"
        "  {host: b.example, checks: [dns]}]}]\n"
    )
    stated, unstated = load_config(config).service("a").endpoints
    assert stated.confidence is Confidence.LOW and unstated.confidence is None
    # The catalog grades its endpoints with every level, and the grades survive loading.
    assert {e.confidence for s in load_config().services for e in s.endpoints} >= set(Confidence)


def test_resolver_forms(tmp_path: Path) -> None:
    config = tmp_path / "r.yaml"
    config.write_text(
        "catalog: none\n"
        "resolvers: [system, 127.0.0.1, '127.0.0.2:5353', 'tcp://[::1]:53', https://127.0.0.3/dns-query]\n"
        "services: [{name: a, endpoints: [{host: a.example, checks: [dns]}]}]\n"
    )
    forms = [(r.transport, r.host, r.port) for r in load_config(config).resolvers]
    assert forms == [
        ("system", "", 53),
        ("udp", "127.0.0.1", 53),
        ("udp", "127.0.0.2", 5353),
        ("tcp", "::1", 53),
        ("doh", "127.0.0.3", 443),
    ]


def test_cli_rejects_unknown_service_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["once", "--service", "wechatt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("msgprobe: ") and "unknown service 'wechatt'" in err
