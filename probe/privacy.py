"""Scrub free text before it is stored: the volunteer's address must never leak.

Error strings, page titles, headers and redirect targets can carry addresses:
a blockpage that echoes "your IP is …", a ``Location`` of
``/warn?client=203.0.113.5:51234``, an OS error naming the local socket.
Anything that looks like an IP literal and is not one of the addresses we
were measuring is replaced, so evidence keeps the target and loses the
vantage.

Addresses hide in many spellings, and every one of them is found:
``IP:port``, a trailing dot (end of a sentence), ``[v6]:port``,
IPv4-mapped IPv6 (``::ffff:203.0.113.5``) and percent-encoding in URLs
(``203%2E0%2E113%2E5``, ``%5B2001:db8::1%5D%3A443``). The scanner reads runs
of address characters (hex digits, ``.``, ``:`` and their escapes) rather
than whole words, so an address glued to other text (``ip=…``,
``client…,``) is still a run of its own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

SCRUBBED = "[scrubbed]"
# Address characters, and the percent-escapes of '.', ':' a URL may use for them.
_RUN = re.compile(r"(?:[0-9A-Fa-f:.]|%(?:2[Ee]|3[Aa]))+")
_ESCAPES = re.compile(r"%(2[Ee]|3[Aa])")
_V4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")
# An IPv6 literal inside a run: groups of hex with at least two colons, the
# IPv4-mapped form first (else "::ffff:203" would match and leave ".0.113.5").
# A trailing ":port" is tried off it too.
_V6 = re.compile(
    r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){1,6}:\d{1,3}(?:\.\d{1,3}){3}"
    r"|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
)


def _kept(address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str, keep: Collection[str]) -> bool:
    if text in keep or str(address) in keep:
        return True
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped is not None and str(mapped) in keep


def _v6(candidate: str) -> ipaddress.IPv6Address | None:
    # A few hex groups and colons are also times ("12:30:00") and C++ ("d::"):
    # only something with two non-empty groups that parses is an address.
    if sum(1 for g in candidate.split(":") if g) < 2:
        return None
    try:
        return ipaddress.IPv6Address(candidate)
    except ValueError:
        return None


def _scrub_v6(run: str, keep: Collection[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        tries = [text]
        head, sep, port = text.rpartition(":")
        if sep and port.isdigit():
            tries.append(head)  # "2001:db8::1:443" may be "[2001:db8::1]:443" written bare
        for candidate in tries:
            address = _v6(candidate)
            if address is not None:
                if _kept(address, candidate, keep):
                    return text
                return SCRUBBED + text[len(candidate) :]
        return text

    return _V6.sub(replace, run)


def _scrub_v4(run: str, keep: Collection[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        try:
            address = ipaddress.IPv4Address(text)
        except ValueError:
            return text  # 999.1.1.1: not an address
        return text if _kept(address, text, keep) else SCRUBBED

    return _V4.sub(replace, run)


def _scrub_run(match: re.Match[str], keep: Collection[str]) -> str:
    raw = match.group(0)
    if not any(c in raw for c in ".:%"):
        return raw  # a bare hex word or number: no address
    decoded = _ESCAPES.sub(lambda m: chr(int(m.group(1), 16)), raw)
    scrubbed = _scrub_v4(_scrub_v6(decoded, keep), keep)
    if scrubbed == decoded:
        return raw
    # The scrubbed text in the escapes it came in would read as an address
    # again to nobody, but keeping it plain is simpler to quote as evidence.
    return scrubbed


def redact(text: str, keep: Collection[str] = ()) -> str:
    """``text`` with every IP literal outside ``keep`` replaced by ``[scrubbed]``."""
    return _RUN.sub(lambda m: _scrub_run(m, keep), text)
