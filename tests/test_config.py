"""Strict config loading: every bad fixture yields exactly its message, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.cli import main
from probe.config import ConfigError, load_config
from probe.vocab import CheckKind

FIXTURES = Path(__file__).parent / "fixtures" / "config"
BAD = sorted(FIXTURES.glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ").replace("{path}", str(path)).replace("{dir}", str(path.parent))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_each_bad_fixture_gives_its_message(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [_expected(path)]


@pytest.mark.parametrize("path", BAD[:3], ids=[p.stem for p in BAD[:3]])
def test_check_config_exits_2_with_the_message(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"msgprobe: {_expected(path)}"


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
