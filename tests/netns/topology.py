"""The peer-control test network: four network namespaces, nothing else.

::

    client ─────────── censor ─────────── servers ─────────── control
    10.77.1.2   10.77.1.1    10.77.2.1    10.77.2.2   10.77.3.1    10.77.3.2
    (the probe)     (router: ip_forward,     (genuine services,       (msgprobe control
                     iptables per scenario)   resolvers; forwards      on :9491)
                                              client <-> control)

The servers' addresses (``CHAT_IP`` …) sit on the servers' link to the
censor. The control reaches them on its own link, never through the censor;
the client reaches everything, the control included, only through the
censor, so a censor rule can drop the control too.

Safety: the veths are created inside the namespaces (``ip -n A link add …
peer … netns B``), never in the host's namespace; every route is a
10.77.0.0/16 route (no default route anywhere), so a packet to any other
address fails inside its namespace. Nothing here runs in the host's
namespace but ``ip`` and ``iptables`` applied to these namespaces.

Namespaces are named ``PREFIX<pid>-<random>-<role>``: ``remove_leftovers``
deletes those whose creating process is gone (a run killed before its
cleanup), never those of a run still going.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tests.netns.namespaces import (  # noqa: F401  (re-exported: the netns tests import them from here)
    PREFIX,
    ROOT,
    Child,
    Lines,
    Namespaces,
    built,
    delete_namespace,
    ours,
    python_env,
    remove_leftovers,
)

CLIENT_IP = "10.77.1.2"
CENSOR_CLIENT_IP = "10.77.1.1"
CENSOR_SERVERS_IP = "10.77.2.1"
SERVERS_IP = "10.77.2.2"
SERVERS_CONTROL_IP = "10.77.3.1"
CONTROL_IP = "10.77.3.2"
CONTROL_PORT = 9491

CHAT_IP = "10.77.2.10"  # HTTPS 443 + HTTP 80
WEB_IP = "10.77.2.11"  # HTTP 80, the genuine page
BLOCKPAGE_IP = "10.77.2.20"  # HTTP 80, a censor's page no fingerprint knows
DYNAMIC_IP = "10.77.2.30"  # HTTP 80, a page that changes on every request
DOH_IP = "10.77.2.44"  # the probe's control resolver (DoH 443)
DNS_IP = "10.77.2.53"  # the network's resolver
LYING_DNS_IP = "10.77.2.54"  # forges chat's name to FORGED_IP
FORGED_IP = "10.77.2.99"  # present, nothing listens
SERVICE_IPS = (CHAT_IP, WEB_IP, BLOCKPAGE_IP, DYNAMIC_IP, DOH_IP, DNS_IP, LYING_DNS_IP, FORGED_IP)
NAMES = {
    "chat.msgprobe.test": CHAT_IP,
    "web.msgprobe.test": WEB_IP,
    "news.msgprobe.test": DYNAMIC_IP,
    "canary.msgprobe.test": SERVERS_IP,
}


@dataclass
class Network(Namespaces):
    """The four namespaces, their links and routes; ``censor_rule`` sets the scenario."""

    ROLES: ClassVar[tuple[str, ...]] = ("client", "censor", "servers", "control")

    @property
    def client(self) -> str:
        return self.ns("client")

    @property
    def censor(self) -> str:
        return self.ns("censor")

    @property
    def servers(self) -> str:
        return self.ns("servers")

    @property
    def control(self) -> str:
        return self.ns("control")

    def create(self) -> None:
        self.add_namespaces()
        self.veth(self.client, "c-cs", CLIENT_IP, self.censor, "cs-c", CENSOR_CLIENT_IP)
        self.veth(self.censor, "cs-s", CENSOR_SERVERS_IP, self.servers, "s-cs", SERVERS_IP)
        self.veth(self.servers, "s-ct", SERVERS_CONTROL_IP, self.control, "ct-s", CONTROL_IP)
        for address in SERVICE_IPS:
            self.ipn(self.servers, "addr", "add", f"{address}/24", "dev", "s-cs")
        self.ipn(self.client, "route", "add", "10.77.0.0/16", "via", CENSOR_CLIENT_IP)
        self.ipn(self.censor, "route", "add", "10.77.3.0/24", "via", SERVERS_IP)
        self.ipn(self.servers, "route", "add", "10.77.1.0/24", "via", CENSOR_SERVERS_IP)
        self.ipn(self.control, "route", "add", "10.77.0.0/16", "via", SERVERS_CONTROL_IP)
        for router in (self.censor, self.servers):
            # Written from inside the router's namespace: /proc/sys/net is that namespace's
            # (and sh is everywhere, procps's sysctl is not).
            self.exec(router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")

    def censor_rule(self, *rule: str) -> None:
        """One iptables rule in the censor, e.g. ``("-A", "FORWARD", "-d", ip, "-j", "DROP")``."""
        self.exec(self.censor, "iptables", "-w", "5", *rule)

    def flush_censor(self) -> None:
        for table in ("filter", "nat"):
            self.exec(self.censor, "iptables", "-w", "5", "-t", table, "-F")
            self.exec(self.censor, "iptables", "-w", "5", "-t", table, "-X")

    def start_servers(
        self,
        module: str,
        workdir: Path,
        *,
        addresses: Sequence[str] = (),
        args: Sequence[str] = (),
        stdin: bool = False,
        timeout: float = 30.0,
        name: str = "servers",
    ) -> Child:
        """``python -m MODULE --workdir DIR`` in the servers namespace, on ``addresses``
        added to its link to the censor (beyond SERVICE_IPS), once it says ``ready``."""
        for address in addresses:
            self.ipn(self.servers, "addr", "add", f"{address}/24", "dev", "s-cs")
        argv = [sys.executable, "-m", module, "--workdir", str(workdir), *args]
        child = self.start(self.servers, name, argv, stdin=stdin)
        child.stdout.expect("ready", timeout)
        return child

    @contextlib.contextmanager
    def flushed(self) -> Iterator[Network]:
        """The network with a censor that has no rule, before and after the block."""
        self.flush_censor()
        try:
            yield self
        finally:
            self.flush_censor()

    def once(self, config: Path, *, timeout: float = 60.0) -> dict[str, Any]:
        """``msgprobe once --format json`` in the client namespace: its report (schema 2)."""
        return self.once_in(self.client, config, timeout=timeout)


def network() -> contextlib.AbstractContextManager[Network]:
    """A fresh network, removed whatever happens (leftovers of dead runs removed first)."""
    return built(Network())
