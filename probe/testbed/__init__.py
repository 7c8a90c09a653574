"""A simulated censor on loopback, for tests, benchmarks and ``msgprobe demo``.

The censor: a resolver that lies per name over UDP and TCP (``resolver``:
NXDOMAIN, empty answers, REFUSED, SERVFAIL, silence, bogus or injected
answers), and a DPI middlebox (``middlebox``) that reads the first flight
of each connection and resets, stalls, or answers with a blockpage or a
redirect on the TLS SNI or HTTP Host it sees, passing everything else to
the genuine server. Ports whose SYNs get RST or nothing at all
(``blackhole``) play an IP block.

What it censors: a truthful DoH control resolver (``doh``) and genuine web
servers (``servers``) with certificates from a throwaway PKI (``pki``),
including an "interception CA" that the fingerprints know.

Every server binds 127.0.0.0/8 addresses (any of them works on Linux
without setup) and ephemeral ports unless told otherwise, starts and stops
with ``async with``, and exposes what it bound. ``scenarios`` assembles
them into fake services; ``serve`` runs them in a process of their own.
No root needed, nothing leaves the machine.
"""

from probe.testbed.blackhole import BlackholeListener, ClosedPort
from probe.testbed.doh import DohServer
from probe.testbed.middlebox import CensorProxy, Pass, Reset, Stall
from probe.testbed.pki import Leaf, TestCA
from probe.testbed.replies import RKN_BLOCKPAGE, Blockpage, Redirect
from probe.testbed.resolver import Answer, DnsServer, Drop, Inject, NoAnswer, NxDomain, Refused, ServFail
from probe.testbed.servers import Hops, Huge, Page, Slow, Status, WebServer
from probe.testbed.stun import CutOff, Garbage, Respond, StunServer, Swallow

__all__ = [
    "RKN_BLOCKPAGE",
    "Answer",
    "BlackholeListener",
    "Blockpage",
    "CensorProxy",
    "ClosedPort",
    "CutOff",
    "DnsServer",
    "DohServer",
    "Drop",
    "Garbage",
    "Hops",
    "Huge",
    "Inject",
    "Leaf",
    "NoAnswer",
    "NxDomain",
    "Page",
    "Pass",
    "Redirect",
    "Refused",
    "Reset",
    "Respond",
    "ServFail",
    "Slow",
    "Stall",
    "Status",
    "StunServer",
    "Swallow",
    "TestCA",
    "WebServer",
]
