"""Start the loopback censor in its own process, so its CPU is never the probe's."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def censor(*args: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="msgprobe-bench-") as workdir:
        config = Path(workdir) / "probe.yaml"
        proc = subprocess.Popen(
            [sys.executable, "-m", "probe.testbed.serve", "--config-out", str(config), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError(f"testbed did not start: {line!r}")
            yield config
        finally:
            proc.terminate()
            proc.wait(timeout=30)
