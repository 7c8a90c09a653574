"""A control peer on loopback, measuring a LoopbackCensor, asked by a plain aiohttp client.

Layout (the censor's addresses, see probe.testbed.scenarios):

    127.0.0.10  "clean": a fake service, genuine behind a passing middlebox
    127.0.0.11  a counting relay to 127.0.0.10 (the "probe's answer" for clean,
                and the IP-literal endpoint of service "relayed")
    127.0.0.12  a counting listener that accepts and never answers
                (the IP-literal endpoint of service "slow": TLS stalls)
    127.0.0.77  the client's source address: it must never appear in a log

Every packet a test causes is counted somewhere: DNS at the censor's
resolver (``DnsServer.queries``), connections at the two listeners; a
hostname endpoint is always resolved before anything connects, so a refusal
that leaked would show in ``traffic()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from probe.config.model import Check, Config, Endpoint, Expected, Service
from probe.control import tokens
from probe.control.api import PATH
from probe.control.metrics import ControlMetrics
from probe.control.server import Control, make_app, running
from probe.export.web import bound_addresses
from probe.measure.toolkit import open_toolkit
from probe.testbed.connections import Tasks, cancel_all, tracked
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import CheckKind

CLIENT_IP = "127.0.0.77"
CLEAN_IP = "127.0.0.10"
RELAY_IP = "127.0.0.11"
STALL_IP = "127.0.0.12"
TOKENS = {"probe-a": "token-of-probe-a-0123456789abcdef", "probe-b": "token-of-probe-b-fedcba9876543210"}


@dataclass
class CountingListener:
    """Counts accepted connections; relays them to ``backend``, or (None) swallows them silently."""

    host: str
    port: int
    backend: tuple[str, int] | None = None
    accepted: int = 0
    _tasks: Tasks = field(default_factory=set)

    async def __aenter__(self) -> CountingListener:
        self._server = await asyncio.start_server(self._client, self.host, self.port, backlog=1024)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await cancel_all(self._tasks)
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        async with tracked(self._tasks, writer):
            if self.backend is None:
                while await reader.read(65536):
                    pass
                return
            up_reader, up_writer = await asyncio.open_connection(*self.backend)

            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(OSError):
                    while chunk := await src.read(65536):
                        dst.write(chunk)
                        await dst.drain()
                with contextlib.suppress(OSError):
                    dst.write_eof()

            try:
                await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
            finally:
                up_writer.close()


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Bed:
    censor: LoopbackCensor
    config: Config
    control: Control
    url: str
    session: aiohttp.ClientSession
    relay: CountingListener
    staller: CountingListener
    clean: Service
    client_ports: set[int] = field(default_factory=set)  # as the control saw them

    @property
    def metrics(self) -> ControlMetrics:
        return self.control.metrics

    def traffic(self) -> tuple[int, int, int]:
        """DNS queries at the resolver, connections at the relay and at the silent listener."""
        return sum(self.censor.resolver.queries.values()), self.relay.accepted, self.staller.accepted

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    async def post(
        self,
        body: Any = None,
        *,
        token: str | None = TOKENS["probe-a"],
        raw: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.session.post(self.url + PATH, data=data, headers=sent) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return Reply(resp.status, parsed, dict(resp.headers))

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as resp:
            return resp.status, await resp.text()


def catalog(censor: LoopbackCensor, clean: Service) -> list[Service]:
    port = censor.tls_port

    def ip_service(name: str, ip: str, checks: tuple[Check, ...]) -> Service:
        prefixes = (ipaddress.ip_network(f"{ip}/32"),)
        endpoint = Endpoint(ip, checks, expected=Expected(prefixes=prefixes), source="tests.control")
        return Service(name, name, (endpoint,))

    return [
        clean,
        ip_service("relayed", RELAY_IP, (Check(CheckKind.TCP, port=port),)),
        ip_service("slow", STALL_IP, (Check(CheckKind.TCP, port=port), Check(CheckKind.TLS, port=port))),
    ]


def write_tokens(path: Path) -> Path:
    path.write_text(
        "# probes of this control\n" + "".join(f"{tokens.line_for(n, t)}\n" for n, t in TOKENS.items())
    )
    return path


@contextlib.asynccontextmanager
async def control_bed(
    *,
    max_in_flight: int = 16,
    rate_per_minute: int = 10_000,
    clock: Callable[[], float] | None = None,
    connections: int = 100,
    middlewares: Sequence[Middleware] = (),
    **overrides: Any,
) -> AsyncIterator[Bed]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-control-") as workdir:
        # Three addresses from the censor: clean's, and two free ones for our listeners
        # (the censor made sure its two port numbers are free on all three).
        async with LoopbackCensor(Path(workdir), max_services=3) as censor:
            clean = await censor.add(FakeService("clean"))
            assert clean.expected.prefixes == (ipaddress.ip_network(f"{CLEAN_IP}/32"),)
            config = censor.config(catalog(censor, clean), **overrides)
            relay = CountingListener(RELAY_IP, censor.tls_port, backend=(CLEAN_IP, censor.tls_port))
            staller = CountingListener(STALL_IP, censor.tls_port)
            token_file = tokens.TokenFile(write_tokens(Path(workdir) / "tokens"))
            async with relay, staller, open_toolkit(config) as kit:
                extra = {"clock": clock} if clock is not None else {}
                control = Control(
                    config,
                    kit,
                    token_file,
                    max_in_flight=max_in_flight,
                    rate_per_minute=rate_per_minute,
                    **extra,
                )
                app = make_app(control, middlewares=middlewares)
                ports: set[int] = set()

                async def peer(request: web.Request, _: web.StreamResponse) -> None:
                    # The test's own note of the client's source port (never logged).
                    ports.add(request.transport.get_extra_info("peername")[1] if request.transport else 0)

                app.on_response_prepare.append(peer)
                async with running(app, "127.0.0.1:0") as runner:
                    (address,) = bound_addresses(runner)
                    connector = aiohttp.TCPConnector(
                        local_addr=(CLIENT_IP, 0), limit=connections, family=socket.AF_INET
                    )
                    async with aiohttp.ClientSession(connector=connector) as session:
                        yield Bed(
                            censor,
                            config,
                            control,
                            f"http://{address}",
                            session,
                            relay,
                            staller,
                            clean,
                            ports,
                        )
