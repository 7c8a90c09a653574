"""The payloads a censor traceroute sends: the bytes a name-based censor matches on.

The ClientHello is the stdlib's own (OpenSSL through a MemoryBIO, never a
socket): it looks like every other Python client's, so a censor that keys
on the SNI sees the name where a real client puts it, and nothing else
about the probe stands out. Only its first flight is taken; the handshake
is never continued (the walk sends it once and aborts the connection).
"""

from __future__ import annotations

import contextlib
import ssl


def client_hello(sni: str) -> bytes:
    """The TLS records of a ClientHello carrying ``sni`` (one TCP segment: a few hundred bytes)."""
    # Nothing is verified: no certificate will ever arrive at this object.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    # The ClientHello is written; the handshake then waits for a ServerHello that never comes.
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def http_request(host: str) -> bytes:
    """A plain ``GET /`` with ``Host: host``: what a Host-matching censor inspects."""
    name = host.encode("idna")  # an internationalised name goes on the wire as its A-label
    return b"GET / HTTP/1.1\r\nHost: " + name + b"\r\nUser-Agent: msgprobe\r\nAccept: */*\r\n\r\n"
