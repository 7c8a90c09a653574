"""Running commands and timing the steps: the plumbing every step shares."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

# A condition answers whether it holds, and what it saw (for the failure message).
Condition = Callable[[], tuple[bool, str]]


class StepFailed(Exception):
    """A check did not hold; the message says which and what was seen."""


def log(message: str) -> None:
    print(f"[container] {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float = 120,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command, bounded; a failure quotes the end of its output."""
    args = [str(a) for a in argv]
    result = subprocess.run(
        args,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        cwd=cwd,
        check=False,
    )
    if check and result.returncode != 0:
        raise StepFailed(
            f"{' '.join(args[:6])}… exited {result.returncode}:\n"
            f"{result.stdout[-1500:]}{result.stderr[-3000:]}"
        )
    return result


def wait_for(what: str, condition: Condition, timeout: float, interval: float = 0.25) -> float:
    """Poll `condition` until it holds; the seconds it took. Raises on timeout
    with the condition's last answer, so a failure says what was missing."""
    start = time.monotonic()
    last = ""
    while True:
        ok, last = condition()
        if ok:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise StepFailed(f"{what}: not within {timeout:.0f} s; last seen: {last[-1500:]}")
        time.sleep(interval)


def netns_get(pid: int, url: str, timeout: float = 5) -> tuple[int, str]:
    """GET `url` from inside the network namespace of process `pid` (the
    containers have no published ports: there is no bridge). Status 0 means
    no answer at all."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        f"    r = urllib.request.urlopen(sys.argv[1], timeout={timeout})\n"
        "    print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
        "except OSError as e:\n"
        "    print(0); print(e)\n"
    )
    result = run(
        ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", code, url], timeout=timeout + 10, check=False
    )
    status, _, body = result.stdout.partition("\n")
    return (int(status) if status.strip().isdigit() else 0), body + result.stderr


class Timings:
    """Seconds per step, printed at the end (the cold-run budget is ~5 min)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        log(f"{name} …")
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - start, 1)
            log(f"{name}: {self.seconds[name]} s")
