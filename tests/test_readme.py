"""The README documents what the registry and the records actually hold."""

from __future__ import annotations

from pathlib import Path

from probe.checks import REGISTRY
from probe.export.records import SCHEMA
from probe.vocab import Operation, Purpose

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_check_kind_is_documented() -> None:
    for spec in REGISTRY.values():
        assert f"`{spec.usage}`" in README, spec.usage


def test_the_json_schema_is_documented() -> None:
    assert f"schema {SCHEMA}" in README
    for name in [*(o.value for o in Operation), *(p.value for p in Purpose)]:
        assert name in README, name
