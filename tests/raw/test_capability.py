"""Can this process capture? Asked for real, with and without NET_RAW."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from probe.model_packets import NEEDS_NET_RAW
from probe.raw.capability import raw_problem
from tests.conftest import REQUIRE_TOOLS, require_root, require_tool


def test_root_with_scapy_and_libpcap_can_capture() -> None:
    require_root("opens AF_PACKET and raw IP sockets")
    problem = raw_problem()
    if problem is not None and not REQUIRE_TOOLS:
        import pytest

        pytest.skip(problem)
    assert problem is None  # in CI: scapy (the raw extra) and libpcap are installed, root has NET_RAW


def test_without_net_raw_the_reason_is_one_line() -> None:
    require_root("drops NET_RAW from a root process's bounding set")
    setpriv = require_tool("setpriv")
    code = "from probe.raw.capability import raw_problem; print(raw_problem())"
    done = subprocess.run(
        [setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == NEEDS_NET_RAW
