"""STUN messages (RFC 5389 §6, §15): the Binding Request we send and the
checks a reply must pass before it counts as an answer.

A Binding Request is the 20-byte header alone: type 0x0001, length 0, the
magic cookie 0x2112A442 and a fresh 96-bit transaction id. That is what a
call client sends first to a relay, and what a neutral STUN server answers.

A reply counts only if it is a well-formed STUN message (top two bits zero,
the magic cookie, a length that is a multiple of 4 and matches the datagram,
attributes that fit) of class success or error response to Binding, with our
transaction id. Anything else is recorded as what it is (not STUN, wrong
transaction, malformed), never trusted.

Privacy: a Binding success response carries the volunteer's public address
in XOR-MAPPED-ADDRESS (0x0020) or MAPPED-ADDRESS (0x0001). The parser walks
attribute headers only and keeps their types; it never decodes or returns a
value, so the address cannot reach an observation, a log or an export.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

MAGIC_COOKIE = 0x2112A442
HEADER = 20
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
XOR_MAPPED_ADDRESS = 0x0020
MAPPED_ADDRESS = 0x0001
# RFC 5389 recommends a path MTU bound; nothing we ask for is near it, so a
# datagram above this is a hostile or broken server (recorded as oversized).
MAX_DATAGRAM = 1500
MAX_ATTRIBUTES = 32  # a Binding response has a handful; we keep at most this many types


def transaction_id() -> bytes:
    """96 random bits (RFC 5389 §6: uniformly random, fresh per request)."""
    return os.urandom(12)


def binding_request(txid: bytes) -> bytes:
    if len(txid) != 12:
        raise ValueError("a STUN transaction id is 96 bits")
    return struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + txid


def random_payload(size: int) -> bytes:
    """``size`` random bytes that can never parse as STUN (its first two bits
    are 11, where STUN has 00) nor as RTP (10): a datagram a signature
    filter has no reason to drop."""
    data = bytearray(os.urandom(size))
    if data:
        data[0] |= 0xC0
    return bytes(data)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a datagram was, judged against our request; never its attribute values."""

    valid: bool  # a Binding success or error response with our transaction id
    problem: str | None  # why it does not count: "not STUN", "wrong transaction", ...
    message_type: int | None = None
    attributes: tuple[int, ...] = ()  # attribute types, in order (values never kept)
    size: int = 0

    @property
    def success(self) -> bool:
        return self.valid and self.message_type == BINDING_SUCCESS


def judge(data: bytes, txid: bytes) -> Reply:
    """Classify one received datagram; any byte string gives a Reply, never an exception."""
    size = len(data)
    if size > MAX_DATAGRAM:
        return Reply(False, f"oversized datagram (over {MAX_DATAGRAM} bytes)", size=size)
    if size < HEADER:
        return Reply(False, f"short datagram ({size} bytes)", size=size)
    kind, length, cookie = struct.unpack_from("!HHI", data)
    if kind & 0xC000 or cookie != MAGIC_COOKIE:
        return Reply(False, "not STUN", size=size)
    if length % 4 or HEADER + length != size:
        return Reply(False, "malformed STUN (length)", kind, size=size)
    if data[8:20] != txid:
        return Reply(False, "wrong transaction id", kind, size=size)
    types: list[int] = []
    offset = HEADER
    while offset < size:
        if offset + 4 > size:
            return Reply(False, "malformed STUN (attribute header)", kind, tuple(types), size)
        attr, attr_length = struct.unpack_from("!HH", data, offset)
        offset += 4 + attr_length + (-attr_length % 4)
        if offset > size:
            return Reply(False, "malformed STUN (attribute overruns)", kind, tuple(types), size)
        if len(types) < MAX_ATTRIBUTES:
            types.append(attr)
    if kind not in (BINDING_SUCCESS, BINDING_ERROR):
        return Reply(False, f"not a Binding response (type 0x{kind:04x})", kind, tuple(types), size)
    return Reply(True, None, kind, tuple(types), size)
