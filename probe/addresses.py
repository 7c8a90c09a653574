"""Address facts shared by measurement (where not to connect) and analysis (bogons)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from probe.config.model import IPNetwork

# Special-purpose space (RFC 6890 and friends) that no public service uses:
# a resolver that answers with it is lying, and we never connect there.
_BOGONS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


def in_prefixes(address: str, prefixes: Iterable[IPNetwork]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in prefixes)


def is_bogon(address: str, expected: Iterable[IPNetwork] = ()) -> bool:
    """True for reserved space, unless the service is expected to live there
    (the loopback testbed is, and so may be a private test network)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if in_prefixes(address, expected):
        return False
    return any(ip.version == net.version and ip in net for net in _BOGONS)
