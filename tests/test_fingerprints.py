"""config/blockpages.yaml: generated faithfully, loaded strictly, matched with OONI's scopes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probe.analysis.fingerprints import match_dns, match_http, match_interception_ca
from probe.config import ConfigError
from probe.config.fingerprints import load_fingerprints
from probe.config.load import builtin_path

ROOT = Path(__file__).resolve().parents[1]
CSV_DIR = ROOT.parent / "shared" / "research" / "ooni-blocking-fingerprints"
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "fingerprints").glob("*.yaml"))
FPS = load_fingerprints()


def test_the_converter_reproduces_the_committed_file(tmp_path: Path) -> None:
    if not CSV_DIR.is_dir():
        pytest.skip(f"OONI CSVs not beside the repo ({CSV_DIR})")
    out = tmp_path / "blockpages.yaml"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_fingerprints.py"), str(CSV_DIR), str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == builtin_path("blockpages.yaml").read_bytes()


def test_every_csv_row_is_kept_with_its_name() -> None:
    assert len(FPS.http) == 1729 and len(FPS.dns) == 226
    assert len({f.name for f in FPS.http}) > 1700


def test_russian_isp_redirect_location_matches_by_name() -> None:
    match = match_http(FPS, (), b"", ("http://warning.rt.ru/?id=17&st=0&dt=1.2.3.4",))
    assert match is not None and match.blocks and match.fingerprint.name == "ooni.ru_6"


def test_roskomnadzor_stub_page_matches() -> None:
    body = "<p>Доступ к сайту ограничен в соответствии с Федеральными законами</p>".encode()
    match = match_http(FPS, (("content-type", "text/html"),), body)
    assert match is not None and match.blocks and match.fingerprint.name == "ooni.ru_0"


def test_known_false_positive_is_never_a_block() -> None:
    fp = next(f for f in FPS.http if f.scope == "fp" and f.kind == "contains" and f.location == "body")
    match = match_http(FPS, (), fp.pattern.encode())
    assert match is not None and match.false_positive and not match.blocks


def test_vague_word_alone_is_recorded_not_a_block() -> None:
    match = match_http(FPS, (), "Доступ ограничен".encode())
    assert match is not None and match.fingerprint.scope == "vbw" and not match.blocks


def test_clean_page_matches_nothing() -> None:
    assert match_http(FPS, (("server", "nginx"),), b"<html><title>WeChat</title>hello</html>") is None


def test_dns_block_address_and_interception_issuer() -> None:
    assert (found := match_dns(FPS, "8.7.198.45")) is not None and found.name == "ooni.cn_0"
    assert match_dns(FPS, "93.184.216.34") is None
    ca = match_interception_ca(FPS, "O=msgprobe testbed,CN=msgprobe testbed interception CA")
    assert ca is not None and ca.name == "msgprobe.testbed_interception"
    assert match_interception_ca(FPS, "CN=ISRG Root X1") is None


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_each_bad_fixture_gives_its_message(path: Path) -> None:
    expected = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(ConfigError) as caught:
        load_fingerprints(path)
    assert caught.value.problems == [expected.replace("{path}", str(path))]
