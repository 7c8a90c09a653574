"""The registry of check kinds: one table entry per kind, one module per kind.

Everything that needs to know the kinds reads this table: the config parser
(``parse_check`` and its usage message), the tracker (methods per endpoint),
the measurement flow (stages per address and port), the analysis (findings),
and the result and metric rows.
"""

from __future__ import annotations

from probe.checks import dns, freeze, http, stun, tcp, throttle, tls
from probe.checks.spec import CheckSpec
from probe.config.model import Check, Endpoint
from probe.vocab import Method

# One line per kind, in the order rows and stages list them.
_KINDS: tuple[CheckSpec, ...] = (
    dns.SPEC,
    tcp.SPEC,
    tls.SPEC,
    http.SPEC,
    http.POST_SPEC,
    freeze.SPEC,
    stun.SPEC,
    throttle.SPEC,
)
REGISTRY: dict[str, CheckSpec] = {spec.kind: spec for spec in _KINDS}


def usage() -> str:
    return ", ".join(spec.usage for spec in REGISTRY.values())


def parse_check(text: str, host: str) -> Check:
    """``kind[:argument]`` as a Check of a registered kind; ValueError names what is wrong."""
    kind, _, arg = text.partition(":")
    spec = REGISTRY.get(kind)
    if spec is None:
        raise ValueError(f"unknown check {text!r} (use {usage()})")
    return spec.parse(arg, host)


def specs_for(endpoint: Endpoint) -> list[CheckSpec]:
    """The kinds an endpoint's checks use, in registry order.

    A host name always resolves (dns), and every per-address kind's connect
    is judged by the tcp kind's findings: a ``tls:443``-only endpoint whose
    connect fails is not "ok" because no handshake was ever tried."""
    kinds: set[str] = {c.kind for c in endpoint.checks}
    if not endpoint.is_ip:
        kinds.add(dns.SPEC.kind)
    if any(REGISTRY[k].port is not None for k in kinds):
        kinds.add(tcp.SPEC.kind)
    return [spec for kind, spec in REGISTRY.items() if kind in kinds]


def applicable_methods(endpoint: Endpoint) -> tuple[Method, ...]:
    """Methods an endpoint can be blocked by: its kinds' methods, in vocabulary order.

    ``whitelist`` is every endpoint's: the vantage regime decides it, not a kind."""
    kinds = {c.kind for c in endpoint.checks}
    possible = {m for spec in REGISTRY.values() if spec.kind in kinds for m in spec.methods}
    possible.add(Method.WHITELIST)
    return tuple(m for m in Method if m in possible)
