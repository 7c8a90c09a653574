"""Argument parsers shared by the kinds' ``parse``: a port, a URL on the endpoint's host."""

from __future__ import annotations

from urllib.parse import urlsplit


def port(kind: str, arg: str) -> int:
    if not arg.isdigit() or not 0 < int(arg) < 65536:
        raise ValueError(f"check '{kind}:{arg}' needs a port 1-65535")
    return int(arg)


def url(kind: str, arg: str, host: str) -> str:
    parts = urlsplit(arg)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"check '{kind}:{arg}' needs an http:// or https:// URL")
    # HTTP runs on the addresses measured for this endpoint, so a URL on
    # another host would silently measure the wrong thing.
    if parts.hostname.lower() != host.lower().strip("[]"):
        raise ValueError(f"URL host {parts.hostname!r} is not the endpoint {host!r}")
    return arg
