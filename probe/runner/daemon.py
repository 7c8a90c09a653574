"""``msgprobe run``: measure on a schedule, serve the latest state, survive.

Signals: SIGTERM/SIGINT stop within two seconds (the running cycle is
abandoned; its sockets close as its tasks unwind). SIGHUP and
``POST /-/reload`` reload the config; a bad config is refused with a log
line and ``msgprobe_config_last_reload_successful 0``, and the old one keeps
running.

Reload, one at a time and off the loop: SIGHUP and ``POST /-/reload`` both
call ``Daemon.reload``, which holds the daemon's one ``asyncio.Lock`` so two
reloads never interleave (the second waits and then loads the file as it is
by then). The load itself (the catalog YAML, the fingerprints, the CA stores:
tens of ms) runs in a worker thread, because a blocked loop inflates the lag
the cycle measures and can turn genuine timeout blocks into ``unknown``. The
thread only builds new objects; they replace the running ones on the loop,
in one step, so a cycle sees either the old config or the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.config.fingerprints import Fingerprints, load_fingerprints
from probe.config.model import Config
from probe.config.nodes import ConfigError
from probe.export.evidence import EvidenceLog
from probe.export.metrics import snapshot_registry
from probe.export.records import result_record
from probe.export.web import bound_addresses, make_app, serve
from probe.measure import trace_log
from probe.measure.budget import ByteBudget
from probe.measure.pairs import PairsLog
from probe.measure.toolkit import Resources, open_toolkit
from probe.runner.cycle import CycleResult, run_cycle
from probe.runner.scheduler import Clock, Scheduler
from probe.runner.tracker import Tracker
from probe.state import CensorTrace, Snapshot
from probe.vocab import Status

if TYPE_CHECKING:  # loaded by the CLI when --web.config.file is given; bcrypt is imported only then
    from probe.export.webconfig import WebConfig

log = logging.getLogger("msgprobe")
STOP_GRACE = 1.5  # seconds the abandoned cycle gets to unwind; SIGTERM must finish within 2 s


class Loaded(NamedTuple):
    """Everything a config change replaces, built together so it is replaced together."""

    config: Config
    fingerprints: Fingerprints
    resources: Resources  # CA stores, the ASN database: built once per config


def load_all(load: Callable[[], Config]) -> Loaded:
    """The blocking part of a (re)load: file reads, YAML parsing, CA stores."""
    config = load()
    return Loaded(config, load_fingerprints(config.blockpages), Resources.create(config))


class Daemon:
    def __init__(
        self,
        load: Callable[[], Config],
        *,
        listen: str,
        evidence_path: Path | None = None,
        web_config: WebConfig | None = None,
        clock: Clock | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.load = load
        self.listen = listen
        self.web_config = web_config  # read once, at start (--web.config.file); None: plain HTTP
        self.wall = wall
        # At start nothing else runs yet, so loading on the caller's thread blocks nobody.
        self.config, self.fingerprints, self.resources = load_all(load)  # ConfigError: nothing starts
        # One budget and one pairs log for the daemon's lifetime: neither a
        # cycle nor a reload may hand the throttle tests a fresh day's bytes
        # or forget when pairs last ran. A reload changes the limit only.
        self.budget = ByteBudget(self.config.throttle.daily_bytes, clock=wall)
        self.pairs_log = PairsLog()
        self._view: tuple[Snapshot, Snapshot] | None = None
        self.scheduler = Scheduler(self.config.interval, self.config.jitter, clock=clock)
        path = evidence_path or self.config.evidence_path
        self.trace_log = trace_log.beside(path)  # once a day per endpoint, across restarts too
        # The last walks from before a restart: the limit will not repeat them for hours,
        # and until then /metrics and /status must still show what they found.
        censor = {(s, e): CensorTrace(at, found) for s, e, at, found in self.trace_log.results()}
        self.tracker = Tracker(self.config, started=wall(), censor=censor)
        self.evidence = (
            EvidenceLog(
                path,
                self.config.evidence_max_bytes,
                keep=self.config.evidence_keep,
                max_age=self.config.evidence_max_age,
            )
            if path
            else None
        )
        self.registry = snapshot_registry(self.snapshot)
        self.stop = asyncio.Event()
        self.listening = asyncio.Event()
        self.address: str | None = None
        self._reload_lock = asyncio.Lock()  # SIGHUP and POST /-/reload alike; see the module docstring
        self._signalled: set[asyncio.Task[tuple[bool, str]]] = set()  # SIGHUP reloads still running

    def snapshot(self) -> Snapshot:
        """The tracker's snapshot with the byte budget as of its making: a new
        object only when the tracker's changes (the scrape cache keys on it)."""
        base = self.tracker.snapshot
        if self._view is None or self._view[0] is not base:
            view = replace(
                base,
                budget_used=self.budget.used,
                budget_limit=self.budget.limit,
                evidence=replace(self.evidence.health) if self.evidence else None,
                raw_enabled=self.config.raw.enabled,
                raw_problem=self.resources.raw_problem,
            )
            self._view = (base, view)
        return self._view[1]

    async def reload(self) -> tuple[bool, str]:
        """Load the config again; ``(True, "reloaded")`` or ``(False, first line of the error)``."""
        async with self._reload_lock:
            try:
                loaded = await asyncio.to_thread(load_all, self.load)
            except Exception as exc:
                # A bad file is a ConfigError; anything else is a bug in loading, and
                # a reload must still answer, count as failed and keep the old config.
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error(
                    "config reload refused; keeping the running config",
                    exc_info=None if isinstance(exc, (ConfigError, OSError)) else exc,
                    extra={"fields": {"error": message}},
                )
                self.tracker.record_reload(False, self.wall())
                return False, message
            config = loaded.config
            self.config, self.fingerprints, self.resources = loaded
            self.budget.limit = config.throttle.daily_bytes
            self.scheduler.interval, self.scheduler.jitter = config.interval, config.jitter
            self.tracker.configure(config)
            self.tracker.record_reload(True, self.wall())
            log.info("config reloaded", extra={"fields": {"services": len(config.services)}})
            return True, "reloaded"

    def _on_sighup(self) -> None:
        # A signal handler cannot await: the reload runs as a task that we keep
        # (the loop holds only a weak reference) until it is done.
        task = asyncio.get_running_loop().create_task(self.reload(), name="msgprobe reload (SIGHUP)")
        self._signalled.add(task)
        task.add_done_callback(self._signal_reload_done)

    def _signal_reload_done(self, task: asyncio.Task[tuple[bool, str]]) -> None:
        self._signalled.discard(task)
        # Retrieve the outcome here, or asyncio reports "Task exception was never retrieved" at exit.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("config reload failed", exc_info=exc)

    async def cycle(self) -> CycleResult:
        config = self.config
        async with open_toolkit(
            config,
            resources=self.resources,
            budget=self.budget,
            pairs_log=self.pairs_log,
            trace_log=self.trace_log,
        ) as kit:
            result = await run_cycle(kit, self.fingerprints, config.services, wall=self.wall)
        before = {(e.service, e.endpoint): e.status for e in self.tracker.snapshot.endpoints}
        snapshot = self.tracker.apply(result)
        changed = {
            (e.service, e.endpoint): e
            for e in snapshot.endpoints
            if before.get((e.service, e.endpoint)) != e.status
        }
        if self.evidence is not None:
            self.evidence.write(self._evidence(result, changed))
        blocked = sum(1 for s in snapshot.services if s.blocked)
        log.info(
            "cycle done",
            extra={
                "fields": {
                    "duration_s": round(result.duration, 3),
                    "endpoints": len(result.results),
                    "services_blocked": blocked,
                    "vantage_online": result.vantage_online,
                    "max_loop_lag_s": round(result.max_lag, 3),
                }
            },
        )
        return result

    def _evidence(self, result: CycleResult, changed: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
        records = []
        for r in result.results:
            key = (r.service, r.endpoint)
            if r.verdict.status is Status.OK and key not in changed:
                continue
            record = {"time": result.finished, "probe_id": self.config.probe_id, **result_record(r)}
            if key in changed:
                record["confirmed_status"] = changed[key].status.value
                record["confirmed_method"] = changed[key].method.value if changed[key].method else None
            records.append(record)
        return records

    async def _cycle_safely(self) -> None:
        try:
            await self.cycle()
        except Exception:  # a bug in one cycle must not kill a months-long run
            log.exception("cycle failed")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        app = make_app(self.snapshot, registry=self.registry, reload=self.reload, evidence=self.evidence)
        runner = await serve(app, self.listen, web_config=self.web_config)
        self.address = (bound_addresses(runner) or ["?"])[0]
        self.listening.set()
        log.info(
            "listening", extra={"fields": {"address": self.address, "services": len(self.config.services)}}
        )
        handled = []
        for sig, action in (
            (signal.SIGTERM, self.stop.set),
            (signal.SIGINT, self.stop.set),
            (signal.SIGHUP, self._on_sighup),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, action)
                handled.append(sig)
        work = asyncio.create_task(self.scheduler.run(self._cycle_safely, self.stop))
        try:
            await self.stop.wait()
        finally:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(STOP_GRACE):
                    await work
            for sig in handled:
                loop.remove_signal_handler(sig)
            for task in list(self._signalled):
                task.cancel()  # its load thread finishes on its own; nothing is applied after this
            await asyncio.gather(*self._signalled, return_exceptions=True)
            await runner.cleanup()
            log.info("stopped")
