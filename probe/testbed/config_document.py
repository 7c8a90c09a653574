"""A testbed config as the YAML a user would write: lets a testbed in one
process hand its services to a probe (or daemon) in another
(``msgprobe demo``'s daemon test, the control CLI, the netns peers)."""

from __future__ import annotations

from typing import Any

from probe.config.model import Config, ResolverSpec


def config_document(config: Config) -> dict[str, Any]:
    """A config as the YAML a user would write: lets a testbed in one process
    hand its services to a probe (or daemon) in another."""

    def resolver(spec: ResolverSpec) -> str:
        return spec.url or (f"tcp://{spec.host}:{spec.port}" if spec.transport == "tcp" else spec.raw)

    t = config.timeouts
    return {
        "probe": {"id": config.probe_id, "country": config.country, "asn": config.asn},
        "interval": f"{config.interval}s",
        "jitter": f"{config.jitter}s",
        "concurrency": config.concurrency,
        "confirm": config.confirm,
        "timeouts": {k: f"{getattr(t, k)}s" for k in ("dns", "connect", "tls", "http", "cycle")},
        "resolvers": [resolver(r) for r in config.resolvers],
        "control_resolvers": [resolver(r) for r in config.control_resolvers],
        "dns": {"canary": config.canary_name, "injection_window": f"{config.injection_window}s"},
        **({"tls": {"ca_bundle": str(config.ca_bundle)}} if config.ca_bundle else {}),
        # A probe in another process must see the testbed's overlay too (its interception CA).
        **({"blockpages": [str(p) for p in config.blockpages]} if config.blockpages else {}),
        "test_networks": [str(n) for n in config.test_networks],
        "calls": {"stun_controls": [f"{host}:{port}" for host, port in config.calls.stun_controls]},
        **(
            {
                "whitelist_canaries": {country: list(names) for country, names in config.whitelist_canaries},
                "whitelist_canary_port": config.whitelist_canary_port,
            }
            if config.whitelist_canaries
            else {}
        ),
        "catalog": "none",
        "services": [
            {
                "name": s.name,
                "title": s.title,
                "domains": list(s.domains),
                "endpoints": [
                    {
                        "host": e.host,
                        "checks": [c.label for c in e.checks],
                        "status": e.state.value,
                        "expected": {"prefixes": [str(p) for p in e.expected.prefixes]},
                        "source": e.source,
                    }
                    for e in s.endpoints
                ],
            }
            for s in config.services
        ],
    }
