"""The catalog schema: services and their endpoints (``config/targets.yaml``,
or the ``services:`` of a probe config), validated strictly through
:class:`NodeReader` so every problem is listed with its line.

An endpoint is checked as a whole even when one part is bad: a mistyped host
must not hide a bad check on the line below it, or a curator fixes one
problem per run of ``check-config``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

# Check syntax belongs to the kinds: the registry parses, the catalog reports.
from probe.checks import REGISTRY, parse_check
from probe.config import values
from probe.config.model import Check, Endpoint, Expected, Service, is_ip_literal
from probe.config.nodes import ConfigError, NodeReader
from probe.vocab import Confidence, EndpointState

_SERVICE_KEYS = ("name", "title", "domains", "expected", "endpoints")
_ENDPOINT_KEYS = ("host", "checks", "status", "expected", "source", "note", "confidence")
# The name is the `service` label of every metric, a `select` value and part of
# alert and dashboard queries: short, lower-case and free of anything to quote.
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _expected(r: NodeReader, node: yaml.Node, key: str) -> Expected:
    fields = r.mapping(node, key, ("prefixes", "asns"))
    prefixes = []
    for item in r.sequence(fields["prefixes"], f"{key}.prefixes") if "prefixes" in fields else []:
        parsed = r.parsed(item, f"{key}.prefixes", values.network)
        if parsed is not None:
            prefixes.append(parsed)
    asns = []
    for item in r.sequence(fields["asns"], f"{key}.asns") if "asns" in fields else []:
        asn = r.positive_int(item, f"{key}.asns")
        if asn is not None:
            asns.append(asn)
    return Expected(tuple(prefixes), tuple(asns))


def _host(r: NodeReader, fields: dict[str, yaml.Node], node: yaml.Node, key: str) -> tuple[str | None, str]:
    """The valid host (None if it is not) and the text as written ("" if there is none)."""
    if "host" not in fields:
        r.problem(node, key, "missing 'host'")
        return None, ""
    text = r.scalar(fields["host"], f"{key}.host", str)
    if text is None:
        return None, ""
    if is_ip_literal(text):
        return text, text
    try:
        return values.hostname(text), text
    except ValueError as exc:
        r.problem(fields["host"], f"{key}.host", str(exc))
        return None, text


def _checks(r: NodeReader, fields: dict[str, yaml.Node], node: yaml.Node, key: str, host: str) -> list[Check]:
    if "checks" not in fields:
        r.problem(node, key, "missing 'checks'")
        return []
    items = r.sequence(fields["checks"], f"{key}.checks")
    if not host:
        # Without any host text every URL check would read as "not the endpoint":
        # noise on top of the real problem, which is already reported.
        return []
    checks = []
    for item in items:
        check = r.parsed(item, f"{key}.checks", lambda text: parse_check(text, host))
        if check is None:
            continue
        if REGISTRY[check.kind].needs_name and is_ip_literal(host):
            r.problem(item, f"{key}.checks", f"'{check.kind}' makes no sense for the IP literal {host}")
            continue
        checks.append(check)
    return checks


def _endpoint(r: NodeReader, node: yaml.Node, key: str, service_expected: Expected) -> Endpoint | None:
    fields = r.mapping(node, key, _ENDPOINT_KEYS)
    host, text = _host(r, fields, node, key)
    # A bad host is compared as written, so its checks are still validated.
    checks = _checks(r, fields, node, key, host or text)
    state = EndpointState.ACTIVE
    if "status" in fields:
        state = r.choice(fields["status"], f"{key}.status", EndpointState) or state
    confidence = None
    if "confidence" in fields:
        confidence = r.choice(fields["confidence"], f"{key}.confidence", Confidence)
    expected = _expected(r, fields["expected"], f"{key}.expected") if "expected" in fields else None
    notes = {
        name: r.scalar(fields[name], f"{key}.{name}", str) or ""
        for name in ("source", "note")
        if name in fields
    }
    if host is None:
        return None
    return Endpoint(
        host=host,
        checks=tuple(checks),
        state=state,
        expected=expected if expected is not None else service_expected,
        source=notes.get("source", ""),
        note=notes.get("note", ""),
        confidence=confidence,
    )


def _endpoints(r: NodeReader, node: yaml.Node, key: str, expected: Expected) -> list[Endpoint]:
    items = r.sequence(node, key)
    if not items and isinstance(node, yaml.SequenceNode):
        r.problem(node, key, "needs at least one endpoint")
    endpoints: list[Endpoint] = []
    for index, item in enumerate(items):
        endpoint = _endpoint(r, item, f"{key}[{index}]", expected)
        if endpoint is None:
            continue
        if any(e.host == endpoint.host for e in endpoints):
            r.problem(item, f"{key}[{index}]", f"duplicate endpoint {endpoint.host}")
            continue
        endpoints.append(endpoint)
    return endpoints


def _service(r: NodeReader, node: yaml.Node, key: str) -> Service | None:
    fields = r.mapping(node, key, _SERVICE_KEYS)
    if "name" not in fields:
        r.problem(node, key, "missing 'name'")
        return None
    name = r.scalar(fields["name"], f"{key}.name", str)
    if name is None:
        return None
    good_name = _SERVICE_NAME.match(name) is not None
    if not good_name:
        r.problem(
            fields["name"],
            f"{key}.name",
            f"bad service name {name!r} (use a-z, 0-9, '_' and '-', starting with a letter or digit)",
        )
    key = f"services.{name}"
    expected = _expected(r, fields["expected"], f"{key}.expected") if "expected" in fields else Expected()
    endpoints: list[Endpoint] = []
    if "endpoints" in fields:
        endpoints = _endpoints(r, fields["endpoints"], f"{key}.endpoints", expected)
    else:
        r.problem(node, key, "missing 'endpoints'")
    domains = []
    for item in r.sequence(fields["domains"], f"{key}.domains") if "domains" in fields else []:
        domain = r.parsed(item, f"{key}.domains", values.hostname)
        if domain is not None:
            domains.append(domain)
    if not domains:
        # Without a list, the registrable-looking tail of each host name stands in.
        domains = sorted({".".join(e.host.split(".")[-2:]) for e in endpoints if not e.is_ip})
    title = r.scalar(fields["title"], f"{key}.title", str) if "title" in fields else None
    if not good_name:
        return None
    return Service(name, title or name, tuple(endpoints), tuple(domains), expected)


def read_services(r: NodeReader, node: yaml.Node, key: str) -> list[Service]:
    """A ``services:`` list, as in the catalog or inline in a probe config."""
    services: list[Service] = []
    for item in r.sequence(node, key):
        service = _service(r, item, key)
        if service is None:
            continue
        if any(s.name == service.name for s in services):
            r.problem(item, f"{key}.{service.name}", "duplicate service name")
            continue
        services.append(service)
    return services


def load_catalog(path: Path) -> tuple[Service, ...]:
    r = NodeReader(path)
    root = r.parse()
    services: list[Service] = []
    if root is not None:
        fields = r.mapping(root, "", ("services",))
        if "services" not in fields:
            r.problem(root, "", "missing 'services'")
        else:
            services = read_services(r, fields["services"], "services")
    if r.problems:
        raise ConfigError(r.problems)
    return tuple(services)
