"""A control peer for the loopback censor: ``msgprobe control``'s own server,
standing in an uncensored network.

On one machine every address is local, so "a network the censor does not
control" is simulated by routing: the peer's packets to any fake service's
address reach the genuine servers, as packets from abroad would reach the
real service while the probe's go through the censor (``tcp.connect``'s
``route``). Its resolver is the truthful control DoH server. It answers with
the same API, policy, bounds and summaries as a real peer: the demo then
proves ``tcp.timeout``, ``tcp.refused`` and ``http.diff``. It serves HTTPS
with a leaf of the testbed's CA (the probe gets the bundle in its
``ControlPeer``), as a real peer must for the throttle confirmation (T3),
whose transfers reach it with any SNI.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from probe.config.model import Config, ControlPeer, Service, is_ip_literal
from probe.control import tokens
from probe.control.server import Control, make_app
from probe.export.web import bound_addresses
from probe.measure.toolkit import Resources, open_toolkit
from probe.testbed.scenarios import CONTROL_PEER_IP, GENUINE_IP, LoopbackCensor


@contextlib.asynccontextmanager
async def control_peer(bed: LoopbackCensor, config: Config, workdir: Path) -> AsyncIterator[ControlPeer]:
    """Serve a control peer for ``config``'s services; yield the probe's view of it."""
    peer_config = replace(config, resolvers=config.control_resolvers, control_peers=())
    served: Sequence[Service] = peer_config.services
    addresses = {str(n.network_address) for s in served for e in s.endpoints for n in e.expected.prefixes}
    addresses |= {e.host for s in served for e in s.endpoints if is_ip_literal(e.host)}
    genuine = bed.genuine
    route = {
        (address, port): (GENUINE_IP, to)
        for address in addresses
        for port, to in ((bed.tls_port, genuine.https_port), (bed.http_port, genuine.http_port))
    }
    token_store = workdir / "control-tokens"
    token = tokens.add(token_store, "demo-probe")
    token_file = workdir / "control-token"
    token_file.write_text(token + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    neutral = bed.neutral_stun.address
    udp_route = {(address, bed.stun_port): neutral for address in addresses}
    resources = replace(Resources.create(peer_config), route=route, udp_route=udp_route)
    leaf = bed.ca.issue([CONTROL_PEER_IP])
    async with open_toolkit(peer_config, resources=resources) as kit:
        control = Control(peer_config, kit, tokens.TokenFile(token_store))
        # No access log: it prints peer addresses (as ``probe.control.server.running``).
        runner = web.AppRunner(make_app(control), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, CONTROL_PEER_IP, 0, ssl_context=leaf.server_context()).start()
            address = bound_addresses(runner)[0]
            yield ControlPeer(f"https://{address}", token_file, ca_bundle=bed.bundle)
        finally:
            await runner.cleanup()
