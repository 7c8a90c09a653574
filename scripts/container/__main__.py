"""`python3 -m scripts.container`: the container CI step (see __init__).

Prints progress to stderr and, as the last line on stdout, one JSON object
with the figures (image size, timings); exits 0 only if every check held.
Whatever happens (a failed check, SIGTERM from `timeout`, ^C) the engine,
its containers, mounts and temp data are removed; only the cache remains.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from scripts.container import bases, image, raw_image, stack
from scripts.container.engine import Engine, unmount_under
from scripts.container.steps import StepFailed, Timings, log

REPO = Path(__file__).resolve().parents[2]


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "msgprobe" / "container"


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks below


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/container/run", description=__doc__)
    parser.add_argument(
        "--cache", type=Path, default=_default_cache(), help="where base images and compose are kept"
    )
    parser.add_argument("--cold", action="store_true", help="use an empty cache: measure a first run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        log("needs root (dockerd, debootstrap, nsenter)")
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _interrupted)

    work = Path(tempfile.mkdtemp(prefix="msgprobe-container-"))
    work.chmod(0o755)  # the engine's data root below must be traversable by the containers' users
    cache: Path = work / "cold-cache" if args.cold else args.cache
    engine = Engine(work / "engine")
    timings = Timings()
    result: dict[str, Any] = {"ok": False, "cache": str(cache)}
    started = time.monotonic()
    try:
        with timings.step("dockerd"):
            engine.start()
        with timings.step("base images"):
            result["base_images"] = bases.ensure(engine, work / "bases", cache)
        with timings.step("compose plugin"):
            result["compose"] = stack.install_compose(engine, cache)
        tree = work / "tree"
        with timings.step("umask-077 copy"):
            result["files_copied"] = image.copy_as_cloned_with_umask_077(REPO, tree)
        with timings.step("image build"):
            image.build(engine, tree)
        with timings.step("image run checks"):
            report = image.check_run(engine, work)
        result["image_bytes"] = report.image_bytes
        result["image_mb"] = round(report.image_bytes / 1e6, 1)
        result["run"] = report.__dict__
        with timings.step("raw image build"):
            raw_bytes = image.build(engine, tree, raw_image.RAW_TAG, extras="[raw]")
        result["raw_image_mb"] = round(raw_bytes / 1e6, 1)
        with timings.step("raw image run checks"):
            result["raw"] = raw_image.check_raw(engine, work, raw_bytes).__dict__
        with timings.step("compose config"):
            result["compose_config"] = stack.validate(engine, tree / "deploy")
        with timings.step("volunteer stack up"):
            result["stack"] = stack.up_volunteer(engine, tree / "deploy" / "volunteer", work).__dict__
        result["ok"] = True
    except SystemExit as exc:
        result["error"] = f"interrupted (exit {exc.code})"
        raise
    except StepFailed as exc:
        result["error"] = str(exc)
        log(f"FAILED: {exc}")
        log(f"dockerd log tail:\n{engine.log_tail()[-1500:]}")
    finally:
        # A second signal must not cut the teardown short (timeout's
        # --kill-after is the last resort).
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        with timings.step("teardown"):
            try:
                engine.stop()
                log("engine stopped")
            finally:
                unmount_under(work)
                shutil.rmtree(work, ignore_errors=True)
        result["timings_s"] = timings.seconds
        result["total_s"] = round(time.monotonic() - started, 1)
        if result.get("image_mb") is not None:
            log(f"image {image.TAG}: {result['image_mb']} MB (target ≤ 90 MB)")
        if result.get("raw_image_mb") is not None:
            log(f"image {raw_image.RAW_TAG}: {result['raw_image_mb']} MB")
        log(f"total {result['total_s']} s; steps: {timings.seconds}")
        print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
