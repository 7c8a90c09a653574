"""The raw variant (EXTRAS="[raw]": scapy, libpcap), run as a volunteer runs it.

Docker 20.10 gives a capability added with `--cap-add` only to uid 0: it
sets no ambient capabilities, so the image's own user 65532 keeps NET_RAW
in its bounding set alone and the raw checks cannot run. So the raw variant
runs as `--user 0:65532` with every capability dropped but NET_RAW: uid 0
with no DAC_OVERRIDE writes only where group 65532 may (the raw build makes
the state volume's mount point group-writable), and the root filesystem
stays read-only. deploy/README.md, "Raw-packet checks", has the tradeoff.

Checked here: holding NET_RAW and nothing else (CapEff exactly 0x2000) the
checks can run, libpcap compiling a real filter on `lo`; without it they
say so; and the daemon itself, with `raw: {packets: true}` added to the
loopback-only config, is healthy, writes evidence into a fresh volume, its
raw witness captures the refused connection's reset on `lo`, and no
record, metric, /status or log line holds an address other than loopback
(or the wildcard it listens on).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.container import image
from scripts.container.engine import Engine
from scripts.container.steps import StepFailed, log, netns_get

RAW_TAG = "msgprobe:ci-raw"
NAME = "msgprobe-ci-raw"
VOLUME = "msgprobe-ci-raw-state"
# deploy/README.md's flags for the raw variant (image.LOCKED_DOWN has the rest).
AS_RAW_USER = ("--user", "0:65532", "--cap-add", "NET_RAW")
NET_RAW_BIT = 1 << 13
# deploy/README.md's check that the raw checks can run, verbatim.
RAW_PROBLEM = "from probe.raw.capability import raw_problem; print(raw_problem())"
# What a raw check does first: a BPF filter compiled by libpcap for an
# interface. Its instruction count shows the filter is real, not empty.
COMPILE_ON_LO = (
    "from scapy.arch.common import compile_filter\n"
    "print(compile_filter('tcp and host 127.0.0.1', iface='lo').bf_len)\n"
)
CAP_EFF = "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('CapEff')][0])"
RAW_CONFIG_LINE = "raw: {packets: true}\n"

# Anything that reads as an IP address, to be parsed and judged: dotted
# quads, and colon groups (which a time of day also is: parsing sorts them).
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def addresses_in(text: str) -> set[str]:
    found = set()
    for candidate in _IPV4.findall(text) + _IPV6.findall(text):
        try:
            found.add(str(ipaddress.ip_address(candidate)))
        except ValueError:
            continue
    return found


def _not_loopback(found: set[str]) -> list[str]:
    """What is neither loopback nor the wildcard the daemon listens on
    (its log says `listening address=0.0.0.0:9490`: no host's address)."""
    parsed = (ipaddress.ip_address(a) for a in found)
    return sorted(str(a) for a in parsed if not (a.is_loopback or a.is_unspecified))


@dataclass
class RawDaemonReport:
    uid: str
    gid: str
    cap_eff: str
    healthy_after_s: float
    volume_mode: str
    evidence_records: int
    evidence_owner: str  # uid:gid of evidence.jsonl
    raw_rows: list[dict[str, Any]]
    addresses: list[str]  # every address in records, metrics, /status, logs: loopback (or the wildcard)
    stop_s: float


@dataclass
class RawReport:
    image_bytes: int
    # raw_problem() as uid 0 (group 65532) holding NET_RAW and nothing else: "None".
    with_net_raw: str
    cap_eff_with_net_raw: str
    lo_filter_instructions: int
    without_net_raw: str  # no capability at all: the reason
    daemon: dict[str, Any]


def _run_python(engine: Engine, code: str, *extra: str) -> str:
    """`code` run by the image's Python in a fresh locked-down container; what
    it printed. Fails with its output if it exits non-zero."""
    out = engine.docker(
        "run", "--rm", *image.LOCKED_DOWN, *extra, "--entrypoint", image.PYTHON, RAW_TAG, "-c", code,
        timeout=60,
    )  # fmt: skip
    return out.stdout.strip()


def check_raw(engine: Engine, work: Path, image_bytes: int) -> RawReport:
    cap_eff = _run_python(engine, CAP_EFF, *AS_RAW_USER)
    if int(cap_eff, 16) != NET_RAW_BIT:
        raise StepFailed(f"--cap-add NET_RAW after --cap-drop ALL gave CapEff {cap_eff}, not NET_RAW alone")
    with_cap = _run_python(engine, RAW_PROBLEM, *AS_RAW_USER)
    if with_cap != "None":
        raise StepFailed(f"holding NET_RAW, raw_problem() printed {with_cap!r}, not None")
    instructions = _run_python(engine, COMPILE_ON_LO, *AS_RAW_USER)
    if not instructions.isdigit() or int(instructions) == 0:
        raise StepFailed(f"compile_filter on lo gave {instructions!r}, not a BPF program")
    without_cap = _run_python(engine, RAW_PROBLEM)
    if without_cap != "needs NET_RAW":
        raise StepFailed(f"without NET_RAW, raw_problem() printed {without_cap!r}, not 'needs NET_RAW'")
    log(
        f"raw variant: {with_cap} holding NET_RAW ({instructions} BPF instructions on lo), "
        f"{without_cap!r} without"
    )
    daemon = _check_daemon(engine, work)
    return RawReport(image_bytes, with_cap, cap_eff, int(instructions), without_cap, daemon.__dict__)


def _check_daemon(engine: Engine, work: Path) -> RawDaemonReport:
    config = image.LOOPBACK_CONFIG.read_text()
    if re.search(r"^raw:", config, re.MULTILINE):
        raise StepFailed(f"{image.LOOPBACK_CONFIG} has a raw: key already: update {__file__}")
    daemon = image.start_daemon(engine, work, RAW_TAG, NAME, VOLUME, config + RAW_CONFIG_LINE, *AS_RAW_USER)
    status = image.process_status(daemon.pid)
    uid, gid, cap_eff = status["Uid"], status["Gid"], status["CapEff"]
    if uid.split() != ["0"] * 4 or gid.split() != ["65532"] * 4:
        raise StepFailed(f"the raw daemon runs as uid {uid}, gid {gid}: not 0, 65532")
    for key in ("CapEff", "CapPrm", "CapBnd"):
        if int(status[key], 16) != NET_RAW_BIT:
            raise StepFailed(f"the raw daemon's {key} is {status[key]}, not NET_RAW alone")
    if status["NoNewPrivs"] != "1":
        raise StepFailed("no_new_privs is not set")
    volume = daemon.volume_dir.stat()
    volume_mode = oct(volume.st_mode & 0o777)
    if volume_mode != "0o775" or (volume.st_uid, volume.st_gid) != (65532, 65532):
        raise StepFailed(f"the raw image's fresh volume is {volume_mode} {volume.st_uid}:{volume.st_gid}")

    records = image.wait_for_evidence(daemon)
    ev = daemon.evidence.stat()
    owner = f"{ev.st_uid}:{ev.st_gid}"
    if owner != "0:65532":
        raise StepFailed(f"evidence.jsonl belongs to {owner}, not the raw user 0:65532")
    raw_rows = [c for r in records for c in r["checks"] if str(c["check"]).startswith("raw:")]
    failures = [c for c in raw_rows if c.get("failure")]
    if failures:
        raise StepFailed(f"raw rows failed in the daemon holding NET_RAW: {failures[:3]}")
    # The refused connection to 127.0.0.1:9 ends in the kernel's reset on lo,
    # which the witness's capture must have seen: capture really runs.
    seen = [c for c in raw_rows if c["check"] == "raw:reset:9" and int(c.get("resets", 0)) >= 1]
    if not seen:
        raise StepFailed(f"no raw:reset:9 row with a captured reset: {raw_rows[:3]}")

    served = {}
    for path in ("/metrics", "/status"):
        code, served[path] = netns_get(daemon.pid, f"http://127.0.0.1:9490{path}")
        if code != 200:
            raise StepFailed(f"the raw daemon's {path}: {code} {served[path][-300:]}")
    logs = engine.docker("logs", NAME, check=False)
    found: set[str] = set()
    for what, text in (
        ("evidence", daemon.evidence.read_text()),
        *served.items(),
        ("logs", logs.stdout + logs.stderr),
    ):
        here = addresses_in(text)
        if outside := _not_loopback(here):
            raise StepFailed(f"the raw daemon's {what} holds non-loopback addresses: {outside[:5]}")
        found |= here
    rows = ", ".join(f"{c['check']}: {c.get('verdict')}" for c in raw_rows[:2])
    log(
        f"raw daemon: uid {uid.split()[0]} gid {gid.split()[0]} CapEff {cap_eff}, healthy in "
        f"{daemon.healthy_after_s} s, volume {volume_mode}, evidence {owner}, {len(raw_rows)} raw rows "
        f"({rows}), addresses {sorted(found)}"
    )
    stop_s = image.stop_daemon(engine, daemon)
    return RawDaemonReport(
        uid,
        gid,
        cap_eff,
        daemon.healthy_after_s,
        volume_mode,
        len(records),
        owner,
        raw_rows,
        sorted(found),
        stop_s,
    )
