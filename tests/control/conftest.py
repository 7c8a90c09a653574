"""Every test here also checks the control's logs for the requester's address.

The client binds ``CLIENT_IP``, an address no testbed server uses, so a log
line naming it can only be the control logging who asked (an access log
does, in aiohttp's default format: ``%a``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from probe.logs import LogfmtFormatter
from tests.control.bed import CLIENT_IP


@pytest.fixture(autouse=True)
def no_requester_address_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    formatter = LogfmtFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    leaked = [line for line in lines if CLIENT_IP in line]
    assert not leaked, f"the requester's address was logged: {leaked[:3]}"
