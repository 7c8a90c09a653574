"""A loopback STUN server (RFC 5389 Binding) that can behave like a call
relay behind a censor.

``StunServer(host, rule=...)`` answers each Binding Request by its rule:

- ``Respond(echo=False)`` — a correct Binding success response with
  XOR-MAPPED-ADDRESS (what a relay or a neutral STUN server does); with
  ``echo=True`` other datagrams are echoed too;
- ``Swallow(echo=False)`` — STUN is dropped (a censor's signature match);
  with ``echo=True`` any other datagram is echoed back, as if plain UDP got
  through to something that answers;
- ``CutOff(after)`` — the first ``after`` requests of each client flow
  (source address and port) are answered, then none (the RU "l4-25"
  cut-off);
- ``Garbage(kind)`` — a reply that must not count: ``"not-stun"``,
  ``"wrong-id"``, ``"oversized"``, ``"malformed"``, ``"flood"`` (many
  wrong-id replies per request).

It counts what it saw (``requests``, ``answered``, ``bytes_received``,
``bytes_sent``), so tests can check bounds at the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from probe.measure.stun import BINDING_REQUEST, BINDING_SUCCESS, HEADER, MAGIC_COOKIE, XOR_MAPPED_ADDRESS


@dataclass(frozen=True)
class Respond:
    echo: bool = False  # also echo datagrams that are not STUN (a path where plain UDP gets through)


@dataclass(frozen=True)
class Swallow:
    echo: bool = False


@dataclass(frozen=True)
class CutOff:
    after: int = 25


@dataclass(frozen=True)
class Garbage:
    kind: str = "not-stun"


StunRule = Respond | Swallow | CutOff | Garbage


def xor_mapped_address(txid: bytes, host: str, port: int) -> bytes:
    """The attribute a Binding success carries (RFC 5389 §15.2)."""
    ip = ipaddress.ip_address(host)
    xport = port ^ (MAGIC_COOKIE >> 16)
    key = struct.pack("!I", MAGIC_COOKIE) + (txid if ip.version == 6 else b"")
    packed = bytes(a ^ b for a, b in zip(ip.packed, key, strict=True))
    value = struct.pack("!BBH", 0, 1 if ip.version == 4 else 2, xport) + packed
    return struct.pack("!HH", XOR_MAPPED_ADDRESS, len(value)) + value


def success(txid: bytes, host: str, port: int) -> bytes:
    attribute = xor_mapped_address(txid, host, port)
    return struct.pack("!HHI", BINDING_SUCCESS, len(attribute), MAGIC_COOKIE) + txid + attribute


def _garbage(kind: str, txid: bytes, host: str, port: int) -> list[bytes]:
    if kind == "wrong-id":
        return [success(os.urandom(12), host, port)]
    if kind == "oversized":
        return [success(txid, host, port) + b"\0" * 2000]
    if kind == "malformed":
        good = success(txid, host, port)
        return [good[:2] + struct.pack("!H", 40) + good[4:]]  # a length past the datagram
    if kind == "flood":
        return [success(os.urandom(12), host, port) for _ in range(50)]
    return [b"\xff" * 64]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: StunServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        for reply in self.server.replies(data, str(addr[0]), int(addr[1])):
            assert self.transport is not None
            self.server.bytes_sent += len(reply)
            self.transport.sendto(reply, addr)


@dataclass
class StunServer:
    host: str
    port: int = 0
    rule: StunRule = field(default_factory=Respond)
    requests: int = 0
    answered: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    _flows: dict[tuple[str, int], int] = field(default_factory=dict)
    _transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def replies(self, data: bytes, host: str, port: int) -> list[bytes]:
        self.bytes_received += len(data)
        kind, _, cookie = struct.unpack_from("!HHI", data) if len(data) >= HEADER else (0, 0, 0)
        is_request = (kind, cookie) == (BINDING_REQUEST, MAGIC_COOKIE)
        rule = self.rule
        if not is_request:
            return [data] if isinstance(rule, Swallow | Respond) and rule.echo else []
        self.requests += 1
        txid = data[8:20]
        seen = self._flows.get((host, port), 0)
        self._flows[(host, port)] = seen + 1
        if isinstance(rule, Swallow) or (isinstance(rule, CutOff) and seen >= rule.after):
            return []
        if isinstance(rule, Garbage):
            return _garbage(rule.kind, txid, host, port)
        self.answered += 1
        return [success(txid, host, port)]

    async def __aenter__(self) -> StunServer:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()


def free_udp_port(hosts: Sequence[str]) -> int:
    """A UDP port number free on every host given (the testbed's services share one)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((hosts[0], 0))
            port = int(first.getsockname()[1])
        try:
            with contextlib.ExitStack() as stack:
                for host in hosts:
                    s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no UDP port number free on every testbed address")
