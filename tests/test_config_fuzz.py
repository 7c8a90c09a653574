"""Hostile configs: every one is a clear one-line problem and exit 2, never a traceback.

The explicit cases are the crashes a fuzz run of 300 configs found (unknown
and unsafe tags, malformed typed scalars, numbers too long to convert,
nesting too deep, non-finite durations); the property test then feeds the
loader arbitrary documents built from the real keys and such scalars.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.cli import main
from probe.config.load import KEYS, load_config
from probe.config.nodes import ConfigError

HOSTILE = [
    "!unknown_tag 5",
    "!!binary notbase64",
    "!!python/name:os.system",
    "!!python/object/apply:os.system [echo]",
    "!!int 0b2",
    "!!float xyz",
    "9" * 5000,
    "!!timestamp notadate",
    "!!bool maybe",
    "9" * 400,
    ".nan",
    ".inf",
    "-.inf",
    "1.0e+400",
    "-0.0",
    "!!set {a}",
    "!!omap [a: 1]",
]
KEYS_WITH_VALUES = [
    "interval",
    "jitter",
    "concurrency",
    "timeouts.dns",
    "timeouts.cycle",
    "dns.injection_window",
]


def _document(key: str, value: str) -> str:
    section, _, name = key.rpartition(".")
    return f"{section}:\n  {name}: {value}\n" if section else f"{key}: {value}\n"


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("key", ["interval", "concurrency", "timeouts.cycle", "throttle.confirm"])
def test_a_hostile_scalar_is_one_line_and_exit_2(
    tmp_path: Path, key: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(_document(key, value), encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("msgprobe: ") for line in err), err
    assert "Traceback" not in "\n".join(err)
    assert all(len(line) < 300 for line in err)


def test_nesting_too_deep_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("probe: " + "[" * 600 + "]" * 600 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


@pytest.mark.parametrize("value", [".nan", ".inf", "1.0e+400", "-0.0", "-5s", "8d", "99999999h"])
@pytest.mark.parametrize("key", KEYS_WITH_VALUES[:2] + KEYS_WITH_VALUES[3:])
def test_durations_are_finite_positive_and_bounded(tmp_path: Path, key: str, value: str) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(_document(key, value), encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)


_SCALARS = st.sampled_from([*HOSTILE, "5m", "30s", "1", "0", "-1", "true", "~", "''", "x", "1.5", "[]", "{}"])
_KEY_NAMES = st.sampled_from([*KEYS, "unknown", "timeouts.bogus"])


@st.composite
def _documents(draw: st.DrawFn) -> str:
    lines = []
    for key in draw(st.lists(_KEY_NAMES, max_size=6, unique=True)):
        value = draw(st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3).map(lambda v: f"[{', '.join(v)}]")))
        lines.append(_document(key, value))
    return "".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_documents())
def test_arbitrary_documents_load_or_fail_cleanly(tmp_path: Path, document: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(document, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems and all(str(path) in p for p in exc.problems)
