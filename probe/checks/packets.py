"""The packet witnesses' findings and rows (``raw`` config: scapy, NET_RAW).

Not a kind an endpoint lists: the raw witnesses serve every endpoint's dns,
tcp, tls and http steps when ``raw.packets`` is on, and the censor
traceroute serves every endpoint judged blocked when ``raw.traceroute`` is.
Their findings stand beside the steps' own: a forged reset proves
``tls.reset`` (``http.reset``, ``tcp.refused``) even where the decoy could
not run or was reset too, and an injected reply proves ``dns.injected``.
"""

from __future__ import annotations

from probe.analysis.censor_hop import censor_hop
from probe.analysis.endpoint import AnalysisInput
from probe.analysis.packets import dns_injection, reset_injection
from probe.config.model import Endpoint
from probe.model import CheckResult, EndpointObservations, Finding, Verdict, Witness
from probe.model_packets import RawDns, RawReset, RawTraceroute
from probe.vocab import CheckKind, Failure, Method, Purpose, Status

_RESET_METHODS = {"connect": Method.TCP_REFUSED, "tls": Method.TLS_RESET, "http": Method.HTTP_RESET}
_STEPS = {"connect": CheckKind.TCP, "tls": CheckKind.TLS, "http": CheckKind.HTTP}
_FAILURES = {"connect": Failure.CONNECTION_REFUSED}


def has_packets(obs: EndpointObservations) -> bool:
    return any(isinstance(o, RawDns | RawReset | RawTraceroute) for o in obs.other)


def findings(obs: EndpointObservations, inp: AnalysisInput) -> list[Finding]:
    out: list[Finding] = []
    for o in obs.other:
        if isinstance(o, RawDns) and (injection := dns_injection(o)) is not None:
            marks = "; ".join(injection.marks)
            out.append(
                Finding(
                    CheckKind.DNS,
                    Verdict(
                        Status.BLOCKED,
                        Method.DNS_INJECTED,
                        None,
                        f"dns {o.hostname} at {o.resolver}: injected reply ({marks})",
                        witnesses=(Witness("packet", marks),),
                    ),
                )
            )
        elif isinstance(o, RawReset) and o.purpose == Purpose.CHECK.value:
            injection = reset_injection(o)
            if injection is None or o.step not in _RESET_METHODS:
                continue  # "tcp": reset before any payload, no name-based method to prove
            marks = "; ".join(injection.marks)
            after = f", {o.resets[0].t * 1000:.1f} ms after the trigger" if o.trigger_sent else ""
            out.append(
                Finding(
                    _STEPS[o.step],
                    Verdict(
                        Status.BLOCKED,
                        _RESET_METHODS[o.step],
                        _FAILURES.get(o.step, Failure.CONNECTION_RESET),
                        f"{o.step} {o.address}:{o.port}: forged reset{after} ({marks})",
                        address=o.address,
                        witnesses=(Witness("packet", marks),),
                    ),
                )
            )
    return out


def _error(failure: str) -> str:
    return f"error: {failure}"


def _dns_row(o: RawDns) -> CheckResult:
    if o.failure is not None:
        return CheckResult("raw:dns", False, _error(o.failure), 0.0, o.address, {"status": "error"})
    injection = dns_injection(o)
    detail: dict[str, object] = {
        "resolver": o.resolver,
        "replies": [
            {"ttl": r.ttl, "ip_id": r.ip_id, "rcode": r.rcode, "addresses": list(r.addresses)}
            for r in o.replies
        ],
        "baseline_ttl": o.baseline[0].ttl if o.baseline else None,
        "no_resolver_answers": {a: len(r) for a, r in o.silent},
    }
    if injection is not None:
        detail["injected"] = list(injection.marks)
    return CheckResult("raw:dns", injection is None, None, o.window, o.address, detail)


def _reset_row(o: RawReset) -> CheckResult:
    check = f"raw:reset:{o.port}"
    if o.failure is not None:
        return CheckResult(
            check, False, _error(o.failure), 0.0, o.address, {"status": "error", "step": o.step}
        )
    injection = reset_injection(o)
    reference = o.synack or o.baseline
    first = o.resets[0] if o.resets else None
    detail: dict[str, object] = {
        "step": o.step,
        "purpose": o.purpose,
        "resets": len(o.resets),
        "reset_ttl": first.ttl if first else None,
        "synack_ttl": reference.ttl if reference else None,
        "reset_window": first.window if first else None,
        "synack_window": reference.window if reference else None,
        "after_trigger_ms": round(first.t * 1000, 1) if first and o.trigger_sent else None,
        "after_reset": o.after_reset,
        "verdict": "forged"
        if injection
        else ("genuine" if reference else "not judged: no SYN-ACK to compare"),
    }
    if injection is not None:
        detail["marks"] = list(injection.marks)
    return CheckResult(check, injection is None, None, first.t if first else 0.0, o.address, detail)


def _trace_row(o: RawTraceroute) -> CheckResult:
    check = f"raw:trace:{o.port}"
    if o.failure is not None:
        return CheckResult(check, False, _error(o.failure), o.duration, o.address, {"status": "error"})
    hop = censor_hop(o)
    detail: dict[str, object] = {"trigger": o.trigger, "stopped": o.stopped, "hops": len(o.hops)}
    if hop is not None:
        detail |= {"hop": hop.hop, "interference": hop.interference, "last_router": hop.last_router}
    return CheckResult(check, hop is None, None, o.duration, o.address, detail)


def rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> list[CheckResult]:
    out: list[CheckResult] = []
    for o in obs.other:
        if isinstance(o, RawDns):
            out.append(_dns_row(o))
        elif isinstance(o, RawReset) and o.purpose == Purpose.CHECK.value:  # follow-ups' stay in the evidence
            out.append(_reset_row(o))
        elif isinstance(o, RawTraceroute) and o.skipped is None:
            out.append(_trace_row(o))
    return out
