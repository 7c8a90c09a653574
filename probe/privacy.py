"""Scrub free text before it is stored: the volunteer's address must never leak.

Error strings and page titles can carry addresses (a blockpage that echoes
"your IP is …", an OS error naming the local socket). Anything that looks
like an IP literal and is not one of the addresses we were measuring is
replaced, so evidence keeps the target and loses the vantage.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

_CANDIDATE = re.compile(
    r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7})(?![\w.:])"
)
SCRUBBED = "[scrubbed]"


def redact(text: str, keep: Collection[str] = ()) -> str:
    def replace(match: re.Match[str]) -> str:
        candidate = match.group(0)
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            return candidate
        return candidate if str(address) in keep or candidate in keep else SCRUBBED

    return _CANDIDATE.sub(replace, text)
