"""config/blockpages.yaml: generated faithfully from OONI's CSVs, loaded
strictly and fast, and matched with OONI's scopes."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from probe.analysis.fingerprints import BODY_WINDOW, match_dns, match_http, match_interception_ca
from probe.config.fingerprints import Kind, Scope, load_fingerprints
from probe.config.load import load_config
from probe.config.nodes import ConfigError, builtin_path
from probe.testbed.fingerprints import BLOCKPAGES
from probe.testbed.pages import ordinary_page
from tests.conftest import REQUIRE_TOOLS

ROOT = Path(__file__).resolve().parents[1]
# Beside the clone: this machine's /work/shared, and the copy of shared/ CI puts at ../shared.
CSV_DIR = ROOT.parent / "shared" / "research" / "ooni-blocking-fingerprints"
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "fingerprints").glob("*.yaml"))
BUILTIN = builtin_path("blockpages.yaml")
FPS = load_fingerprints()
HAND_WRITTEN = {"msgprobe.ru_eais_rkn", "msgprobe.ru_zapret_info"}


@pytest.fixture
def csv_dir() -> Path:
    """The OONI CSVs the converter reads; their absence fails CI (MSGPROBE_REQUIRE_TOOLS=1), never skips."""
    if not (CSV_DIR / "fingerprints_http.csv").is_file():
        message = f"OONI blocking-fingerprints CSVs not found at {CSV_DIR} (shared/ beside the clone)"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    return CSV_DIR


def _csv(csv_dir: Path, name: str) -> list[dict[str, str]]:
    with (csv_dir / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def page(size: int = 512 * 1024) -> bytes:
    return ordinary_page(size)


# ---------------------------------------------------------------- the generated file


def test_the_converter_reproduces_the_committed_file(csv_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "blockpages.yaml"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_fingerprints.py"), str(csv_dir), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "dropped 0 rows" in run.stderr
    assert out.read_bytes() == BUILTIN.read_bytes()


def test_every_csv_row_is_kept_in_order_with_its_name(csv_dir: Path) -> None:
    http = [f for f in FPS.http if f.name not in HAND_WRITTEN]
    assert [f.name for f in http] == [r["name"] for r in _csv(csv_dir, "fingerprints_http.csv")]
    assert [f.name for f in FPS.dns] == [r["name"] for r in _csv(csv_dir, "fingerprints_dns.csv")]
    row = next(r for r in _csv(csv_dir, "fingerprints_http.csv") if r["name"] == "ooni.ru_6")
    f = next(f for f in FPS.http if f.name == "ooni.ru_6")
    assert (f.scope, f.location, f.kind, f.pattern, f.countries) == (
        row["scope"],
        row["location_found"],
        row["pattern_type"],
        row["pattern"],
        ("RU",),
    )


def test_every_scope_location_and_kind_is_known() -> None:
    for f in FPS.http:
        assert isinstance(f.scope, Scope) and isinstance(f.kind, Kind), f.name
        assert f.location == "body" or f.location.startswith("header."), f.name
        assert f.location == f.location.lower(), f.name
    assert all(f.location == "dns" and f.kind is Kind.FULL and isinstance(f.scope, Scope) for f in FPS.dns)
    assert all(ca.source for ca in FPS.interception_cas)
    assert {f.name for f in FPS.http} >= HAND_WRITTEN


def test_the_fast_reader_and_the_yaml_reader_agree(tmp_path: Path) -> None:
    # The built-in file is read as JSON lines; the same data in block-style
    # YAML goes through the YAML node tree. Both must give the same result.
    document = yaml.load(
        BUILTIN.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    block = tmp_path / "block.yaml"
    block.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    slow = load_fingerprints(block)
    assert (slow.http, slow.dns, slow.interception_cas) == (FPS.http, FPS.dns, FPS.interception_cas)


def test_loading_is_fast() -> None:
    best = min(_timed(load_fingerprints) for _ in range(3))
    assert best < 0.5, f"{best * 1000:.0f} ms"  # ~60 ms here; a YAML parser alone takes ~250 ms


# ---------------------------------------------------------------- matching


def test_russian_isp_redirect_location_matches_by_name() -> None:
    match = match_http(FPS, (), b"", ("http://warning.rt.ru/?id=17&st=0&dt=1.2.3.4",))
    assert match is not None and match.blocks and match.fingerprint.name == "ooni.ru_6"


def test_location_header_of_the_final_response_matches_too() -> None:
    match = match_http(FPS, (("location", "http://fz139.ttk.ru/?blocked"),), b"")
    assert match is not None and match.blocks and match.fingerprint.name == "ooni.ru_29"


def test_roskomnadzor_stub_page_matches() -> None:
    body = "<p>Доступ к сайту ограничен в соответствии с Федеральными законами</p>".encode()
    match = match_http(FPS, (("content-type", "text/html"),), body)
    assert match is not None and match.blocks and match.fingerprint.name == "ooni.ru_0"


def test_register_link_over_https_matches_the_hand_written_fingerprint() -> None:
    body = b'<p>See <a href="https://eais.rkn.gov.ru/">the register</a></p>'
    match = match_http(FPS, (), body)
    assert match is not None and match.blocks and match.fingerprint.name == "msgprobe.ru_eais_rkn"


def test_known_false_positive_is_never_a_block() -> None:
    fp = next(f for f in FPS.http if f.scope == "fp" and f.kind == "contains" and f.location == "body")
    match = match_http(FPS, (), fp.pattern.encode())
    assert match is not None and match.false_positive and not match.blocks


def test_a_false_positive_vetoes_a_block_pattern_in_the_same_response() -> None:
    fp = next(f for f in FPS.http if f.scope == "fp" and f.kind == "contains" and f.location == "body")
    body = f"<p>Доступ к сайту ограничен в соответствии с Федеральными законами</p>{fp.pattern}".encode()
    match = match_http(FPS, (), body)
    assert match is not None and match.fingerprint is fp and not match.blocks


def test_vague_word_alone_is_recorded_not_a_block() -> None:
    match = match_http(FPS, (), "Доступ ограничен".encode())
    assert match is not None and match.fingerprint.scope == "vbw" and not match.blocks


def test_clean_pages_match_nothing() -> None:
    assert match_http(FPS, (("server", "nginx"),), b"<html><title>WeChat</title>hello</html>") is None
    assert match_http(FPS, (("server", "nginx"), ("content-type", "text/html")), page()) is None


def test_substrings_and_regexps_are_looked_for_in_the_first_64_kib() -> None:
    stub = "Доступ к сайту ограничен в соответствии с Федеральными законами".encode()
    near = page(BODY_WINDOW - len(stub) - 3) + stub
    far = page(BODY_WINDOW + 1024) + stub
    assert (m := match_http(FPS, (), near)) is not None and m.fingerprint.name == "ooni.ru_0"
    assert match_http(FPS, (), far) is None


def test_a_512_kib_page_is_matched_in_a_few_milliseconds() -> None:
    body = page()
    headers = (("server", "nginx"), ("content-type", "text/html"))
    best = min(_timed(lambda: match_http(FPS, headers, body)) for _ in range(5))
    assert best < 0.010, f"{best * 1000:.1f} ms"  # ~1 ms here; one search per pattern took ~20 ms


def test_dns_block_addresses_and_names() -> None:
    assert (found := match_dns(FPS, "8.7.198.45")) is not None and found.name == "ooni.cn_0"
    assert match_dns(FPS, "93.184.216.34") is None
    assert match_dns(FPS, "not an address") is None
    cname = next(f for f in FPS.dns if not f.pattern[0].isdigit() and ":" not in f.pattern)
    assert match_dns(FPS, cname.pattern.upper() + ".") is cname


def test_interception_issuers() -> None:
    isca = match_interception_ca(FPS, "CN=Information Security Certification Authority,O=ISCA,C=KZ")
    assert isca is not None and isca.name == "kz.isca" and isca.countries == ("KZ",)
    qaznet = match_interception_ca(FPS, "CN=Qaznet Trust Network,C=KZ")
    assert qaznet is not None and qaznet.name == "kz.qaznet_trust_network"
    assert match_interception_ca(FPS, "CN=R11,O=Let's Encrypt,C=US") is None
    assert match_interception_ca(FPS, "CN=ISCAS Root,O=ISCAS,C=CN") is None


# ---------------------------------------------------------------- several files

TESTBED_ISSUER = "O=msgprobe testbed,CN=msgprobe testbed interception CA"


def test_the_shipped_file_holds_no_testbed_data() -> None:
    assert match_interception_ca(FPS, TESTBED_ISSUER) is None
    assert not any("testbed" in f"{ca.name} {ca.source}" for ca in FPS.interception_cas)


def test_the_testbed_overlay_adds_its_interception_ca_after_the_built_in_list() -> None:
    testbed = load_fingerprints(BLOCKPAGES)
    assert (testbed.http, testbed.dns) == (FPS.http, FPS.dns)
    assert testbed.interception_cas[:-1] == FPS.interception_cas
    ca = match_interception_ca(testbed, TESTBED_ISSUER)
    assert ca is not None and ca.name == "msgprobe.testbed_interception" and ca.source


def test_later_files_add_and_rank_after_earlier_ones(tmp_path: Path) -> None:
    local = tmp_path / "local.yaml"
    local.write_text(
        "http:\n  - {name: local.stub, scope: isp, location: body, type: contains,\n"
        "     pattern: 'Доступ к сайту ограничен'}\n",
        encoding="utf-8",
    )
    both = load_fingerprints((BUILTIN, local))
    assert both.http[-1].name == "local.stub" and both.http[:-1] == FPS.http
    # The stub page matches both; the earlier file's fingerprint wins.
    body = "<p>Доступ к сайту ограничен в соответствии с Федеральными законами</p>".encode()
    assert (m := match_http(both, (), body)) is not None and m.fingerprint.name == "ooni.ru_0"
    alone = load_fingerprints(local)  # one file replaces the built-in list
    assert [f.name for f in alone.http] == ["local.stub"] and not alone.dns and not alone.interception_cas
    assert (m := match_http(alone, (), body)) is not None and m.fingerprint.name == "local.stub"


def test_a_later_file_cannot_reuse_a_name(tmp_path: Path) -> None:
    local = tmp_path / "local.yaml"
    local.write_text(
        "interception_cas:\n"
        "  - {name: kz.isca, issuer: Local, source: here}\n"
        "  - {name: local.ca, issuer: Local, source: here}\n"
        "  - {name: local.ca, issuer: Local, source: here}\n",
        encoding="utf-8",
    )
    first = next(
        i for i, line in enumerate(BUILTIN.read_text(encoding="utf-8").splitlines(), 1) if "kz.isca" in line
    )
    with pytest.raises(ConfigError) as caught:
        load_fingerprints((BUILTIN, local, tmp_path / "missing.yaml"))
    assert caught.value.problems == [
        f"{local}:2: interception_cas[0].name: duplicate name 'kz.isca' (first at {BUILTIN}:{first})",
        f"{local}:4: interception_cas[2].name: duplicate name 'local.ca' (first at line 3)",
        f"{tmp_path / 'missing.yaml'}: cannot read: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'missing.yaml'}'",
    ]


def test_the_blockpages_key_takes_a_file_or_a_list(tmp_path: Path) -> None:
    local = tmp_path / "local.yaml"
    local.write_text("dns:\n", encoding="utf-8")
    services = "catalog: none\nservices: [{name: a, endpoints: [{host: a.example, checks: [dns]}]}]\n"
    for value, expected in (
        ("[builtin, local.yaml]", (BUILTIN, local)),
        ("local.yaml", (local,)),
        ("builtin", (BUILTIN,)),
    ):
        path = tmp_path / "probe.yaml"
        path.write_text(f"blockpages: {value}\n{services}", encoding="utf-8")
        assert load_config(path).blockpages == expected, value
    path.write_text(services, encoding="utf-8")
    assert load_config(path).blockpages == ()  # the built-in list
    assert load_fingerprints(()).interception_cas == FPS.interception_cas


# ---------------------------------------------------------------- strictness


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_each_bad_fixture_gives_its_messages(path: Path) -> None:
    expected = [
        line.removeprefix("# expect: ").replace("{path}", str(path))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("# expect: ")
    ]
    assert expected, f"{path.name} names no expected message"
    with pytest.raises(ConfigError) as caught:
        load_fingerprints(path)
    assert caught.value.problems == expected


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
