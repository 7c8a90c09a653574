"""``msgprobe control`` as a process: load, serve until SIGTERM, or issue a token."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from probe.config.load import load_config
from probe.config.nodes import ConfigError
from probe.control import tokens
from probe.control.server import Control, make_app, running
from probe.export.web import bound_addresses
from probe.measure.toolkit import Resources, open_toolkit

log = logging.getLogger("msgprobe")


@dataclass(frozen=True, slots=True)
class Options:
    config: Path | None
    tokens: Path
    listen: str
    web_config: Path | None
    max_in_flight: int
    rate_per_minute: int


def issue_token(path: Path, name: str) -> str:
    """``--tokens.add NAME``: the new token (shown once); its hash is appended to ``path``."""
    return tokens.add(path, name)


async def serve_control(options: Options) -> None:
    """Serve until SIGTERM or SIGINT; ``ConfigError`` before anything listens."""
    problems = []
    if options.max_in_flight < 1:
        problems.append(f"--control.max-in-flight {options.max_in_flight}: at least 1")
    if options.rate_per_minute < 1:
        problems.append(f"--control.rate-per-minute {options.rate_per_minute}: at least 1")
    if problems:
        raise ConfigError(problems)
    web = None
    if options.web_config is not None:
        from probe.export.webconfig import load_web_config

        web = load_web_config(options.web_config)  # ConfigError: nothing listens
    config = load_config(options.config)
    token_file = tokens.TokenFile(options.tokens)
    resources = await asyncio.to_thread(Resources.create, config)
    async with open_toolkit(config, resources=resources) as kit:
        control = Control(
            config,
            kit,
            token_file,
            max_in_flight=options.max_in_flight,
            rate_per_minute=options.rate_per_minute,
        )
        # Basic auth and the probes' bearer tokens share the one Authorization header:
        # the web config's users guard every route but the measure one (make_app), and
        # serve() gets only its TLS.
        middlewares = [web.middleware()] if web is not None and web.users else []
        tls_only = replace(web, users={}) if web is not None else None
        async with running(make_app(control, middlewares=middlewares), options.listen, tls_only) as runner:
            await _serve_until_signalled(control, bound_addresses(runner))


async def _serve_until_signalled(control: Control, addresses: list[str]) -> None:
    config = control.config
    endpoints = sum(len(s.endpoints) for s in config.services)
    log.info(
        "control listening",
        extra={
            "fields": {
                "address": ",".join(addresses),
                "endpoints": endpoints,
                "tokens": len(control.tokens.entries),
                "max_in_flight": control.in_flight.limit,
                "rate_per_minute": control.rate.per_minute,
                "deadline_s": control.deadline,
            }
        },
    )
    if not control.tokens.entries:
        log.warning("no tokens in the token file: every request is refused (add one with --tokens.add)")
    if config.test_networks:
        nets = ",".join(str(n) for n in config.test_networks)
        log.warning(
            "test_networks are measured as public space: never on a real control",
            extra={"fields": {"networks": nets}},
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        log.info("stopped")


def main(args: argparse.Namespace) -> int:
    """The ``control`` subcommand; ``ConfigError`` propagates to the CLI (exit 2)."""
    if args.add_token is not None:
        token = issue_token(args.tokens, args.add_token)
        print(token)
        print(
            f"msgprobe: token for {args.add_token} added to {args.tokens} (hashed); "
            "it is shown only this once: hand it to the probe",
            file=sys.stderr,
        )
        return 0
    options = Options(
        config=args.config,
        tokens=args.tokens,
        listen=args.listen,
        web_config=args.web_config,
        max_in_flight=args.max_in_flight,
        rate_per_minute=args.rate_per_minute,
    )
    asyncio.run(serve_control(options))
    return 0
