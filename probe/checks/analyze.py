"""An endpoint attempt's result: every registered kind's findings, one
priority table (``probe.analysis.endpoint.decide``), and the result rows."""

from __future__ import annotations

from dataclasses import replace

from probe.analysis.endpoint import AnalysisInput, decide, defunct_is_down
from probe.checks import packets, specs_for
from probe.checks.flow import MAX_ADDRESSES_PER_FAMILY
from probe.model import EndpointObservations, EndpointResult, Verdict


def _unmeasured(verdict: Verdict, obs: EndpointObservations) -> Verdict:
    """A verdict on some of the answered addresses says so: the rest were never tried."""
    if not obs.unmeasured_addresses:
        return verdict
    note = (
        f"{obs.unmeasured_addresses} more answered addresses not measured "
        f"(at most {MAX_ADDRESSES_PER_FAMILY} per address family)"
    )
    return replace(verdict, evidence=f"{verdict.evidence}; {note}")


def analyze_endpoint(obs: EndpointObservations, inp: AnalysisInput) -> EndpointResult:
    specs = specs_for(inp.endpoint)
    findings = [f for spec in specs for f in spec.findings(obs, inp)]
    raw = packets.has_packets(obs)
    if raw:
        findings += packets.findings(obs, inp)
    verdict = _unmeasured(defunct_is_down(decide(findings, obs), inp.endpoint), obs)
    wanted = {c.kind for c in inp.endpoint.checks}
    rows = tuple(
        row for spec in specs if spec.kind in wanted for row in spec.rows(obs, inp.endpoint, verdict)
    )
    if raw:
        rows += tuple(packets.rows(obs, inp.endpoint, verdict))
    return EndpointResult(inp.service.name, inp.endpoint.host, verdict, rows, obs, findings=tuple(findings))
