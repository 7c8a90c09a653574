"""The container's entrypoint: ``msgprobe run`` with the image's defaults.

The image has no shell (a distroless base), so the little logic a
container needs lives here:

- no arguments, or only flags: the daemon, listening on ``:9490``, writing
  its evidence log into the state volume, with ``/etc/msgprobe/probe.yaml``
  as its config when one is mounted there (the embedded default otherwise);
  flags given after the image name are appended, so they win;
- a subcommand (``once``, ``demo``, ``check-config``, ``targets``, ``run``
  with your own flags): passed through unchanged.

``MSGPROBE_CONFIG`` and ``MSGPROBE_STATE_DIR`` move the two paths (tests
use them; a volunteer has no reason to).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_CONFIG = "/etc/msgprobe/probe.yaml"
DEFAULT_STATE_DIR = "/var/lib/msgprobe"
LISTEN = ":9490"


def _given(flag: str, args: Sequence[str]) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def daemon_argv(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The msgprobe command line for the container's arguments ``args``."""
    if args and not args[0].startswith("-"):
        return list(args)
    config = Path(env.get("MSGPROBE_CONFIG", DEFAULT_CONFIG))
    state = Path(env.get("MSGPROBE_STATE_DIR", DEFAULT_STATE_DIR))
    argv = ["run"]
    if not _given("--web.listen-address", args):
        argv.append(f"--web.listen-address={LISTEN}")
    if not _given("--evidence.path", args):
        argv.append(f"--evidence.path={state / 'evidence.jsonl'}")
    if not _given("--config.file", args) and config.is_file():
        argv.append(f"--config.file={config}")
    return argv + list(args)


def main() -> int:
    from probe.cli import main as msgprobe

    return msgprobe(daemon_argv(sys.argv[1:], os.environ))


if __name__ == "__main__":
    sys.exit(main())
