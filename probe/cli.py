"""Command line: ``msgprobe run | once | demo | control | check-config | targets | evidence``.

Flags follow the Prometheus exporter convention (``--config.file``,
``--web.listen-address``, ``--log.level``, ``--log.format``). A config
problem prints one line per problem and exits 2 before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from probe import __version__, logs
from probe.config.load import load_config
from probe.config.model import Config
from probe.config.nodes import ConfigError
from probe.config.values import duration
from probe.export.evidence import read_records
from probe.export.records import iso_time

EXIT_CONFIG = 2


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _logging_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log.level", dest="log_level", choices=logs.LEVELS, default="info")
    p.add_argument("--log.format", dest="log_format", choices=("logfmt", "json"), default="logfmt")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msgprobe", description="Messenger reachability probe.")
    parser.add_argument("--version", action="version", version=f"msgprobe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the daemon: measure on a schedule, serve /metrics")
    run.add_argument("--config.file", dest="config", type=Path, help="config file (default: embedded)")
    run.add_argument("--web.listen-address", dest="listen", default=":9490")
    run.add_argument(
        "--web.config.file", dest="web_config", type=Path, help="TLS and basic auth (exporter-toolkit format)"
    )
    run.add_argument("--evidence.path", dest="evidence", type=Path, help="JSONL evidence log")
    _logging_flags(run)

    once = sub.add_parser("once", help="one cycle with confirmation retries, printed")
    once.add_argument("--config", "--config.file", dest="config", type=Path)
    once.add_argument("--service", action="append", default=[], help="only this service (repeatable)")
    once.add_argument("--format", choices=("table", "json"), default="table")
    _logging_flags(once)

    demo = sub.add_parser("demo", help="measure a simulated censor on loopback (nothing leaves the machine)")
    demo.add_argument("--once", action="store_true", help="print one cycle and exit")
    demo.add_argument("--format", choices=("table", "json"), default="table")
    demo.add_argument("--web.listen-address", dest="listen", default="127.0.0.1:9490")
    demo.add_argument("--interval", default="10s", help="cycle interval of the demo daemon")
    demo.add_argument("--probe.id", dest="probe_id", default="demo")
    demo.add_argument("--evidence.path", dest="evidence", type=Path)
    demo.add_argument(
        "--regime",
        choices=("online", "whitelist"),
        default="online",
        help="whitelist: the censor lets only the domestic canaries through",
    )
    _logging_flags(demo)

    control = sub.add_parser("control", help="serve as a control peer: measure catalog endpoints for probes")
    control.add_argument("--config.file", dest="config", type=Path, help="its catalog and resolvers")
    control.add_argument("--web.listen-address", dest="listen", default=":9491")
    control.add_argument("--web.config.file", dest="web_config", type=Path, help="TLS and basic auth")
    control.add_argument("--tokens.file", dest="tokens", type=Path, required=True, help="hashed tokens")
    control.add_argument("--tokens.add", dest="add_token", metavar="NAME", help="issue a token and exit")
    control.add_argument("--control.max-in-flight", dest="max_in_flight", type=int, default=16)
    control.add_argument("--control.rate-per-minute", dest="rate_per_minute", type=int, default=300)
    _logging_flags(control)

    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file", type=Path)

    targets = sub.add_parser("targets", help="list the catalog")
    targets.add_argument("--config", "--config.file", dest="config", type=Path)
    targets.add_argument("--format", choices=("table", "json"), default="table")

    evidence = sub.add_parser("evidence", help="print the evidence log's records (every generation)")
    evidence.add_argument("--config", "--config.file", dest="config", type=Path)
    evidence.add_argument("--file", type=Path, help="the log to read (default: the config's evidence.path)")
    evidence.add_argument("--service", help="only this service's records")
    evidence.add_argument("--since", help="only records this recent: a duration (2h, 7d) or ISO 8601 time")
    evidence.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def _since(text: str | None) -> float | None:
    """``2h``/``7d`` back from now, or an ISO 8601 time; ValueError names what was wrong."""
    if text is None:
        return None
    try:
        return time.time() - duration(text, limit=3660 * 86_400.0)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"--since {text!r}: use a duration (2h, 7d) or an ISO 8601 time") from None


def _evidence(args: argparse.Namespace) -> int:
    path = args.file or load_config(args.config).evidence_path
    if path is None:
        print("msgprobe: no evidence log: the config sets no evidence.path (or give --file)", file=sys.stderr)
        return 2
    try:
        since = _since(args.since)
    except ValueError as exc:
        print(f"msgprobe: {exc}", file=sys.stderr)
        return 2
    read = read_records(Path(path), service=args.service, since=since)
    if args.format == "json":
        for record in read.records:
            print(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    else:
        for r in read.records:
            stamp = iso_time(float(r["time"])) if isinstance(r.get("time"), int | float) else "?"
            method = f" {r['method']}" if r.get("method") else ""
            summary = r.get("evidence", {}).get("summary", "") if isinstance(r.get("evidence"), dict) else ""
            print(f"{stamp}  {r.get('service')}  {r.get('endpoint')}  {r.get('status')}{method}  {summary}")
    if read.skipped:
        print(f"msgprobe: {read.skipped} torn or unreadable lines skipped", file=sys.stderr)
    return 0


def _fail_config(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(f"msgprobe: {problem}", file=sys.stderr)
    return EXIT_CONFIG


async def _once(config: Config, fmt: str) -> str:
    from probe.config.fingerprints import load_fingerprints
    from probe.export.records import cycle_record, result_record
    from probe.export.table import render_table
    from probe.measure.toolkit import open_toolkit
    from probe.measure.trace_log import beside
    from probe.runner.cycle import run_cycle

    fingerprints = load_fingerprints(config.blockpages)
    # A manual run keeps the daemon's once-a-day traceroute promise too.
    async with open_toolkit(config, trace_log=beside(config.evidence_path)) as kit:
        cycle = await run_cycle(kit, fingerprints, config.services, retries=config.confirm - 1)
    if fmt == "json":
        record = cycle_record(
            probe={
                "id": config.probe_id,
                "country": config.country,
                "asn": config.asn,
                "version": __version__,
            },
            started=_iso(cycle.started),
            finished=_iso(cycle.finished),
            vantage_online=cycle.vantage_online,
            results=[result_record(r) for r in cycle.results],
            regime=cycle.regime,
            canaries=cycle.canary_up,
        )
        return json.dumps(record, indent=2, ensure_ascii=False)
    return render_table(
        cycle.results, vantage_online=cycle.vantage_online, regime=cycle.regime, canaries=cycle.canary_up
    )


def _targets(config: Config, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            [
                {
                    "service": s.name,
                    "title": s.title,
                    "endpoint": e.host,
                    "status": e.state.value,
                    "checks": [c.label for c in e.checks],
                    "source": e.source,
                }
                for s in config.services
                for e in s.endpoints
            ],
            indent=2,
        )
    lines = [f"{'SERVICE':<14}{'ENDPOINT':<36}{'STATUS':<9}CHECKS"]
    for s in config.services:
        for e in s.endpoints:
            lines.append(f"{s.name:<14}{e.host:<36}{e.state.value:<9}{' '.join(c.label for c in e.checks)}")
    count = sum(len(s.endpoints) for s in config.services)
    lines.append(f"\n{len(config.services)} services, {count} endpoints")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> None:
    from probe.runner.daemon import Daemon

    web_config = None
    if args.web_config is not None:
        from probe.export.webconfig import load_web_config

        web_config = load_web_config(args.web_config)  # ConfigError: exit 2 before anything listens
    daemon = Daemon(
        lambda: load_config(args.config),
        listen=args.listen,
        evidence_path=args.evidence,
        web_config=web_config,
    )
    await daemon.run()


async def _demo(args: argparse.Namespace) -> int:
    from probe.config import values
    from probe.runner.daemon import Daemon
    from probe.testbed.demo import demo_testbed

    interval = values.duration(args.interval)
    async with demo_testbed(probe_id=args.probe_id, interval=interval, regime=args.regime) as config:
        if args.once:
            print(await _once(config, args.format))
            return 0
        daemon = Daemon(lambda: config, listen=args.listen, evidence_path=args.evidence)
        print(
            f"msgprobe demo: measuring {sum(len(s.endpoints) for s in config.services)} simulated endpoints "
            f"on loopback every {args.interval}; metrics and status page on http://{args.listen}/ "
            "(Ctrl-C to stop)",
            file=sys.stderr,
        )
        await daemon.run()
    return 0


def _raise_fd_limit() -> None:
    # A cycle holds a socket per concurrent step plus the UDP sockets still
    # listening for late DNS replies; the common soft limit of 1024 is low.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _raise_fd_limit()
    if hasattr(args, "log_level"):
        logs.setup(args.log_level, args.log_format)
    try:
        if args.command == "check-config":
            config = load_config(args.file)
            from probe.config.fingerprints import load_fingerprints

            load_fingerprints(config.blockpages)  # what `run` reads at start: a bad file fails here too
            endpoints = sum(len(s.endpoints) for s in config.services)
            print(f"{args.file}: ok ({len(config.services)} services, {endpoints} endpoints)")
            return 0
        if args.command == "evidence":
            return _evidence(args)
        if args.command == "targets":
            print(_targets(load_config(args.config), args.format))
            return 0
        if args.command == "once":
            config = load_config(args.config, select=tuple(args.service))
            print(asyncio.run(_once(config, args.format)))
            return 0
        if args.command == "run":
            asyncio.run(_run(args))
            return 0
        if args.command == "demo":
            return asyncio.run(_demo(args))
        if args.command == "control":
            from probe.control.run import main as control_main

            return control_main(args)
    except ConfigError as exc:
        return _fail_config(exc)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
