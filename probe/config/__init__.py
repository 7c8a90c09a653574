"""Validated, frozen configuration: ``load_config`` is the only way in."""

from probe.config.load import ConfigError, load_catalog, load_config
from probe.config.model import (
    Check,
    Config,
    Endpoint,
    Expected,
    ResolverSpec,
    Service,
    Timeouts,
)

__all__ = [
    "Check",
    "Config",
    "ConfigError",
    "Endpoint",
    "Expected",
    "ResolverSpec",
    "Service",
    "Timeouts",
    "load_catalog",
    "load_config",
]
