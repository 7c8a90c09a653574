"""The probe config (``config/probe.yaml``): one table of keys, read strictly.

Every settable key is one :class:`Field` row in :data:`FIELDS`: its dotted
YAML path, how its node is parsed, and how the value lands on the frozen
:class:`Config`. The allowed keys of every section, the parsing and the
construction all come from that table, so a key cannot be accepted and then
dropped, or set on the Config and never accepted; ``tests/test_config_documented.py``
holds ``config/probe.yaml`` to the same table.

The rows are not ``attr="canary_name"`` strings fed to ``Config(**kw)``:
``put`` is a ``dataclasses.replace`` call naming the attribute, which mypy
checks against the parsed type (a typo or a ``str`` parsed into a ``float``
attribute fails ``mypy --strict``, not a user's start-up).

The services (``catalog``, ``services``, ``select``) are a schema of their
own in :mod:`probe.config.catalog`; only their selection happens here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from probe.config import values
from probe.config.catalog import load_catalog, read_services
from probe.config.model import Config, ControlPeer, IPNetwork, Raw, ResolverSpec, Service
from probe.config.nodes import ConfigError, NodeReader, builtin_path

T = TypeVar("T")
Parse = Callable[[NodeReader, yaml.Node, str], T | None]


@dataclass(frozen=True, slots=True)
class Field(Generic[T]):
    yaml: str  # dotted path, "dns.canary": a section and its key, or a top-level key
    parse: Parse[T]  # records its own problem and returns None on bad input
    put: Callable[[Config, T], Config]

    @property
    def section(self) -> str:
        return self.yaml.rpartition(".")[0]

    @property
    def key(self) -> str:
        return self.yaml.rpartition(".")[2]


def _row(yaml_path: str, parse: Parse[T], put: Callable[[Config, T], Config]) -> Field[Any]:
    # The rows go through this function rather than into a tuple[Field[Any], ...]
    # literal: there mypy would take T from the annotation (Any) and stop checking
    # `put`; here T is inferred from `parse`, row by row.
    return Field(yaml_path, parse, put)


def _text(r: NodeReader, node: yaml.Node, key: str) -> str | None:
    return r.scalar(node, key, str)


def _hostname(r: NodeReader, node: yaml.Node, key: str) -> str | None:
    return r.parsed(node, key, values.hostname)


def _timeout(r: NodeReader, node: yaml.Node, key: str) -> float | None:
    seconds = r.duration(node, key)
    if seconds == 0:
        # Zero would time out every step at once, which reads as blocking, not as a typo.
        r.problem(node, key, "must be greater than zero")
        return None
    return seconds


def _resolvers(r: NodeReader, node: yaml.Node, key: str) -> tuple[ResolverSpec, ...] | None:
    specs = [r.parsed(item, key, values.resolver) for item in r.sequence(node, key)]
    if None in specs:
        return None
    return tuple(s for s in specs if s is not None)


def _tested_resolvers(r: NodeReader, node: yaml.Node, key: str) -> tuple[ResolverSpec, ...] | None:
    specs = _resolvers(r, node, key)
    if specs == ():
        r.problem(node, key, "needs at least one resolver")
        return None
    return specs


def _networks(r: NodeReader, node: yaml.Node, key: str) -> tuple[IPNetwork, ...]:
    nets = [r.parsed(item, key, values.network) for item in r.sequence(node, key)]
    return tuple(n for n in nets if n is not None)


def _fingerprint_files(r: NodeReader, node: yaml.Node, key: str) -> tuple[Path, ...] | None:
    """One fingerprint file, or a list read in order as one; ``builtin`` is the built-in file.

    A list rather than a second "overlay" key: see ``load_fingerprints``."""
    items = r.sequence(node, key) if isinstance(node, yaml.SequenceNode) else [node]
    if not items:
        r.problem(node, key, "needs at least one file (builtin: the built-in one)")
    files = [
        builtin_path("blockpages.yaml")
        if isinstance(item, yaml.ScalarNode) and item.value == "builtin"
        else r.existing_file(item, key)
        for item in items
    ]
    return tuple(f for f in files if f is not None) if items and None not in files else None


def _control_peers(r: NodeReader, node: yaml.Node, key: str) -> tuple[ControlPeer, ...] | None:
    peers: list[ControlPeer] = []
    ok = True
    for index, item in enumerate(r.sequence(node, key)):
        where = f"{key}[{index}]"
        fields = r.mapping(item, where, ["url", "token_file", "ca_bundle"])
        if "url" not in fields or "token_file" not in fields:
            r.problem(item, where, "needs 'url' and 'token_file'")
            ok = False
            continue
        url = r.parsed(fields["url"], f"{where}.url", values.control_url)
        token = r.existing_file(fields["token_file"], f"{where}.token_file")
        ca = r.existing_file(fields["ca_bundle"], f"{where}.ca_bundle") if "ca_bundle" in fields else None
        if url is None or token is None or ("ca_bundle" in fields and ca is None):
            ok = False
            continue
        peers.append(ControlPeer(url, token, ca))
    return tuple(peers) if ok else None


def _switch(r: NodeReader, node: yaml.Node, key: str) -> bool | None:
    return r.scalar(node, key, bool)


def _at_most(limit: float, unit: str = "") -> Parse[float]:
    """A positive duration or count no larger than ``limit``: the bounds volunteers are promised."""

    def parse(r: NodeReader, node: yaml.Node, key: str) -> float | None:
        value = r.duration(node, key) if unit == "s" else r.positive_int(node, key)
        if value is not None and not 0 < value <= limit:
            r.problem(node, key, f"must be above zero and at most {limit:g}{unit}, got {value:g}{unit}")
            return None
        return value

    return parse


def _servers(r: NodeReader, node: yaml.Node, key: str) -> tuple[tuple[str, int], ...] | None:
    found = [r.parsed(item, key, values.server) for item in r.sequence(node, key)]
    return None if None in found else tuple(s for s in found if s is not None)


def _canaries(r: NodeReader, node: yaml.Node, key: str) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    """``{RU: [max.ru, ya.ru]}``: domestic canaries per ISO country code."""
    if not isinstance(node, yaml.MappingNode):
        r.problem(node, key, "expected a mapping of country code to host names")
        return None
    out = []
    for key_node, value in node.value:
        country = str(key_node.value)
        if not (len(country) == 2 and country.isalpha()):
            r.problem(key_node, key, f"{country!r} is not an ISO 3166 country code (e.g. RU)")
            return None
        names = [r.parsed(item, f"{key}.{country}", values.hostname) for item in r.sequence(value, key)]
        if None in names:
            return None
        out.append((country.upper(), tuple(n for n in names if n is not None)))
    return tuple(out)


def _port(r: NodeReader, node: yaml.Node, key: str) -> int | None:
    port = r.positive_int(node, key)
    if port is not None and port > 65535:
        r.problem(node, key, f"must be a port number (1-65535), got {port}")
        return None
    return port


def _generations(r: NodeReader, node: yaml.Node, key: str) -> int | None:
    value = r.scalar(node, key, int)
    if value is not None and not 0 <= value <= 100:
        r.problem(node, key, f"must be 0-100 old files, got {value}")
        return None
    return value


def _age(r: NodeReader, node: yaml.Node, key: str) -> float | None:
    seconds = r.duration(node, key, limit=366 * 86_400.0)
    if seconds == 0:
        r.problem(node, key, "must be greater than zero")
        return None
    return seconds


def _addresses(r: NodeReader, node: yaml.Node, key: str) -> tuple[str, ...] | None:
    found = [r.parsed(item, key, values.address) for item in r.sequence(node, key)]
    return None if None in found else tuple(a for a in found if a is not None)


def _raw(put: Callable[[Raw, Any], Raw]) -> Callable[[Config, Any], Config]:
    return lambda c, v: replace(c, raw=put(c.raw, v))


# Hard ceilings: no config can make a volunteer's probe move more than this.
MAX_DAILY_BYTES = 50_000_000
MAX_FLOW_SECONDS = 30.0
MAX_FLOW_BYTES = 200_000
MAX_HOPS = 64
MAX_TRACE_SECONDS = 600.0

# In the order problems are reported in when several keys are bad.
FIELDS: tuple[Field[Any], ...] = (
    _row("probe.id", _text, lambda c, v: replace(c, probe_id=v)),
    _row("probe.country", _text, lambda c, v: replace(c, country=v)),
    _row("probe.asn", _text, lambda c, v: replace(c, asn=v)),
    _row("interval", NodeReader.duration, lambda c, v: replace(c, interval=v)),
    _row("jitter", NodeReader.duration, lambda c, v: replace(c, jitter=v)),
    # Sockets a volunteer's device can hold open, and cycles a block can wait to be confirmed.
    _row("concurrency", _at_most(4096), lambda c, v: replace(c, concurrency=int(v))),
    _row("confirm", _at_most(100), lambda c, v: replace(c, confirm=int(v))),
    _row("timeouts.dns", _timeout, lambda c, v: replace(c, timeouts=replace(c.timeouts, dns=v))),
    _row("timeouts.connect", _timeout, lambda c, v: replace(c, timeouts=replace(c.timeouts, connect=v))),
    _row("timeouts.tls", _timeout, lambda c, v: replace(c, timeouts=replace(c.timeouts, tls=v))),
    _row("timeouts.http", _timeout, lambda c, v: replace(c, timeouts=replace(c.timeouts, http=v))),
    _row("timeouts.cycle", _timeout, lambda c, v: replace(c, timeouts=replace(c.timeouts, cycle=v))),
    _row("timeouts.control", _timeout, lambda c, v: replace(c, timeouts=replace(c.timeouts, control=v))),
    _row("resolvers", _tested_resolvers, lambda c, v: replace(c, resolvers=v)),
    _row("control_resolvers", _resolvers, lambda c, v: replace(c, control_resolvers=v)),
    _row("dns.canary", _hostname, lambda c, v: replace(c, canary_name=v)),
    _row("dns.injection_window", NodeReader.duration, lambda c, v: replace(c, injection_window=v)),
    _row("decoy.sni", _hostname, lambda c, v: replace(c, decoy_sni=v)),
    _row("decoy.host", _hostname, lambda c, v: replace(c, decoy_host=v)),
    _row("tls.ca_bundle", NodeReader.existing_file, lambda c, v: replace(c, ca_bundle=v)),
    _row("asn_database", NodeReader.existing_file, lambda c, v: replace(c, asn_database=v)),
    _row("blockpages", _fingerprint_files, lambda c, v: replace(c, blockpages=v)),
    _row("evidence.path", NodeReader.path_value, lambda c, v: replace(c, evidence_path=v)),
    _row("evidence.max_size", NodeReader.positive_int, lambda c, v: replace(c, evidence_max_bytes=v)),
    _row("evidence.keep", _generations, lambda c, v: replace(c, evidence_keep=v)),
    _row("evidence.max_age", _age, lambda c, v: replace(c, evidence_max_age=v)),
    _row("test_networks", _networks, lambda c, v: replace(c, test_networks=v)),
    _row("control_peers", _control_peers, lambda c, v: replace(c, control_peers=v)),
    _row("throttle.confirm", _switch, lambda c, v: replace(c, throttle=replace(c.throttle, confirm=v))),
    _row(
        "throttle.daily_bytes",
        _at_most(MAX_DAILY_BYTES),
        lambda c, v: replace(c, throttle=replace(c.throttle, daily_bytes=int(v))),
    ),
    _row("throttle.every", _timeout, lambda c, v: replace(c, throttle=replace(c.throttle, every=v))),
    _row(
        "throttle.pairs",
        _at_most(10),
        lambda c, v: replace(c, throttle=replace(c.throttle, pairs=int(v))),
    ),
    _row("calls.stun_controls", _servers, lambda c, v: replace(c, calls=replace(c.calls, stun_controls=v))),
    _row("calls.flow", _switch, lambda c, v: replace(c, calls=replace(c.calls, flow=v))),
    _row(
        "calls.flow_seconds",
        _at_most(MAX_FLOW_SECONDS, "s"),
        lambda c, v: replace(c, calls=replace(c.calls, flow_seconds=v)),
    ),
    _row(
        "calls.flow_bytes",
        _at_most(MAX_FLOW_BYTES),
        lambda c, v: replace(c, calls=replace(c.calls, flow_bytes=int(v))),
    ),
    _row("raw.packets", _switch, _raw(lambda r, v: replace(r, packets=v))),
    _row("raw.no_resolver", _addresses, _raw(lambda r, v: replace(r, no_resolver=v))),
    _row("raw.traceroute", _switch, _raw(lambda r, v: replace(r, traceroute=v))),
    _row("raw.max_hops", _at_most(MAX_HOPS), _raw(lambda r, v: replace(r, max_hops=int(v)))),
    _row("raw.per_hop", _at_most(3), _raw(lambda r, v: replace(r, per_hop=int(v)))),
    _row("raw.hop_wait", _at_most(10.0, "s"), _raw(lambda r, v: replace(r, hop_wait=v))),
    _row("raw.pace", _at_most(60.0, "s"), _raw(lambda r, v: replace(r, pace=v))),
    _row("raw.trace_budget", _at_most(MAX_TRACE_SECONDS, "s"), _raw(lambda r, v: replace(r, trace_budget=v))),
    _row("raw.trace_every", _timeout, _raw(lambda r, v: replace(r, trace_every=v))),
    _row("whitelist_canaries", _canaries, lambda c, v: replace(c, whitelist_canaries=v)),
    _row("whitelist_canary_port", _port, lambda c, v: replace(c, whitelist_canary_port=v)),
)
# Keys read below rather than through a row: they choose services, not settings.
SERVICE_KEYS = ("catalog", "services", "select")
# Every key a probe config may hold, in dotted form.
KEYS = tuple(f.yaml for f in FIELDS) + SERVICE_KEYS


def _allowed(section: str) -> list[str]:
    if section:
        return [f.key for f in FIELDS if f.section == section]
    return list(dict.fromkeys(f.yaml.partition(".")[0] for f in FIELDS)) + list(SERVICE_KEYS)


def _settings(r: NodeReader, top: dict[str, yaml.Node], config: Config) -> Config:
    sections: dict[str, dict[str, yaml.Node]] = {"": top}
    for field in FIELDS:
        if field.section not in sections:
            # Read when its first row comes up, so problems keep the table's order.
            node = top.get(field.section)
            sections[field.section] = (
                {} if node is None else r.mapping(node, field.section, _allowed(field.section))
            )
        node = sections[field.section].get(field.key)
        if node is not None:
            value = field.parse(r, node, field.yaml)
            if value is not None:
                config = field.put(config, value)
    return config


def _catalog(r: NodeReader, f: dict[str, yaml.Node]) -> list[Service]:
    catalog = r.scalar(f["catalog"], "catalog", str) if "catalog" in f else "builtin"
    if catalog == "builtin":
        path: Path | None = builtin_path("targets.yaml")
    elif catalog in ("none", None):
        path = None
    else:
        path = r.existing_file(f["catalog"], "catalog")
    if path is None:
        return []
    try:
        return list(load_catalog(path))
    except ConfigError as exc:
        r.problems.extend(exc.problems)
        return []


def _services(r: NodeReader, f: dict[str, yaml.Node], select: tuple[str, ...]) -> list[Service]:
    services = _catalog(r, f)
    if "services" in f:
        for service in read_services(r, f["services"], "services"):
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
    return [s for s in services if s.name in wanted] if wanted else services


def load_config(path: Path | None = None, *, select: tuple[str, ...] = ()) -> Config:
    """Load and validate a probe config (the embedded default when ``path`` is None)."""
    path = path or builtin_path("probe.yaml")
    r = NodeReader(path)
    root = r.parse()
    if root is None and r.problems:
        raise ConfigError(r.problems)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])  # an empty file: every default
    top = r.mapping(root, "", _allowed(""))
    config = _settings(r, top, Config(path=path, services=()))
    services = _services(r, top, select)
    if not services and not r.problems:
        r.problem(root, "services", "no services to measure (catalog: none and no services)")
    if r.problems:
        raise ConfigError(r.problems)
    return replace(config, services=tuple(services))
