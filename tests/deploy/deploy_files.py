"""Where the shipped deployment files are, and how their queries are read.

Shared by the deploy tests: the static ones (configs, rules, dashboards,
compose, Dockerfile) and the live stack test, which runs the same queries
against a real Prometheus.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
DASHBOARDS_DIR = DEPLOY / "grafana" / "dashboards"
AGENT_CONFIG = DEPLOY / "volunteer" / "prometheus-agent.yml"
CENTRAL_CONFIG = DEPLOY / "watchdog" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "watchdog" / "alertmanager.yml"
COMPOSE_FILES = (DEPLOY / "volunteer" / "compose.yaml", DEPLOY / "watchdog" / "compose.yaml")
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "schema" / "compose-spec.json"

# The dashboards' template variables, as the live test selects them: every
# vantage ("All" is ".*" in Grafana's regex matchers) and one blocked service.
TEMPLATE_VALUES: Mapping[str, str] = {
    "datasource": "msgprobe-prometheus",
    "country": ".*",
    "asn": ".*",
    "vantage": ".*",
    "service": "tls-reset",
}


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*_test.yml"))


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


@dataclass(frozen=True)
class Rule:
    file: str
    group: str
    name: str  # the recorded series or the alert name
    kind: str  # "record" | "alert"
    expr: str
    spec: Mapping[str, Any]


def rules() -> list[Rule]:
    out = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                kind = "record" if "record" in rule else "alert"
                out.append(Rule(path.name, group["name"], rule[kind], kind, rule["expr"], rule))
    return out


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    ref: str
    expr: str  # as written, with $variables
    instant: bool

    @property
    def id(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref}"


def load_dashboard(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # panels inside collapsed rows


def panel_queries() -> list[PanelQuery]:
    out = []
    for path in dashboard_files():
        board = load_dashboard(path)
        for panel in _panels(board["panels"]):
            for t in panel.get("targets", []):
                out.append(
                    PanelQuery(board["uid"], panel["title"], t["refId"], t["expr"], bool(t.get("instant")))
                )
    return out


@dataclass(frozen=True)
class VariableQuery:
    dashboard: str
    name: str
    metric_selector: str  # with $variables
    label: str


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)$")


def variable_queries() -> list[VariableQuery]:
    out = []
    for path in dashboard_files():
        board = load_dashboard(path)
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = _LABEL_VALUES.match(query)
            assert m, f"{board['uid']}: variable {var['name']} is not label_values(selector, label): {query}"
            out.append(VariableQuery(board["uid"], var["name"], m["selector"], m["label"]))
    return out


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str] = TEMPLATE_VALUES) -> str:
    """Grafana's variable interpolation for the forms the dashboards use ($x, ${x})."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


def variables_used(text: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _VARIABLE.finditer(text)}


def promtool_parse(
    promtool: str, exprs: Mapping[str, str], workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Parse PromQL expressions with promtool's own parser.

    promtool has no query-parsing command, but `check rules` parses every
    rule's expression: each query becomes a recording rule in a scratch file.
    """
    rules_doc = {
        "groups": [
            {
                "name": "parse",
                "rules": [{"record": f"parse:q{i}", "expr": expr} for i, expr in enumerate(exprs.values())],
            }
        ]
    }
    path = workdir / "queries.yml"
    path.write_text(yaml.safe_dump(rules_doc, sort_keys=False))
    return subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
