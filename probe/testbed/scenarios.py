"""Fake messenger services on 127.0.0.x, each behind the simulated censor.

Layout (all loopback, no root):

    127.0.0.2   the network's resolver — lies per name (UDP+TCP)
    127.0.0.3   the control resolver — DoH, truthful
    127.0.0.4   the genuine servers (HTTPS with the test CA, plain HTTP)
    127.0.0.5   an interception server (certificates from an "interception CA")
    127.0.0.6   a server with a valid certificate for another name
    127.0.0.7   a server with an expired certificate
    127.0.0.8   a server whose CA nobody trusts (and no fingerprint names)
    127.0.0.9   servers whose certificate OpenSSL serves but cryptography
                cannot parse ("bad-der": a non-ASCII SAN dNSName;
                "bad-der-duplicate": an extension twice), both signed by
                the test CA with a signature the patch broke
    127.0.0.10+ one address per fake service: the censor's middlebox
                (SNI/Host inspection) in front of the genuine servers
    127.0.255.254  the injector's forged answer: nothing listens there,
                so a connection to it is refused (far above any service)

Every address listens on the same two port numbers (picked once, free on
all of them), because a DNS answer that points elsewhere must find the same
ports there. ``LoopbackCensor`` is what tests build scenarios with;
``DEMO`` is the fixed scenario set of ``msgprobe demo`` (``probe.testbed.demo``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from probe.config.model import Check, Config, Endpoint, Expected, ResolverSpec, Service, Timeouts
from probe.testbed.blackhole import BlackholeListener
from probe.testbed.doh import DohServer
from probe.testbed.fingerprints import BLOCKPAGES
from probe.testbed.middlebox import Blockpage, CensorProxy, Freeze, Pass, Redirect, Reset, Stall, Throttle
from probe.testbed.pki import Flaw, TestCA
from probe.testbed.resolver import (
    Answer,
    DnsServer,
    Drop,
    Inject,
    NoAnswer,
    NxDomain,
    Refused,
    SlowRoundRobin,
)
from probe.testbed.servers import WebServer
from probe.testbed.stun import Respond, StunServer, Swallow, free_udp_port
from probe.vocab import CheckKind, EndpointState

DOMAIN = "msgprobe.test"
RESOLVER_IP = "127.0.0.2"
CONTROL_IP = "127.0.0.3"
GENUINE_IP = "127.0.0.4"
INTERCEPT_IP = "127.0.0.5"
WRONG_NAME_IP = "127.0.0.6"
EXPIRED_IP = "127.0.0.7"
UNKNOWN_CA_IP = "127.0.0.8"
BAD_DER_IP = "127.0.0.9"
FIRST_SERVICE_IP = 10
FORGED_IP = "127.0.255.254"
CONTROL_PEER_IP = "127.0.255.253"  # the demo's control peer (probe.testbed.control_peer)
CANARY = f"canary.{DOMAIN}"
# Modelled on the national Roskomnadzor stub page (OONI fingerprints ooni.ru_0 and ooni.ru_5).
BLOCKPAGE = (
    "<html><head><title>Доступ ограничен</title></head><body>"
    "<p>Доступ к сайту ограничен в соответствии с Федеральными законами от 27.07.2006 № 149-ФЗ "
    "«Об информации, информационных технологиях и о защите информации».</p>"
    '<p>Реестр: <a href="http://eais.rkn.gov.ru/">http://eais.rkn.gov.ru/</a></p>'
    "</body></html>"
)

# A warning page no OONI fingerprint knows: only a control's view of the real page exposes it.
UNKNOWN_PAGE = (
    "<html><head><title>Notice</title></head><body><h1>This resource is unavailable</h1>"
    "<p>Access to the requested resource has been restricted by your provider on the basis "
    "of a decision of the competent authority. Reference 0000-0000.</p>"
    "<p>If you believe this is an error, contact your provider's support service.</p></body></html>"
)

Behaviour = Any  # a rule object of probe.testbed (dns_server or censor_proxy)
SELF = "self"  # an Answer placeholder: the fake service's own address


@dataclass(frozen=True)
class FakeService:
    """One simulated service: what the lying resolver, the control and the middlebox do."""

    name: str
    dns: Behaviour = SELF
    control: Behaviour = SELF
    tls: Behaviour = field(default_factory=Pass)
    http: Behaviour = field(default_factory=Pass)
    checks: tuple[str, ...] = ("dns", "tcp", "tls", "https")  # symbolic, ports filled in
    # genuine | interception | wrong-name | expired | unknown-ca | bad-der | bad-der-duplicate
    backend: str = "genuine"
    addresses: int = 1  # >1: partial-blocking scenarios (rules apply to the last address only)
    tcp: str = "open"  # "open" | "closed" (RST) | "blackhole" (SYN dropped)
    stun: Behaviour = field(default_factory=Respond)  # the UDP relay's rule (probe.testbed.stun)
    state: EndpointState = EndpointState.ACTIVE

    @property
    def host(self) -> str:
        return f"{self.name}.{DOMAIN}"


def _own(rule: Behaviour, ips: list[str]) -> Behaviour:
    """``rule`` with its placeholders filled in for a service at ``ips``.

    ``SELF`` is ``Answer(ips)``; an ``Inject`` without a forged answer gets
    ``FORGED_IP``, without a genuine one ``ips``; a ``SlowRoundRobin``
    without addresses rotates over ``ips``, which must be at least two (a
    rotation over one address would show the probe nothing)."""
    if rule == SELF:
        return Answer(ips)
    if isinstance(rule, Inject):
        forged = [FORGED_IP] if rule.forged is None else rule.forged
        return replace(rule, forged=forged, genuine=ips if rule.genuine is None else rule.genuine)
    if isinstance(rule, SlowRoundRobin) and rule.addresses is None:
        if len(ips) < 2:
            raise ValueError("SlowRoundRobin() rotates over the service's addresses: give it addresses=2")
        return replace(rule, addresses=ips)
    return rule


def _free_common_port(hosts: Sequence[str]) -> int:
    """A port number free on every host given (ports are per address on Linux)."""
    for _ in range(50):
        with socket.socket() as probe_sock:
            probe_sock.bind((hosts[0], 0))
            port = int(probe_sock.getsockname()[1])
        try:
            with contextlib.ExitStack() as stack:
                for host in hosts:
                    s = stack.enter_context(socket.socket())
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port number free on every testbed address")


class LoopbackCensor:
    """A censor, a control resolver and genuine servers on loopback.

    ``await add(FakeService(...))`` returns the catalog ``Service`` pointing at
    it; ``config(services)`` a ``Config`` that measures them.
    """

    def __init__(self, workdir: Path, *, first_ip: int = FIRST_SERVICE_IP, max_services: int = 200) -> None:
        self.workdir = workdir
        self.first_ip = first_ip
        self.max_services = max_services
        self._next = first_ip
        self._stack = contextlib.AsyncExitStack()
        self.ca = TestCA()
        self.interception_ca = TestCA("msgprobe testbed interception CA")
        self.bundle = workdir / "testbed-ca.pem"

    def _ip(self, index: int) -> str:
        return str(ipaddress.ip_address("127.0.0.0") + index)

    async def __aenter__(self) -> LoopbackCensor:
        self.ca.write_bundle(self.bundle)
        hosts = [WRONG_NAME_IP] + [self._ip(self.first_ip + i) for i in range(self.max_services)]
        self.tls_port = _free_common_port(hosts)
        self.http_port = _free_common_port(hosts)
        self.stun_port = free_udp_port(hosts)
        leaf = self.ca.issue([f"*.{DOMAIN}", DOMAIN])
        enter = self._stack.enter_async_context
        self.resolver = await enter(
            DnsServer({CANARY: Answer([GENUINE_IP])}, default=NxDomain(), host=RESOLVER_IP)
        )
        control_leaf = self.ca.issue([CONTROL_IP])
        self.control = await enter(
            DohServer({CANARY: Answer([GENUINE_IP])}, default=NxDomain(), host=CONTROL_IP, leaf=control_leaf)
        )
        self.genuine = await enter(WebServer(GENUINE_IP, leaf=leaf))
        self.neutral_stun = await enter(StunServer(GENUINE_IP))  # the config's calls.stun_controls
        wildcard = [f"*.{DOMAIN}"]
        self.backends = {
            "genuine": self.genuine,
            "interception": await enter(WebServer(INTERCEPT_IP, leaf=self.interception_ca.issue(wildcard))),
            # Listens on the common port: dns-inconsistent answers point straight at it.
            "wrong-name": await enter(
                WebServer(WRONG_NAME_IP, leaf=self.ca.issue(["wrong-name.invalid"]), https_port=self.tls_port)
            ),
            "expired": await enter(WebServer(EXPIRED_IP, leaf=self.ca.issue(wildcard, expired=True))),
            "unknown-ca": await enter(
                WebServer(UNKNOWN_CA_IP, leaf=TestCA("Untrusted Example CA").issue(wildcard))
            ),
            # Reached by the decoy handshake (FakeService(tls=Reset(), backend="bad-der"):
            # the real SNI is reset, the decoy passes) and by certificate inspection
            # (backend="bad-der" alone: verification fails on the broken signature).
            "bad-der": await enter(
                WebServer(BAD_DER_IP, leaf=self.ca.issue_malformed(wildcard, Flaw.NON_ASCII_SAN))
            ),
            "bad-der-duplicate": await enter(
                WebServer(BAD_DER_IP, leaf=self.ca.issue_malformed(wildcard, Flaw.DUPLICATE_EXTENSION))
            ),
        }
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def add(self, fake: FakeService) -> Service:
        if fake.backend not in self.backends:
            raise ValueError(f"unknown backend {fake.backend!r}: one of {', '.join(self.backends)}")
        ips = [self._ip(self._next + i) for i in range(fake.addresses)]
        dns_rule, control_rule = _own(fake.dns, ips), _own(fake.control, ips)  # may refuse: before allocating
        self._next += fake.addresses
        self.resolver.rules[fake.host] = dns_rule
        self.control.rules[fake.host] = control_rule
        for index, ip in enumerate(ips):
            rules_apply = index == len(ips) - 1
            await self._listen(fake, ip, rules_apply)
        checks = self._checks(fake)
        prefixes = tuple(ipaddress.ip_network(f"{ip}/32") for ip in ips)
        endpoint = Endpoint(
            fake.host, checks, fake.state, Expected(prefixes=prefixes), source="probe.testbed"
        )
        return Service(fake.name, fake.name, (endpoint,), (DOMAIN,), Expected(prefixes=prefixes))

    async def add_canary(self, name: str) -> str:
        """A domestic whitelist canary, ``NAME.msgprobe.test``, at an address of its own
        (it counts against ``max_services``): both resolvers answer it and the censor
        passes it to the genuine HTTPS server on ``tls_port``. Returns its host name;
        ``probe.testbed.whitelist.with_canaries`` puts it in a config."""
        service = await self.add(FakeService(name, checks=("dns", "tcp", "tls")))
        return service.endpoints[0].host

    async def _listen(self, fake: FakeService, ip: str, rules_apply: bool) -> None:
        enter = self._stack.enter_async_context
        if "stun" in fake.checks:  # UDP: whatever TCP does at this address
            await enter(StunServer(ip, self.stun_port, fake.stun if rules_apply else Respond()))
        if fake.tcp == "closed":
            return  # nothing listens: the kernel answers SYN with RST
        if fake.tcp == "blackhole":
            await enter(BlackholeListener(ip, port=self.tls_port))
            return
        backend = self.backends[fake.backend]
        tls_rules = {fake.host: fake.tls} if rules_apply else {}
        http_rules = {fake.host: fake.http} if rules_apply else {}
        await enter(
            CensorProxy(ip, self.tls_port, backend=(backend.host, backend.https_port), sni_rules=tls_rules)
        )
        await enter(
            CensorProxy(
                ip, self.http_port, backend=(self.genuine.host, self.genuine.http_port), host_rules=http_rules
            )
        )

    def _checks(self, fake: FakeService) -> tuple[Check, ...]:
        out: list[Check] = []
        for c in fake.checks:
            if c == "dns":
                out.append(Check(CheckKind.DNS))
            elif c == "tcp":
                out.append(Check(CheckKind.TCP, port=self.tls_port))
            elif c == "tls":
                out.append(Check(CheckKind.TLS, port=self.tls_port))
            elif c == "https":
                out.append(Check(CheckKind.HTTP, url=f"https://{fake.host}:{self.tls_port}/"))
            elif c == "http":
                out.append(Check(CheckKind.HTTP, url=f"http://{fake.host}:{self.http_port}/"))
            elif c.startswith("http:/"):
                out.append(Check(CheckKind.HTTP, url=f"http://{fake.host}:{self.http_port}{c[5:]}"))
            elif c.startswith("https:/"):
                out.append(Check(CheckKind.HTTP, url=f"https://{fake.host}:{self.tls_port}{c[6:]}"))
            elif c == "throttle":
                out.append(Check(CheckKind.THROTTLE, port=self.tls_port))
            elif c == "freeze":
                out.append(Check(CheckKind.FREEZE, port=self.tls_port))
            elif c == "stun":
                out.append(Check(CheckKind.STUN, port=self.stun_port, url=f"{fake.host}:{self.stun_port}"))
            elif c == "http_post":
                out.append(Check(CheckKind.HTTP_POST, url=f"http://{fake.host}:{self.http_port}/api"))
            else:
                raise ValueError(f"unknown symbolic check {c!r}")
        return tuple(out)

    async def retarget(self, services: Sequence[Service]) -> list[Service]:
        """Point a real catalog at this censor, never at the real services.

        Each host name resolves (at both resolvers) to a fresh loopback
        address with a clean middlebox; ports are mapped onto the testbed's
        two (80 and plain-HTTP URLs to the HTTP port, everything else to the
        TLS port). IP-literal endpoints are skipped: rewriting them would
        measure nothing of the catalog.
        """
        names = sorted({e.host for s in services for e in s.endpoints if not e.is_ip})
        # The genuine side of the catalog needs a certificate that names it.
        self.backends["catalog"] = await self._stack.enter_async_context(
            WebServer(GENUINE_IP, leaf=self.ca.issue(names or [DOMAIN]))
        )
        out = []
        for service in services:
            endpoints = []
            for e in service.endpoints:
                if e.is_ip:
                    continue
                ip = self._ip(self._next)
                self._next += 1
                self.resolver.rules[e.host] = Answer([ip])
                self.control.rules[e.host] = Answer([ip])
                await self._listen(
                    FakeService(e.host.replace(".", "-"), backend="catalog"), ip, rules_apply=False
                )
                if any(c.kind == CheckKind.STUN for c in e.checks):  # a relay that answers
                    await self._stack.enter_async_context(StunServer(ip, self.stun_port))
                checks = tuple(self._retargeted(c) for c in e.checks)
                expected = Expected(prefixes=(ipaddress.ip_network(f"{ip}/32"),))
                endpoints.append(replace(e, checks=checks, expected=expected))
            if endpoints:
                out.append(replace(service, endpoints=tuple(endpoints), expected=Expected()))
        return out

    def _retargeted(self, check: Check) -> Check:
        if check.kind in (CheckKind.TCP, CheckKind.TLS):
            return replace(check, port=self.http_port if check.port == 80 else self.tls_port)
        if check.kind is CheckKind.DNS:
            return check
        if check.kind == CheckKind.STUN:
            return replace(check, port=self.stun_port, url=f"{check.url.rpartition(':')[0]}:{self.stun_port}")
        parts = urlsplit(check.url)
        port = self.tls_port if parts.scheme == "https" else self.http_port
        return replace(check, url=parts._replace(netloc=f"{parts.hostname}:{port}").geturl())

    def config(self, services: Sequence[Service], **overrides: Any) -> Config:
        host, port = self.resolver.address
        base = Config(
            path=None,
            services=tuple(services),
            interval=10.0,
            jitter=0.0,
            timeouts=Timeouts(dns=1.0, connect=1.0, tls=1.5, http=2.0, cycle=60.0),
            concurrency=64,
            confirm=2,
            resolvers=(ResolverSpec(f"{host}:{port}", "udp", host, port),),
            control_resolvers=(
                ResolverSpec(self.control.url, "doh", CONTROL_IP, self.control.port, self.control.url),
            ),
            canary_name=CANARY,
            injection_window=0.05,
            ca_bundle=self.bundle,
            # The built-in fingerprints, then the testbed's overlay naming its
            # interception CA: test data stays out of the shipped blockpages.yaml.
            blockpages=BLOCKPAGES,
            test_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        )
        base = replace(base, calls=replace(base.calls, stun_controls=(self.neutral_stun.address,)))
        return replace(base, **overrides)


# What `msgprobe demo` shows: one scenario per blocking method it can prove
# without root, the two TCP failures that need a peer control, a clean
# service and a dead one. deploy/ alert tests rely on these names.
DEMO: tuple[FakeService, ...] = (
    FakeService("clean-messenger"),
    FakeService("dns-nxdomain", dns=NxDomain()),
    FakeService("dns-no-answer", dns=NoAnswer()),
    FakeService("dns-refused", dns=Refused()),
    FakeService("dns-timeout", dns=Drop()),
    FakeService("dns-bogon", dns=Answer(["10.10.34.35"])),
    FakeService("dns-inconsistent", dns=Answer([WRONG_NAME_IP])),
    FakeService("tcp-refused", tcp="closed", checks=("dns", "tcp", "tls")),
    FakeService("tcp-timeout", tcp="blackhole", checks=("dns", "tcp", "tls")),
    FakeService("tls-reset", tls=Reset()),
    FakeService("tls-timeout", tls=Stall()),
    FakeService("tls-mitm", backend="interception"),
    FakeService("http-reset", http=Reset(), checks=("dns", "tcp", "http")),
    FakeService("http-timeout", http=Stall(), checks=("dns", "tcp", "http")),
    FakeService("http-blockpage", http=Blockpage(BLOCKPAGE), checks=("dns", "tcp", "http")),
    FakeService(
        "http-redirect",
        http=Redirect("http://blocked.isp.test/warning?url=msgprobe"),
        checks=("dns", "tcp", "http"),
    ),
    FakeService("http-diff", http=Blockpage(UNKNOWN_PAGE), checks=("dns", "tcp", "http")),
    FakeService("website-down", dns=NxDomain(), control=NxDomain()),
    FakeService("calls-blocked", stun=Swallow(), checks=("dns", "stun")),
    FakeService("tcp-freeze", tls=Freeze(16384), checks=("dns", "tcp", "tls", "freeze")),
    FakeService("throttled", tls=Throttle(32_000, 16_384), checks=("dns", "tls", "https:/huge", "throttle")),
)
