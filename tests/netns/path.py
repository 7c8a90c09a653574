"""The path test network for packet evidence: five namespaces in a line.

::

    client ──── r1 ──── r2 ──── censor ──── server
    10.79.1.2   .1.1|.2.1  .2.2|.3.1  .3.2|.4.1  .4.2 + SERVER_IP .4.10 (TLS 443, HTTP 80, 4433, 8443)
    (the probe)                                      RESOLVER_IP .4.53 (DNS), SILENT_IP .4.99 (nothing)

From the client r1 is hop 1, r2 hop 2, the censor hop 3 and the server hop
4. Every router (the censor too) forwards and answers an expired packet with
ICMP time exceeded, never rate limited here (``icmp_ratelimit`` 0 lifts the
per-destination limit; time exceeded is also taken out of ``icmp_ratemask``,
which is what the per-namespace global limit of ``icmp_msgs_per_sec``
applies to: a traceroute run twice in a second must see every hop).

The source of a time exceeded is chosen by a route lookup toward the
expired packet's sender (``icmp_errors_use_inbound_ifaddr`` stays 0): here,
where every path is symmetric, that is the address on the router's
client-facing link, hence ``R1_IP``, ``R2_IP``, ``CENSOR_IP`` (measured by
``test_path_network``).

IP TTLs as they arrive at the client (measured; Linux starts at 64, the
censor at 255 as many appliances do, and each forwarding hop takes one):

==========================================  ========
the server's SYN-ACK, the resolver's reply  61 (64 - censor, r2, r1)
the censor's forged RST (``reset_sni``)     253 (255 - r2, r1)
time exceeded from r1 / r2 / the censor     64 / 63 / 253
an injected DNS answer (``inject_dns``)     ``ttl`` - 2 (198 by default)
==========================================  ========

The censor's scenarios are iptables rules in its namespace:

- ``reset_sni(name)``: a TCP segment carrying ``name`` (the ClientHello's
  SNI) is answered by ``REJECT --reject-with tcp-reset`` in filter FORWARD.
  A DPI box inspects what reaches its interface, before any router decides
  that the packet's TTL is spent; netfilter, though, runs the TTL check
  (in ip_forward) before filter FORWARD, so a trigger arriving with TTL 1
  would draw a time exceeded and the censor would seem to sit one hop
  further than it does. The same string match in mangle PREROUTING
  therefore sets the trigger's TTL to 64: the censor then reacts at hop 3,
  the hop where the trigger first reaches it, instead of hiding behind its
  own TTL check.
- ``drop_host(name)``: an HTTP request with ``Host: name`` (any case) is
  dropped in raw PREROUTING, before the TTL check: silence from hop 3 on.
- ``inject_dns(names, forged_ip)``: ``tests.netns.inject_dns`` (scapy) in
  the censor's namespace races forged answers to UDP queries for ``names``.
  The genuine resolver answers ``RESOLVER_DELAY`` s late (``serve_path``:
  a recursive resolver far away), which is what makes the injector win
  every race, as it does on a real path where it sits near the client.

Safety as in ``tests.netns.topology``: veths are created inside the
namespaces, every route is a 10.79.0.0/16 route (no default route), and the
namespaces carry its ``PREFIX`` so that ``remove_leftovers`` removes those
of a killed run.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tests.netns.namespaces import Child, Namespaces, built

CLIENT_IP = "10.79.1.2"
R1_CLIENT_IP = "10.79.1.1"
R1_R2_IP = "10.79.2.1"
R2_R1_IP = "10.79.2.2"
R2_CENSOR_IP = "10.79.3.1"
CENSOR_R2_IP = "10.79.3.2"
CENSOR_SERVER_IP = "10.79.4.1"
SERVER_LINK_IP = "10.79.4.2"

SERVER_IP = "10.79.4.10"  # TLS 443, HTTP 80; 4433 resets after the ClientHello; 8443 closed
RESOLVER_IP = "10.79.4.53"  # DNS, UDP and TCP 53
SILENT_IP = "10.79.4.99"  # present, nothing listens: an address on the path that runs no resolver
SERVICE_IPS = (SERVER_IP, RESOLVER_IP, SILENT_IP)

# Where each hop's time exceeded comes from, as seen by the client.
R1_IP = R1_CLIENT_IP
R2_IP = R2_R1_IP
CENSOR_IP = CENSOR_R2_IP
HOPS = {1: R1_IP, 2: R2_IP, 3: CENSOR_IP}

# IP TTLs at the client (see the module docstring).
SERVER_TTL = 61
CENSOR_RST_TTL = 253
INJECTED_TTL = 200  # inject_dns's default IP TTL at the censor: 198 at the client

HTTPS_PORT = 443
HTTP_PORT = 80
RESET_PORT = 4433  # the server reads the ClientHello, then resets: a genuine reset
CLOSED_PORT = 8443  # nothing listens: the kernel resets the SYN
DNS_PORT = 53

NAMES = {
    "chat.path.test": SERVER_IP,
    "blocked.path.test": SERVER_IP,
    "clean.path.test": SERVER_IP,
    "canary.path.test": SERVER_IP,  # the raw DNS witness's baseline name
}
TLS_NAMES = ("chat.path.test", "blocked.path.test", "clean.path.test", "example.com")
RESOLVER_DELAY = 0.3  # s the genuine resolver takes: the injector's head start

CENSOR_CLIENT_IF = "cs-r2"  # where the injector sniffs queries
ROLES = ("client", "r1", "r2", "censor", "server")
ICMP_TIME_EXCEEDED = 11
ICMP_RATEMASK = 0x1818 & ~(1 << ICMP_TIME_EXCEEDED)  # the default mask without time exceeded
CENSOR_DEFAULT_TTL = 255
NO_NET_RAW = ("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--")
STARTUP_TIMEOUT = 30.0  # s a server or the injector gets to say ready (scapy imports slowly)


@dataclass
class PathNetwork(Namespaces):
    """The five namespaces, their links and routes; the censor's methods set the scenario."""

    ROLES: ClassVar[tuple[str, ...]] = ROLES
    injector: Child | None = None

    @property
    def client(self) -> str:
        return self.ns("client")

    @property
    def r1(self) -> str:
        return self.ns("r1")

    @property
    def r2(self) -> str:
        return self.ns("r2")

    @property
    def censor(self) -> str:
        return self.ns("censor")

    @property
    def server(self) -> str:
        return self.ns("server")

    def _proc(self, ns: str, key: str, value: int) -> None:
        # Written from inside the namespace: /proc/sys/net is that namespace's
        # (and sh is everywhere, procps's sysctl is not).
        self.exec(ns, "sh", "-c", f"echo {value} > /proc/sys/net/ipv4/{key}")

    def create(self) -> None:
        self.add_namespaces()
        self.veth(self.client, "c-r1", CLIENT_IP, self.r1, "r1-c", R1_CLIENT_IP)
        self.veth(self.r1, "r1-r2", R1_R2_IP, self.r2, "r2-r1", R2_R1_IP)
        self.veth(self.r2, "r2-cs", R2_CENSOR_IP, self.censor, CENSOR_CLIENT_IF, CENSOR_R2_IP)
        self.veth(self.censor, "cs-s", CENSOR_SERVER_IP, self.server, "s-cs", SERVER_LINK_IP)
        for address in SERVICE_IPS:
            self.ipn(self.server, "addr", "add", f"{address}/24", "dev", "s-cs")
        # Connected /24s are more specific than these: each /16 only sends the rest onward.
        self.ipn(self.client, "route", "add", "10.79.0.0/16", "via", R1_CLIENT_IP)
        self.ipn(self.r1, "route", "add", "10.79.0.0/16", "via", R2_R1_IP)
        self.ipn(self.r2, "route", "add", "10.79.1.0/24", "via", R1_R2_IP)
        self.ipn(self.r2, "route", "add", "10.79.4.0/24", "via", CENSOR_R2_IP)
        self.ipn(self.censor, "route", "add", "10.79.0.0/16", "via", R2_CENSOR_IP)
        self.ipn(self.server, "route", "add", "10.79.0.0/16", "via", CENSOR_SERVER_IP)
        for router in (self.r1, self.r2, self.censor):
            self._proc(router, "ip_forward", 1)
            self._proc(router, "icmp_ratelimit", 0)
            self._proc(router, "icmp_ratemask", ICMP_RATEMASK)
        self._proc(self.censor, "ip_default_ttl", CENSOR_DEFAULT_TTL)

    # The censor's scenarios.

    def censor_rule(self, *rule: str) -> None:
        """One iptables rule in the censor, e.g. ``("-t", "raw", "-A", "PREROUTING", …)``."""
        self.exec(self.censor, "iptables", "-w", "5", *rule)

    def reset_sni(self, name: str) -> None:
        """Reset the connection whose ClientHello carries ``name``, seen at hop 3 whatever its TTL."""
        match = ("-p", "tcp", "-m", "string", "--algo", "bm", "--string", name)
        self.censor_rule("-t", "mangle", "-A", "PREROUTING", *match, "-j", "TTL", "--ttl-set", "64")
        self.censor_rule("-A", "FORWARD", *match, "-j", "REJECT", "--reject-with", "tcp-reset")

    def drop_host(self, name: str) -> None:
        """Drop an HTTP request for ``Host: name`` before any TTL check: silence from hop 3 on."""
        self.censor_rule(
            "-t", "raw", "-A", "PREROUTING", "-p", "tcp", "-m", "string", "--algo", "bm", "--icase",
            "--string", f"Host: {name}", "-j", "DROP",
        )  # fmt: skip

    def inject_dns(self, names: Sequence[str], forged_ip: str, ttl: int = INJECTED_TTL) -> Child:
        """Start the DNS injector for ``names`` (replacing any), once its sniffer runs."""
        self.stop_injector()
        argv = [
            sys.executable, "-m", "tests.netns.inject_dns", "--iface", CENSOR_CLIENT_IF,
            "--forged", forged_ip, "--ttl", str(ttl), *names,
        ]  # fmt: skip
        self.injector = self.start(self.censor, "injector", argv)
        self.injector.stdout.expect("ready", STARTUP_TIMEOUT)
        return self.injector

    def stop_injector(self) -> None:
        if self.injector is not None:
            self.injector.stop()
            self.children.remove(self.injector)
            self.injector = None

    def flush(self) -> None:
        """A censor with no rule in any table and no injector."""
        self.stop_injector()
        for table in ("filter", "nat", "mangle", "raw"):
            self.exec(self.censor, "iptables", "-w", "5", "-t", table, "-F")
            self.exec(self.censor, "iptables", "-w", "5", "-t", table, "-X")

    @contextlib.contextmanager
    def flushed(self) -> Iterator[PathNetwork]:
        """The network with a clean censor, before and after the block."""
        self.flush()
        try:
            yield self
        finally:
            self.flush()

    # Processes.

    def start_server(self, workdir: Path, *, timeout: float = STARTUP_TIMEOUT) -> Child:
        """``tests.netns.serve_path`` in the server namespace (CA at ``workdir/ca.pem``), once ready."""
        argv = [sys.executable, "-m", "tests.netns.serve_path", "--workdir", str(workdir)]
        # stdin kept open: its EOF is the server's signal to stop, should this process die.
        child = self.start(self.server, "server", argv, stdin=True)
        child.stdout.expect("ready", timeout)
        return child

    def python(
        self, ns: str, *args: str, timeout: float, wrap: Sequence[str] = (), net_raw: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` inside ``ns``, to completion; ``net_raw=False`` without CAP_NET_RAW."""
        return super().python(ns, *args, timeout=timeout, wrap=(*wrap, *([] if net_raw else NO_NET_RAW)))

    def once(self, config: Path, *, timeout: float = 60.0) -> dict[str, Any]:
        """``msgprobe once --format json`` in the client namespace: its report (schema 2)."""
        return self.once_in(self.client, config, timeout=timeout)

    def once_without_net_raw(self, config: Path, *, timeout: float = 60.0) -> dict[str, Any]:
        """The same, CAP_NET_RAW dropped from the bounding set (raw and packet sockets get EPERM)."""
        return self.once_in(self.client, config, timeout=timeout, wrap=NO_NET_RAW)


def path_network() -> contextlib.AbstractContextManager[PathNetwork]:
    """A fresh path network, removed whatever happens (leftovers of dead runs removed first)."""
    return built(PathNetwork())
