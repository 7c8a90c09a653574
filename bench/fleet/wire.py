"""Prometheus remote write 1.0 on the wire, by hand: a protobuf WriteRequest
in a snappy block, the way an agent sends it.

No protobuf or snappy dependency for a generator this small. The messages
(prometheus/prompb/types.proto, remote.proto) are four:

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   # timestamp in ms

so an encoder is a varint, a tag byte per field and length prefixes. And a
snappy block made of literals only is valid snappy (the format lets the
encoder choose which copies to emit, none is allowed): the uncompressed
length as a varint, then one literal element whose tag says how many bytes
follow. Every decoder accepts it; it just does not compress, which costs
loopback bandwidth only. https://github.com/google/snappy/blob/main/format_description.txt
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

CONTENT_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
# Field tags: (field number << 3) | wire type (0 varint, 1 64-bit, 2 length-delimited).
TIMESERIES, LABELS, SAMPLES = b"\x0a", b"\x0a", b"\x12"
LABEL_NAME, LABEL_VALUE = b"\x0a", b"\x12"
SAMPLE_VALUE, SAMPLE_TIMESTAMP = b"\x09", b"\x10"


def varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("remote write varints here are never negative")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def label(name: str, value: str) -> bytes:
    body = length_delimited(LABEL_NAME, name.encode()) + length_delimited(LABEL_VALUE, value.encode())
    return length_delimited(LABELS, body)


def sample(value: float, timestamp_ms: int) -> bytes:
    body = SAMPLE_VALUE + struct.pack("<d", value) + SAMPLE_TIMESTAMP + varint(timestamp_ms)
    return length_delimited(SAMPLES, body)


def timeseries(labels: Mapping[str, str], samples: Iterable[tuple[float, int]]) -> bytes:
    """One TimeSeries message, labels sorted by name as Prometheus sends them."""
    body = b"".join(label(k, labels[k]) for k in sorted(labels))
    body += b"".join(sample(v, t) for v, t in samples)
    return length_delimited(TIMESERIES, body)


def snappy_block(data: bytes) -> bytes:
    """``data`` as one snappy block of a single literal (uncompressed, valid)."""
    n = len(data)
    if n == 0:
        return varint(0)
    if n <= 60:
        tag = bytes([(n - 1) << 2])
    else:
        size = (n - 1).bit_length() + 7 >> 3  # bytes for len-1: 1 to 4
        if size > 4:
            raise ValueError("a snappy literal holds at most 4 GiB")
        tag = bytes([(59 + size) << 2]) + (n - 1).to_bytes(size, "little")
    return varint(n) + tag + data
