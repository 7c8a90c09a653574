"""The fleet load test's hand-made remote write (bench/fleet/wire.py,
catalog.py) is what the real receivers decode: a WriteRequest in a literal-only
snappy block, sent to a real victoria-metrics and a real Prometheus
remote-write receiver on loopback, and read back through their query APIs.
If the encoding were off, the fleet figures would measure rejected requests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.fleet import catalog, wire
from bench.fleet.store import Writer
from tests.conftest import require_tool
from tests.deploy.live_stack import WRITTEN, Stack, free_port, prometheus_central, wait_for
from tests.deploy.victoria_stack import victoria_args

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("n", [0, 1, 60, 61, 255, 256, 257, 65536, 65537, 1 << 24, (1 << 24) + 1])
def test_snappy_literal_lengths(n: int) -> None:
    block = wire.snappy_block(b"x" * n)
    # The uncompressed length, then one literal: tag byte, then 0-4 bytes of length-1.
    head = wire.varint(n)
    assert block.startswith(head) and block.endswith(b"x" * n)
    tag = block[len(head) : len(block) - n]
    if n == 0:
        assert tag == b""
    elif n <= 60:
        assert tag == bytes([(n - 1) << 2])
    else:
        size = (tag[0] >> 2) - 59
        assert tag[0] & 3 == 0 and len(tag) == 1 + size
        assert int.from_bytes(tag[1:], "little") == n - 1


def test_varints() -> None:
    assert wire.varint(0) == b"\x00" and wire.varint(127) == b"\x7f" and wire.varint(300) == b"\xac\x02"
    assert len(wire.varint(int(time.time() * 1000))) == len(catalog.TIME_HOLE)


@pytest.fixture(scope="module", params=["victoria-metrics", "prometheus"])
def receiver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp(f"wire-{request.param}")
    stack = Stack(workdir)
    try:
        if request.param == "victoria-metrics":
            port = free_port()
            stack.central_url = f"http://127.0.0.1:{port}"
            vm = stack.start("vm", victoria_args(require_tool("victoria-metrics"), workdir / "vm", port))
            stack.wait_ready(vm, f"{stack.central_url}/health")
        else:
            _, ready = prometheus_central(require_tool("prometheus"))(stack)
            ready()
        yield stack
    finally:
        stack.close()


def _settle(stack: Stack, check: Callable[[], list[str]]) -> None:
    problems = wait_for(check, 30, poll=0.5)
    assert not problems, "\n".join(problems) + "\n" + stack.logs()


def test_a_vantage_of_the_catalog_arrives_whole(receiver: Stack) -> None:
    template = catalog.template(frozenset({"telegram"}))
    now_ms = int(time.time() * 1000)
    writer = Writer(int(receiver.central_url.rsplit(":", 1)[1]))
    try:
        body = template.for_vantage("fleet-0007", "XQ", "4200000007")
        writer.send(catalog.for_round(body, now_ms - 120_000, 41.0))
        writer.send(catalog.for_round(body, now_ms, 42.0))
    finally:
        writer.close()
    identity = '{vantage="fleet-0007", country="XQ", asn="4200000007", job="msgprobe", instance="msgprobe"}'

    def arrived() -> list[str]:
        problems = []
        # The Prometheus receiver runs the shipped rules every second: count what was written.
        count = receiver.query(f"count({{{WRITTEN}, {identity[1:]})")
        if [float(s["value"][1]) for s in count] != [template.series]:
            problems.append(f"series: {count}, want {template.series}")
        blocked = {s["metric"]["service"] for s in receiver.query(f"msgprobe_service_blocked{identity} == 1")}
        if blocked != {"telegram"}:
            problems.append(f"blocked: {blocked}")
        cycles = [float(s["value"][1]) for s in receiver.query(f"msgprobe_cycles_total{identity}")]
        if cycles != [42.0]:
            problems.append(f"cycles: {cycles}")
        per_check = receiver.query(
            f'msgprobe_check_duration_seconds_sum{{check="dns", service="telegram", {identity[1:]}'
        )
        if [float(s["value"][1]) for s in per_check] != [42 * catalog.CHECK_SECONDS]:
            problems.append(f"histogram sum: {per_check}")
        return problems

    _settle(receiver, arrived)
