"""The control logs no requester address, across every kind of answer it gives.

(Every test in this directory also checks the address, in conftest; this one
runs one request of each kind and checks the client's source ports too.)"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from probe.config.model import Timeouts
from probe.logs import LogfmtFormatter
from tests.control.bed import CLIENT_IP, RELAY_IP, STALL_IP, control_bed

CLEAN = {"service": "clean", "endpoint": "clean.msgprobe.test"}


def test_no_log_line_names_the_requester(caplog: pytest.LogCaptureFixture) -> None:
    async def test() -> set[int]:
        timeouts = Timeouts(dns=1.0, connect=1.0, tls=1.5, http=2.0, cycle=0.5)
        async with control_bed(max_in_flight=1, rate_per_minute=10, timeouts=timeouts) as bed:
            requests = [
                bed.post({**CLEAN, "addresses": [RELAY_IP]}),  # 200
                bed.post(CLEAN, token=None),  # 401
                bed.post(CLEAN, token="wrong"),  # 401
                bed.post({**CLEAN, "checks": ["tcp:22"]}),  # 403
                bed.post({**CLEAN, "addresses": ["10.1.2.3"]}),  # 403
                bed.post(raw=b"{"),  # 400
                bed.post(raw=b" " * 20_000),  # 413
            ]
            statuses = [(await r).status for r in requests]
            holder = asyncio.create_task(bed.post({"service": "slow", "endpoint": STALL_IP}))
            while bed.control.in_flight.count < 1:  # noqa: ASYNC110 (server state)
                await asyncio.sleep(0.005)
            statuses.append((await bed.post(CLEAN)).status)  # 503
            statuses.append((await holder).status)  # 504
            while len(statuses) < 14:
                statuses.append((await bed.post(raw=b"{")).status)  # 400, then 429
            statuses.append((await bed.get("/metrics"))[0])
            assert statuses == [200, 401, 401, 403, 403, 400, 413, 503, 504, 400, 400, 400, 429, 429, 200]
            ports = bed.client_ports - {0, bed.censor.tls_port, bed.censor.http_port}
            assert ports  # the connections the control served (a 413 closes its own)
            return ports

    ports = asyncio.run(test())
    formatter = LogfmtFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    answered = [r for r in caplog.records if r.getMessage() == "control request"]
    assert len(answered) == 14  # one line per measure request: the log is not silent, just discreet
    assert not [r for r in caplog.records if r.name == "aiohttp.access"]
    assert not [line for line in lines if CLIENT_IP in line]
    for port in ports:
        assert not [line for line in lines if re.search(rf"(?<![\d.]){port}(?!\d)", line)], port
    assert all(r.levelno >= logging.DEBUG for r in answered)
