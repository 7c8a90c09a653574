"""Strict YAML loading: every problem is reported at once, as ``file:line: key: reason``.

We walk PyYAML's node tree rather than the loaded dict so that each message
can name the line; unknown keys are errors, never silently ignored, because a
misspelt ``control_resolvers`` would quietly turn every block into
``unreachable``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from probe.config import values
from probe.config.model import Config, Endpoint, Expected, ResolverSpec, Service, Timeouts, is_ip_literal
from probe.vocab import CheckKind, EndpointState

T = TypeVar("T")

_CONFIG_KEYS = {
    "probe",
    "interval",
    "jitter",
    "concurrency",
    "confirm",
    "timeouts",
    "resolvers",
    "control_resolvers",
    "dns",
    "decoy",
    "tls",
    "asn_database",
    "blockpages",
    "evidence",
    "raw_tests",
    "test_networks",
    "catalog",
    "services",
    "select",
}
_SERVICE_KEYS = {"name", "title", "domains", "expected", "endpoints"}
_ENDPOINT_KEYS = {"host", "checks", "status", "expected", "source", "note", "confidence"}


_KIND_NAMES: dict[type, str] = {int: "an integer", str: "a string", bool: "true or false", float: "a number"}


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("probe") / "data" / name))


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def problem(self, node: yaml.Node | None, key: str, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        where = f" {key}:" if key else ""
        self.problems.append(f"{self.path}{line}:{where} {message}")

    def parse(self) -> yaml.Node | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(f"{self.path}: cannot read: {exc}")
            return None
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            reason = getattr(exc, "problem", None) or str(exc)
            self.problems.append(f"{self.path}{line}: not valid YAML: {reason}")
            return None

    def mapping(self, node: yaml.Node, key: str, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, key, "expected a mapping")
            return {}
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            path = f"{key}.{name}" if key else name
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.problem(key_node, path, f"unknown key{hint}")
            elif name in out:
                self.problem(key_node, path, "duplicate key")
            else:
                out[name] = value_node
        return out

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, key, "expected a list")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node, key: str, kind: type[T]) -> T | None:
        wanted = _KIND_NAMES.get(kind, kind.__name__)
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, key, f"expected {wanted}")
            return None
        value = self._constructor.construct_object(node)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(node, key, f"expected {wanted}, got {value!r}")
            return None
        return value

    def parsed(self, node: yaml.Node, key: str, parse: Callable[[str], T]) -> T | None:
        text = self.scalar(node, key, str)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.problem(node, key, str(exc))
            return None

    def duration(self, node: yaml.Node, key: str) -> float | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, key, "expected a duration such as 30s or 5m")
            return None
        try:
            return values.duration(self._constructor.construct_object(node))
        except ValueError as exc:
            self.problem(node, key, str(exc))
            return None

    def positive_int(self, node: yaml.Node, key: str) -> int | None:
        value = self.scalar(node, key, int)
        if value is not None and value < 1:
            self.problem(node, key, f"must be at least 1, got {value}")
            return None
        return value

    def path_value(self, node: yaml.Node, key: str) -> Path | None:
        text = self.scalar(node, key, str)
        if text is None:
            return None
        path = Path(text)
        return path if path.is_absolute() else (self.path.parent / path)

    def existing_file(self, node: yaml.Node, key: str) -> Path | None:
        path = self.path_value(node, key)
        if path is not None and not path.is_file():
            self.problem(node, key, f"no such file: {path}")
            return None
        return path


# ---------------------------------------------------------------- catalog


def _expected(r: _Reader, node: yaml.Node, key: str) -> Expected:
    fields = r.mapping(node, key, {"prefixes", "asns"})
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


def _endpoint(r: _Reader, node: yaml.Node, key: str, service_expected: Expected) -> Endpoint | None:
    fields = r.mapping(node, key, _ENDPOINT_KEYS)
    if "host" not in fields:
        r.problem(node, key, "missing 'host'")
        return None
    host = r.scalar(fields["host"], f"{key}.host", str)
    if host is None:
        return None
    if not is_ip_literal(host):
        try:
            host = values.hostname(host)
        except ValueError as exc:
            r.problem(fields["host"], f"{key}.host", str(exc))
            return None
    checks = []
    if "checks" not in fields:
        r.problem(node, key, "missing 'checks'")
    for item in r.sequence(fields["checks"], f"{key}.checks") if "checks" in fields else []:
        check = r.parsed(item, f"{key}.checks", lambda text: values.check(text, host))
        if check is None:
            continue
        if check.kind is CheckKind.DNS and is_ip_literal(host):
            r.problem(item, f"{key}.checks", f"'dns' makes no sense for the IP literal {host}")
            continue
        checks.append(check)
    state = EndpointState.ACTIVE
    if "status" in fields:
        parsed = r.parsed(fields["status"], f"{key}.status", EndpointState)
        if parsed is None:
            r.problems[-1] += " (use active, legacy or defunct)"
        state = parsed or state
    expected = _expected(r, fields["expected"], f"{key}.expected") if "expected" in fields else None
    text = {
        name: r.scalar(fields[name], f"{key}.{name}", str) or ""
        for name in ("source", "note")
        if name in fields
    }
    return Endpoint(
        host=host,
        checks=tuple(checks),
        state=state,
        expected=expected if expected is not None else service_expected,
        source=text.get("source", ""),
        note=text.get("note", ""),
    )


def _service(r: _Reader, node: yaml.Node, key: str) -> Service | None:
    fields = r.mapping(node, key, _SERVICE_KEYS)
    name = r.scalar(fields["name"], f"{key}.name", str) if "name" in fields else None
    if name is None:
        if "name" not in fields:
            r.problem(node, key, "missing 'name'")
        return None
    key = f"services.{name}"
    expected = _expected(r, fields["expected"], f"{key}.expected") if "expected" in fields else Expected()
    endpoints: list[Endpoint] = []
    seen: set[str] = set()
    for index, item in enumerate(
        r.sequence(fields["endpoints"], f"{key}.endpoints") if "endpoints" in fields else []
    ):
        endpoint = _endpoint(r, item, f"{key}.endpoints[{index}]", expected)
        if endpoint is None:
            continue
        if endpoint.host in seen:
            r.problem(item, f"{key}.endpoints[{index}]", f"duplicate endpoint {endpoint.host}")
            continue
        seen.add(endpoint.host)
        endpoints.append(endpoint)
    if "endpoints" not in fields:
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
    return Service(name, title or name, tuple(endpoints), tuple(domains), expected)


def _services(r: _Reader, node: yaml.Node, key: str) -> list[Service]:
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
    r = _Reader(path)
    root = r.parse()
    services: list[Service] = []
    if root is not None:
        fields = r.mapping(root, "", {"services"})
        if "services" not in fields:
            r.problem(root, "", "missing 'services'")
        else:
            services = _services(r, fields["services"], "services")
    if r.problems:
        raise ConfigError(r.problems)
    return tuple(services)


# ---------------------------------------------------------------- probe config


def _resolvers(r: _Reader, node: yaml.Node, key: str) -> tuple[ResolverSpec, ...] | None:
    specs = [r.parsed(item, key, values.resolver) for item in r.sequence(node, key)]
    if None in specs:
        return None
    return tuple(s for s in specs if s is not None)


def _section(r: _Reader, fields: dict[str, yaml.Node], name: str, allowed: set[str]) -> dict[str, yaml.Node]:
    return r.mapping(fields[name], name, allowed) if name in fields else {}


def load_config(path: Path | None = None, *, select: tuple[str, ...] = ()) -> Config:
    """Load and validate a probe config (the embedded default when ``path`` is None)."""
    path = path or builtin_path("probe.yaml")
    r = _Reader(path)
    root = r.parse()
    if root is None:
        raise ConfigError(r.problems)
    if isinstance(root, yaml.ScalarNode) and root.value == "":
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    f = r.mapping(root, "", _CONFIG_KEYS)
    kw: dict[str, Any] = {}

    def put(name: str, value: object | None) -> None:
        if value is not None:
            kw[name] = value

    probe = _section(r, f, "probe", {"id", "country", "asn"})
    for key, attr in (("id", "probe_id"), ("country", "country"), ("asn", "asn")):
        if key in probe:
            put(attr, r.scalar(probe[key], f"probe.{key}", str))
    for key in ("interval", "jitter"):
        if key in f:
            put(key, r.duration(f[key], key))
    for key in ("concurrency", "confirm"):
        if key in f:
            put(key, r.positive_int(f[key], key))
    timeouts = _section(r, f, "timeouts", {"dns", "connect", "tls", "http", "cycle"})
    parsed_timeouts = {k: r.duration(v, f"timeouts.{k}") for k, v in timeouts.items()}
    for key, node in timeouts.items():
        if parsed_timeouts[key] == 0:
            r.problem(node, f"timeouts.{key}", "must be greater than zero")
    kw["timeouts"] = Timeouts(**{k: v for k, v in parsed_timeouts.items() if v})
    for key in ("resolvers", "control_resolvers"):
        if key in f:
            put(key, _resolvers(r, f[key], key))
    if "resolvers" in kw and not kw["resolvers"]:
        r.problem(f["resolvers"], "resolvers", "needs at least one resolver")
    dns = _section(r, f, "dns", {"canary", "injection_window"})
    if "canary" in dns:
        put("canary_name", r.parsed(dns["canary"], "dns.canary", values.hostname))
    if "injection_window" in dns:
        put("injection_window", r.duration(dns["injection_window"], "dns.injection_window"))
    decoy = _section(r, f, "decoy", {"sni", "host"})
    for key in ("sni", "host"):
        if key in decoy:
            put(f"decoy_{key}", r.parsed(decoy[key], f"decoy.{key}", values.hostname))
    tls = _section(r, f, "tls", {"ca_bundle"})
    if "ca_bundle" in tls:
        put("ca_bundle", r.existing_file(tls["ca_bundle"], "tls.ca_bundle"))
    for key in ("asn_database", "blockpages"):
        if key in f:
            put(key, r.existing_file(f[key], key))
    evidence = _section(r, f, "evidence", {"path", "max_size"})
    if "path" in evidence:
        put("evidence_path", r.path_value(evidence["path"], "evidence.path"))
    if "max_size" in evidence:
        put("evidence_max_bytes", r.positive_int(evidence["max_size"], "evidence.max_size"))
    if "test_networks" in f:
        nets = [
            r.parsed(i, "test_networks", values.network)
            for i in r.sequence(f["test_networks"], "test_networks")
        ]
        put("test_networks", tuple(n for n in nets if n is not None))
    if "raw_tests" in f:
        put("raw_tests", r.scalar(f["raw_tests"], "raw_tests", bool))

    services: list[Service] = []
    catalog = r.scalar(f["catalog"], "catalog", str) if "catalog" in f else "builtin"
    if catalog == "builtin":
        catalog_path: Path | None = builtin_path("targets.yaml")
    elif catalog in ("none", None):
        catalog_path = None
    else:
        catalog_path = r.existing_file(f["catalog"], "catalog")
    if catalog_path is not None:
        try:
            services = list(load_catalog(catalog_path))
        except ConfigError as exc:
            r.problems.extend(exc.problems)
    if "services" in f:
        for service in _services(r, f["services"], "services"):
            # An inline service with a catalog name replaces the catalog's.
            services = [s for s in services if s.name != service.name] + [service]
    wanted = list(select)
    if "select" in f:
        wanted += [n for n in (r.scalar(i, "select", str) for i in r.sequence(f["select"], "select")) if n]
    known = {s.name for s in services}
    for name in wanted:
        if name not in known:
            where = f["select"] if "select" in f and name not in select else None
            r.problem(
                where,
                "select" if where else "",
                f"unknown service {name!r} (known: {', '.join(sorted(known)) or 'none'})",
            )
    if wanted:
        services = [s for s in services if s.name in wanted]
    if not services and not r.problems:
        r.problem(root, "services", "no services to measure (catalog: none and no services)")
    if r.problems:
        raise ConfigError(r.problems)
    return Config(path=path, services=tuple(services), **kw)
