"""``tcp.freeze`` on real sockets: the loopback censor's middlebox freezes a
TLS flow after 16 KB each way (``Freeze(16384)``, no reset), and hostile
servers try to push the transfer out of its bounds.

Blocked needs a witness that carried the same transfer: the control peer
(outside the censor) or a domestic canary measured from here. Without one
it is ``unreachable`` "stalled after N bytes"; a canary that froze too makes
it the vantage's freeze, never a block; a reset is never a freeze.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from probe.config.model import Check, Config, Endpoint, Service, Timeouts
from probe.measure import transfer as transfer_module
from probe.measure.budget import ByteBudget
from probe.measure.toolkit import open_toolkit
from probe.measure.transfer import RESERVATION, RESPONSE_ROOM, TARGET
from probe.model import EndpointResult, TransferObservation
from probe.runner.cycle import CycleResult, run_cycle
from probe.testbed.control_peer import control_peer
from probe.testbed.middlebox import Freeze
from probe.testbed.scenarios import FakeService, LoopbackCensor
from probe.vocab import CheckKind, Failure, Method, Purpose, Status
from tests.e2e.harness import FINGERPRINTS, by_service

# The methods these tests prove (the registry test asks that every method is shown somewhere).
PROVEN = {Method.TCP_FREEZE}
CHECKS = ("dns", "tcp", "tls", "freeze")
FAKES = [
    FakeService("tcp-freeze", tls=Freeze(16384), checks=CHECKS),
    FakeService("freeze-clean", checks=CHECKS),
    # The HTTPS check takes the port's connection: the transfer dials and handshakes its own.
    FakeService("freeze-after-https", tls=Freeze(16384), checks=("dns", "tcp", "https", "freeze")),
]
COUNTRY = "XX"


def _transfers(result: EndpointResult, purpose: Purpose = Purpose.CHECK) -> list[TransferObservation]:
    return [
        o for o in result.observations.other if isinstance(o, TransferObservation) and o.purpose is purpose
    ]


async def _censored(*, peer: bool, canary: Freeze | None = None) -> CycleResult:
    """One cycle over FAKES; with the control peer, and/or a canary (frozen with ``canary``)."""
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=len(FAKES) + 1) as bed:
            config = bed.config([await bed.add(f) for f in FAKES], confirm=1)
            if canary is not None:
                home = await bed.add(FakeService("home", tls=canary, checks=CHECKS))
                config = replace(
                    config,
                    country=COUNTRY,
                    whitelist_canaries=((COUNTRY, (home.endpoints[0].host,)),),
                    whitelist_canary_port=bed.tls_port,
                )
            async with contextlib.AsyncExitStack() as stack:
                if peer:
                    served = await stack.enter_async_context(control_peer(bed, config, Path(workdir)))
                    config = replace(config, control_peers=(served,))
                kit = await stack.enter_async_context(open_toolkit(config))
                return await run_cycle(kit, FINGERPRINTS, config.services)


@pytest.fixture(scope="module")
def with_peer() -> CycleResult:
    return asyncio.run(_censored(peer=True))


def test_a_freeze_with_a_control_peer_that_carries_it_is_blocked(with_peer: CycleResult) -> None:
    result = by_service(with_peer)["tcp-freeze"]
    v = result.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.TCP_FREEZE), v.evidence
    assert [w.kind for w in v.witnesses] == ["control"], v.witnesses
    assert "stalled after" in v.evidence and "no reset" in v.evidence and "carried" in v.evidence
    (here,) = _transfers(result)
    assert here.stalled and here.failure is Failure.TIMEOUT
    # The middlebox lets 16 KB through each way: the cut lands there, give or take a request.
    assert 12_000 <= here.sent <= 16_384 + 4_096 and here.received <= 16_384, here
    (row,) = [r for r in result.checks if r.check.startswith("freeze:")]
    assert not row.ok and row.detail["stalled"] is True
    (answer,) = result.observations.controls
    assert answer.summary is not None
    (there,) = answer.summary.transfer
    assert there.sent >= TARGET and there.received >= TARGET and not there.stalled


def test_after_an_https_check_the_transfer_has_a_tls_connection_of_its_own(with_peer: CycleResult) -> None:
    result = by_service(with_peer)["freeze-after-https"]
    v = result.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.TCP_FREEZE), v.evidence
    (o,) = _transfers(result)
    assert o.sni == "freeze-after-https.msgprobe.test" and o.stalled
    connects = [
        e for e in result.observations.trace if e.operation == "connect" and e.purpose is Purpose.CHECK
    ]
    assert len(connects) == 2 and o.transaction == connects[1].transaction


def test_the_clean_mirror_carries_the_whole_transfer(with_peer: CycleResult) -> None:
    result = by_service(with_peer)["freeze-clean"]
    assert result.verdict.status is Status.OK, result.verdict
    (o,) = _transfers(result)
    assert o.failure is None and not o.stalled and o.ended == "target reached"
    assert TARGET <= o.sent <= TARGET + 4_096 and TARGET <= o.received <= TARGET + RESPONSE_ROOM
    (row,) = [r for r in result.checks if r.check.startswith("freeze:")]
    assert row.ok and row.detail["sent"] == o.sent


def test_without_a_witness_a_freeze_is_unreachable_stalled_after() -> None:
    v = by_service(asyncio.run(_censored(peer=False)))["tcp-freeze"].verdict
    assert (v.status, v.method, v.failure) == (Status.UNREACHABLE, None, Failure.TIMEOUT), v
    assert "stalled after" in v.evidence and v.witnesses == ()


def test_a_domestic_canary_that_carries_the_transfer_is_a_witness() -> None:
    cycle = asyncio.run(_censored(peer=False, canary=Freeze(10**9)))
    result = by_service(cycle)["tcp-freeze"]
    v = result.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.TCP_FREEZE), v.evidence
    assert [w.kind for w in v.witnesses] == ["canary"] and "home.msgprobe.test" in v.witnesses[0].detail
    (canary,) = _transfers(result, Purpose.CANARY)
    assert canary.sent >= TARGET and not canary.stalled
    # The clean service never froze: no canary was spent on it.
    assert _transfers(by_service(cycle)["freeze-clean"], Purpose.CANARY) == []


def test_a_canary_that_froze_too_is_the_vantages_freeze_not_a_block() -> None:
    v = by_service(asyncio.run(_censored(peer=True, canary=Freeze(16384))))["tcp-freeze"].verdict
    assert v.status is Status.UNREACHABLE and v.method is None, v
    assert "froze too" in v.evidence and "not this service alone" in v.evidence


# Hostile and odd servers, each an IP endpoint on 127.0.0.1 speaking raw bytes.

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PAGE = b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nContent-Type: text/html\r\n\r\n" + b"x" * 4096


@dataclass
class Counted:
    """Bytes a server read and wrote, over every connection."""

    received: int = 0
    sent: int = 0


async def _requests(reader: asyncio.StreamReader, counted: Counted) -> AsyncIterator[bytes]:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        counted.received += len(head)
        yield head


def _send(writer: asyncio.StreamWriter, data: bytes, counted: Counted) -> None:
    counted.sent += len(data)
    writer.write(data)


def _reset_after(limit: int) -> Callable[[Counted], Handler]:
    def make(counted: Counted) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            async for _ in _requests(reader, counted):
                if counted.received >= limit:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()  # RST, as a censor that resets after N bytes would
                    return
                _send(writer, PAGE, counted)
                await writer.drain()

        return handler

    return make


def _endless(counted: Counted) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader, counted):
            _send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n", counted)
            with contextlib.suppress(ConnectionError):
                while True:  # a 1 GB body: the probe must stop reading on its own
                    _send(writer, b"y" * 65536, counted)
                    await writer.drain()

    return handler


def _garbage(counted: Counted) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader, counted):
            _send(writer, b"\x16\x03\x01 not http at all \xff\xfe\r\n\r\n" * 64, counted)
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    return handler


def _endless_head(counted: Counted) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader, counted):
            _send(writer, b"HTTP/1.1 200 OK\r\nX-Long: ", counted)
            with contextlib.suppress(ConnectionError):
                while True:  # a header line that never ends
                    _send(writer, b"z" * 4096, counted)
                    await writer.drain()

    return handler


def _trickle(counted: Counted) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader, counted):
            _send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", counted)
            with contextlib.suppress(ConnectionError):
                while True:  # a byte well inside the stall timeout, forever: slowloris
                    _send(writer, b"s", counted)
                    await writer.drain()
                    await asyncio.sleep(0.1)

    return handler


@contextlib.asynccontextmanager
async def _server(make: Callable[[Counted], Handler]) -> AsyncIterator[tuple[int, Counted]]:
    counted = Counted()
    handler = make(counted)
    running: set[asyncio.Task[None]] = set()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], counted
    finally:
        server.close()
        for task in running:  # an endless or trickling handler outlives its client otherwise
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def _config(ports: dict[str, int]) -> Config:
    services = tuple(
        Service(
            name,
            name,
            (
                Endpoint(
                    "127.0.0.1",
                    (Check(CheckKind.TCP, port=port), Check(CheckKind.FREEZE, port=port)),
                    source="tests/e2e/test_freeze",
                ),
            ),
        )
        for name, port in ports.items()
    )
    return Config(
        path=None,
        services=services,
        confirm=1,
        timeouts=Timeouts(dns=1.0, connect=2.0, tls=2.0, http=3.0, cycle=60.0),
        test_networks=(ipaddress.ip_network("127.0.0.0/8"),),
    )


async def _hostile(
    makes: dict[str, Callable[[Counted], Handler]], budget: ByteBudget | None = None
) -> tuple[CycleResult, dict[str, Counted]]:
    async with contextlib.AsyncExitStack() as stack:
        served = {name: await stack.enter_async_context(_server(make)) for name, make in makes.items()}
        config = _config({name: port for name, (port, _) in served.items()})
        async with open_toolkit(config, budget=budget) as kit:
            cycle = await run_cycle(kit, FINGERPRINTS, config.services)
        return cycle, {name: counted for name, (_, counted) in served.items()}


def test_a_reset_is_never_a_freeze() -> None:
    cycle, _ = asyncio.run(_hostile({"reset": _reset_after(16_000)}))
    result = by_service(cycle)["reset"]
    v = result.verdict
    assert v.method is not Method.TCP_FREEZE and v.status is Status.UNREACHABLE, v
    assert v.failure == Failure.CONNECTION_RESET and "not a freeze" in v.evidence
    (o,) = _transfers(result)
    assert not o.stalled and o.received >= 3 * len(PAGE)


def test_hostile_servers_cannot_push_the_transfer_out_of_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The slowloris server is cut by the transfer's deadline; a short one keeps the test short.
    monkeypatch.setattr(transfer_module, "MAX_DURATION", 3.0)
    makes: dict[str, Callable[[Counted], Handler]] = {
        "endless": _endless,
        "garbage": _garbage,
        "endless-head": _endless_head,
        "trickle": _trickle,
    }
    cycle, counted = asyncio.run(_hostile(makes))
    by = by_service(cycle)
    for name in makes:
        (o,) = _transfers(by[name])
        assert o.received <= TARGET + RESPONSE_ROOM and o.sent <= TARGET + 4_096, (name, o)
        assert counted[name].received <= TARGET + 4_096, name
        assert o.sent + o.received <= o.charged <= RESERVATION, (name, o)
        assert by[name].verdict.method is not Method.TCP_FREEZE, (name, by[name].verdict)
        assert not o.stalled, (name, o)
    assert _transfers(by["endless"])[0].ended == "response over the bound"
    assert _transfers(by["garbage"])[0].failure is Failure.UNKNOWN
    assert _transfers(by["endless-head"])[0].failure is Failure.UNKNOWN
    trickle = _transfers(by["trickle"])[0]
    assert trickle.failure is Failure.TIMEOUT and trickle.ended == "did not finish within 3 s"


def test_the_byte_budget_refuses_what_it_cannot_cover() -> None:
    # Room for one transfer's reservation, not two: the second endpoint's does not run at all.
    # A whole transfer costs ~82 KB: whichever runs first, the other cannot be covered after it.
    budget = ByteBudget(RESERVATION + 40_000)
    makes = {"first": _reset_after(10**9), "second": _reset_after(10**9)}
    cycle, counted = asyncio.run(_hostile(makes, budget))
    observations = [o for r in cycle.results for o in _transfers(r)]
    ran = [o for o in observations if o.ended != "byte budget spent"]
    refused = [o for o in observations if o.ended == "byte budget spent"]
    assert len(ran) == 1 and len(refused) == 1, observations
    assert refused[0].sent == refused[0].received == 0
    on_the_wire = sum(c.received + c.sent for c in counted.values())
    assert on_the_wire <= budget.limit and budget.used <= budget.limit
    # What it cost (the kernel's count of what arrived) was charged, the rest given back.
    assert budget.used == ran[0].charged >= ran[0].sent + ran[0].received
    rows = [row for r in cycle.results for row in r.checks if row.check.startswith("freeze:")]
    assert sorted(str(row.detail.get("ended")) for row in rows) == ["byte budget spent", "target reached"]


async def _two_cycles() -> tuple[CycleResult, CycleResult]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-test-") as workdir:
        async with LoopbackCensor(Path(workdir), max_services=2) as bed:
            fakes = [FakeService("tcp-freeze", tls=Freeze(16384), checks=CHECKS), FAKES[1]]
            config = bed.config([await bed.add(f) for f in fakes], confirm=1)
            async with open_toolkit(config) as kit:  # one toolkit: one schedule, as the daemon's
                first = await run_cycle(kit, FINGERPRINTS, config.services)
                second = await run_cycle(kit, FINGERPRINTS, config.services)
            return first, second


def test_a_transfer_is_not_repeated_every_cycle_and_its_last_one_stands_in() -> None:
    first, second = asyncio.run(_two_cycles())
    for name in ("tcp-freeze", "freeze-clean"):
        before, after = by_service(first)[name], by_service(second)[name]
        assert after.verdict.status is before.verdict.status, (name, after.verdict)
        (reused,) = _transfers(after)
        assert "s ago (a transfer runs at most every 6 h here)" in reused.ended
        assert (reused.sent, reused.received) == (_transfers(before)[0].sent, _transfers(before)[0].received)
        # Nothing moved in the second cycle: no transfer operation in its trace.
        assert not [e for e in after.observations.trace if e.operation.value == "transfer"], name
