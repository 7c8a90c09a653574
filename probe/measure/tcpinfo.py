"""What the kernel counted on a TCP socket (Linux ``TCP_INFO``).

A TLS handshake runs inside OpenSSL, below the measured connection's byte
counting, so the server's flight (the certificate chain: what a throttler
on the SNI slows first) is read from the kernel instead: ``tcpi_bytes_received``
counts every payload byte the peer sent on this connection. Off Linux, or on
a kernel too old to have the field, the count is None, never a guess.
"""

from __future__ import annotations

import socket
import struct

# struct tcp_info (linux/tcp.h): 8 one-byte fields, 24 u32 (tcpi_rto …
# tcpi_total_retrans), then u64 pacing_rate, max_pacing_rate, bytes_acked,
# bytes_received.
_RECEIVED_AT = 8 + 24 * 4 + 3 * 8
_SIZE = _RECEIVED_AT + 8


def bytes_received(sock: socket.socket) -> int | None:
    level = getattr(socket, "IPPROTO_TCP", 6)
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        raw = sock.getsockopt(level, option, _SIZE)
    except OSError:
        return None
    if len(raw) < _SIZE:
        return None
    return int(struct.unpack_from("=Q", raw, _RECEIVED_AT)[0])
