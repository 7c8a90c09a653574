"""The ``checks`` rows of a result: one per configured check and address.

Rows report raw outcomes; a row can be ``ok`` at its own step while the
endpoint is blocked at a later one (TCP connects, then TLS is reset).
A configured check that could not run because an earlier step failed gets
no row, so "skipped" is never confused with "succeeded".
"""

from __future__ import annotations

from probe.config.model import Endpoint
from probe.measure.errors import failure_string
from probe.model import CheckResult, EndpointObservations, Verdict
from probe.vocab import CheckKind, Method

_HTTP_BLOCK = {Method.HTTP_BLOCKPAGE, Method.HTTP_REDIRECT}


def _dns_row(obs: EndpointObservations, verdict: Verdict) -> CheckResult | None:
    probe = [o for o in obs.dns if o.role == "probe"]
    if not probe:
        return None
    addresses = sorted({a for o in probe for a in o.addresses})
    ordered = sorted(probe, key=lambda o: o.qtype != "A")
    failed = next((o for o in ordered if o.failure is not None), None) if not addresses else None
    dns_blocked = verdict.method is not None and verdict.method.value.startswith("dns.")
    control = sorted({a for o in obs.dns if o.role == "control" for a in o.addresses})
    return CheckResult(
        check="dns",
        ok=bool(addresses) and not dns_blocked,
        failure=failure_string(failed.failure, failed.error) if failed else None,
        duration_s=max(o.duration for o in probe),
        detail={"resolver": probe[0].resolver, "addresses": addresses, "control_addresses": control},
    )


def check_rows(obs: EndpointObservations, endpoint: Endpoint, verdict: Verdict) -> tuple[CheckResult, ...]:
    rows: list[CheckResult] = []
    wanted = {c.label for c in endpoint.checks}
    if "dns" in wanted:
        row = _dns_row(obs, verdict)
        if row is not None:
            rows.append(row)
    tls_ports = {c.port for c in endpoint.checks if c.kind is CheckKind.TLS}
    for o in obs.tcp:
        if f"tcp:{o.port}" in wanted:
            rows.append(
                CheckResult(
                    f"tcp:{o.port}",
                    o.failure is None,
                    failure_string(o.failure, o.error),
                    o.duration,
                    o.address,
                )
            )
        elif o.port in tls_ports and o.failure is not None:
            # A tls-only port whose connect failed: the TLS check failed there.
            rows.append(
                CheckResult(
                    f"tls:{o.port}",
                    False,
                    failure_string(o.failure, o.error),
                    o.duration,
                    o.address,
                    {"step": "connect"},
                )
            )
    for t in obs.tls:
        if t.decoy:
            continue
        decoy = next((d for d in obs.tls if d.decoy and d.address == t.address and d.port == t.port), None)
        detail: dict[str, object] = {"sni": t.sni, "version": t.version, "cipher": t.cipher}
        if t.certificate is not None:
            detail |= {
                "issuer": t.certificate.issuer,
                "subject": t.certificate.subject,
                "not_after": t.certificate.not_after,
            }
        if decoy is not None:
            detail |= {"decoy_sni": decoy.sni, "decoy_ok": decoy.failure is None}
        rows.append(
            CheckResult(
                f"tls:{t.port}",
                t.failure is None,
                failure_string(t.failure, t.error),
                t.duration,
                t.address,
                detail,
            )
        )
    for h in obs.http:
        if h.decoy:
            continue
        kind = "http_post" if h.method == "POST" else "http"
        label = f"{kind}:{h.url}"
        blocked_here = verdict.method in _HTTP_BLOCK and verdict.address == h.address
        retry = next(
            (d for d in obs.http if d.decoy and d.address == h.address and d.method == h.method), None
        )
        detail = {
            "status": h.status,
            "title": h.title,
            "body_length": h.body_length,
            "redirects": [hop.location for hop in h.redirects],
        }
        if h.redirect_limit_reached:
            detail["redirect_limit_reached"] = True
        if retry is not None:
            detail |= {"decoy_host": retry.host, "decoy_ok": retry.failure is None}
        ok = h.failure is None and not blocked_here
        rows.append(CheckResult(label, ok, failure_string(h.failure, h.error), h.duration, h.address, detail))
    return tuple(rows)
