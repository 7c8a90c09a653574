"""Can this process capture and craft packets? One line saying why not.

Asked once per loaded config (off the event loop, like the CA stores), so a
missing capability costs one check, and each raw check then reports
``error: needs NET_RAW`` while every other check runs as before.
"""

from __future__ import annotations

import socket

from probe.model_packets import NEEDS_LIBPCAP, NEEDS_NET_RAW, NEEDS_SCAPY

ETH_P_ALL = 0x0003


def raw_problem() -> str | None:
    """None when packets can be captured with a compiled BPF filter and sent raw."""
    try:
        # Everything the raw checks will use, imported now, off the event loop:
        # importing scapy's layers inside a cycle held the GIL long enough to
        # show as 40 ms of event-loop lag.
        import scapy.layers.inet
        import scapy.layers.inet6
        import scapy.layers.l2
        import scapy.route
        import scapy.route6  # noqa: F401
    except ImportError:
        return NEEDS_SCAPY
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)).close()
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()
    except PermissionError:
        return NEEDS_NET_RAW
    except OSError as exc:  # no AF_PACKET (not Linux) is as good as no capability
        return f"{NEEDS_NET_RAW} ({exc.strerror or exc})"
    try:
        # scapy compiles BPF with libpcap; without it an unfiltered capture would
        # see every packet of the host's network namespace. Never let that happen.
        from scapy.libs import winpcapy  # noqa: F401
    except OSError:
        return NEEDS_LIBPCAP
    return None
