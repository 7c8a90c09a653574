"""Parsers for the scalar forms the config accepts; each raises ValueError with a reason."""

from __future__ import annotations

import ipaddress
import math
import re
from urllib.parse import urlsplit

from probe.config.model import IPNetwork, ResolverSpec, is_ip_literal

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_-]{1,63}\.?$", re.I)


# No setting of the probe means anything beyond a week; a larger number is a
# typo, and .inf would make `once` never finish.
MAX_DURATION = 7 * 86_400.0


def duration(value: object, limit: float = MAX_DURATION) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a duration such as 30s or 5m, got {short(value)}")
    try:
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            match = _DURATION.match(value.strip())
            if not match:
                raise ValueError(f"bad duration {short(value)} (use e.g. 500ms, 30s, 5m, 1h)")
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
    except OverflowError:
        seconds = math.inf
    if math.isnan(seconds):
        raise ValueError("a duration must be a number of seconds, not NaN")
    if seconds < 0 or math.copysign(1.0, seconds) < 0:
        raise ValueError(f"duration {short(value)} is negative")
    if seconds > limit:
        raise ValueError(f"duration {short(value)} is longer than {limit / 86400:g}d ({limit:g}s)")
    return seconds


def short(value: object) -> str:
    """A value as a message quotes it: a 5,000-digit number is not quoted whole."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError(f"bad host name {value!r}")
    return value.lower().rstrip(".")


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    ipaddress.ip_address(host)  # ValueError names the bad address
    port_number = int(port) if port else default_port
    if not 0 < port_number < 65536:
        raise ValueError(f"port {port_number} out of range")
    return host, port_number


def resolver(value: str) -> ResolverSpec:
    """``system``, ``IP[:port]`` (UDP), ``udp://…``, ``tcp://…``, ``https://…/dns-query``."""
    text = value.strip()
    if text == "system":
        return ResolverSpec(text, "system")
    if text.startswith("https://"):
        parts = urlsplit(text)
        if not parts.hostname or not parts.path or parts.path == "/":
            raise ValueError(f"bad DoH URL {value!r} (expected https://host/dns-query)")
        return ResolverSpec(text, "doh", host=parts.hostname, port=parts.port or 443, url=text)
    transport = "udp"
    for scheme in ("udp://", "tcp://"):
        if text.startswith(scheme):
            transport, text = scheme[:3], text[len(scheme) :]
    try:
        host, port = _host_port(text, 53)
    except ValueError:
        raise ValueError(
            f"bad resolver {value!r} (use system, IP[:port], tcp://IP[:port] or https://…/dns-query)"
        ) from None
    return ResolverSpec(value, transport, host=host, port=port)


def network(value: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"bad prefix {value!r} (expected e.g. 149.154.160.0/20)") from None


def control_url(value: str) -> str:
    """A control peer's base URL: http(s)://host[:port], no path, query or credentials."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad control peer URL {value!r} (expected https://host[:port])")
    if parts.username or parts.password or parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError(f"bad control peer URL {value!r} (only scheme, host and port: the token is a file)")
    return f"{parts.scheme}://{parts.netloc}"


def server(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (a host name, an IPv4 literal or ``[IPv6]:PORT``), port required."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        ipaddress.ip_address(host)
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.rpartition(":")
        if not host:
            raise ValueError(f"{value!r} needs HOST:PORT")
        host = host if is_ip_literal(host) else hostname(host)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} needs a port 1-65535")
    return host, int(port)


def address(value: str) -> str:
    """An IPv4 or IPv6 literal, as written (``raw.no_resolver``: never a name to resolve)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"bad address {value!r} (expected an IP literal, e.g. 192.0.2.1)") from None
