"""An endpoint attempt's result: every registered kind's findings, one
priority table (``probe.analysis.endpoint.decide``), and the result rows."""

from __future__ import annotations

from probe.analysis.endpoint import AnalysisInput, decide, defunct_is_down
from probe.checks import specs_for
from probe.model import EndpointObservations, EndpointResult


def analyze_endpoint(obs: EndpointObservations, inp: AnalysisInput) -> EndpointResult:
    specs = specs_for(inp.endpoint)
    findings = [f for spec in specs for f in spec.findings(obs, inp)]
    verdict = defunct_is_down(decide(findings, obs), inp.endpoint)
    wanted = {c.kind for c in inp.endpoint.checks}
    rows = tuple(
        row for spec in specs if spec.kind in wanted for row in spec.rows(obs, inp.endpoint, verdict)
    )
    return EndpointResult(inp.service.name, inp.endpoint.host, verdict, rows, obs, findings=tuple(findings))
