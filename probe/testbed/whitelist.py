"""A white-list censor on loopback: only the domestic canaries get through.

What the mobile white lists of 2025–2026 do (research controls-throttling.md
C, "Mobile white lists"): only listed SNI and CIDR pass, the rest goes
unanswered, so every foreign service *and every foreign control* fails and
the vantage reads as offline unless a listed, domestic service is measured
as a positive control. Here:

- the canaries (``LoopbackCensor.add_canary``: ``max.msgprobe.test``,
  ``ya.msgprobe.test``, the stand-ins of ``max.ru`` and ``ya.ru``) resolve
  and pass to the genuine HTTPS server, as listed services do;
- every other service resolves truthfully (the domestic resolver works) but
  its addresses drop every SYN, on both testbed ports, and every datagram to
  its call relay (a CIDR white list);
- the control resolver and the control peer are refused (RST) by the
  censor: a drop would read the same to the regime rule, and only make the
  demo wait out the control timeouts. The neutral STUN server, foreign too,
  gets its datagrams dropped.

``with_canaries`` puts canaries into any testbed config (the ordinary demo
measures them too, and reads ``online``); ``whitelist_network`` builds the
whole white-listed network for ``msgprobe demo --regime whitelist``.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

from probe.config.model import Config, ControlPeer, ResolverSpec, Service
from probe.testbed.blackhole import BlackholeListener, ClosedPort
from probe.testbed.scenarios import CONTROL_IP, CONTROL_PEER_IP, FakeService, LoopbackCensor
from probe.testbed.stun import StunServer, Swallow

COUNTRY = "RU"  # the regime this simulates; the canaries stand in for RU's built-in ones
CANARIES = ("max", "ya")


def with_canaries(
    config: Config, bed: LoopbackCensor, hosts: Sequence[str], country: str = COUNTRY
) -> Config:
    """``config`` measuring ``hosts`` (from ``bed.add_canary``) as the vantage's canaries."""
    return replace(
        config,
        country=country,
        whitelist_canaries=((country, tuple(hosts)),),
        whitelist_canary_port=bed.tls_port,
    )


async def add_unlisted(bed: LoopbackCensor, fake: FakeService, stack: contextlib.AsyncExitStack) -> Service:
    """``fake``'s name and checks, off the white list: truthful DNS, every SYN and datagram dropped."""
    unlisted = FakeService(fake.name, checks=fake.checks, tcp="blackhole", stun=Swallow(), state=fake.state)
    service = await bed.add(unlisted)
    for endpoint in service.endpoints:
        for prefix in endpoint.expected.prefixes:
            # bed.add black-holes the TLS port; the plain-HTTP port is dropped too.
            address = str(ipaddress.ip_network(prefix).network_address)
            await stack.enter_async_context(BlackholeListener(address, port=bed.http_port))
    return service


async def _refused_controls(
    stack: contextlib.AsyncExitStack, workdir: Path
) -> tuple[ResolverSpec, ControlPeer]:
    """A control resolver and a control peer whose connections the censor resets."""
    doh = await stack.enter_async_context(ClosedPort(CONTROL_IP))
    peer = await stack.enter_async_context(ClosedPort(CONTROL_PEER_IP))
    url = f"https://{CONTROL_IP}:{doh.port}/dns-query"
    token_file = workdir / "whitelist-control-token"
    token_file.write_text("never-sent-anywhere\n", encoding="utf-8")
    token_file.chmod(0o600)
    resolver = ResolverSpec(url, "doh", CONTROL_IP, doh.port, url)
    return resolver, ControlPeer(f"http://{CONTROL_PEER_IP}:{peer.port}", token_file)


@contextlib.asynccontextmanager
async def whitelist_network(
    bed: LoopbackCensor, fakes: Sequence[FakeService], workdir: Path
) -> AsyncIterator[Config]:
    """Every ``fake`` off the white list, the canaries on it, the controls refused.

    ``bed`` needs room for ``len(fakes) + len(CANARIES)`` services."""
    async with contextlib.AsyncExitStack() as stack:
        services = [await add_unlisted(bed, fake, stack) for fake in fakes]
        hosts = [await bed.add_canary(name) for name in CANARIES]
        resolver, peer = await _refused_controls(stack, workdir)
        neutral = await stack.enter_async_context(StunServer(CONTROL_IP, rule=Swallow()))
        config = bed.config(services, control_resolvers=(resolver,), control_peers=(peer,))
        calls = replace(config.calls, stun_controls=(neutral.address,))
        yield with_canaries(replace(config, calls=calls), bed, hosts)
