"""What a check kind declares, and what its measure step gets to work with.

A kind is one module under ``probe.checks`` exporting a ``CheckSpec`` and one
entry in the registry table (``probe.checks.REGISTRY``), like blackbox's
``Probers`` map and OONI's one package per experiment. Everything else is
derived from the table: config parsing and its usage message, the methods
exported per endpoint, the result rows and the metric rows, the steps run per
address and port, the findings analysis weighs.

Per-address kinds share one connection per address and port: kinds run in
``stage`` order on it (tcp 0, tls 1, http 2, …), a later stage only if every
earlier one on that port succeeded, and the kind that needs the open
connection for itself takes it with ``PortContext.take()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from probe.analysis.endpoint import AnalysisInput
from probe.config.model import Check, Endpoint
from probe.measure.tcp import Connection
from probe.measure.toolkit import Toolkit
from probe.measure.trace import Trace
from probe.model import (
    CheckResult,
    EndpointObservations,
    Finding,
    HttpObservation,
    TcpObservation,
    TlsObservation,
    Verdict,
)
from probe.vocab import Method


@dataclass
class Recorded:
    """Observations an endpoint attempt collects, in the order they were made."""

    tcp: list[TcpObservation] = field(default_factory=list)
    tls: list[TlsObservation] = field(default_factory=list)
    http: list[HttpObservation] = field(default_factory=list)
    other: list[object] = field(default_factory=list)  # observations of kinds added later


@dataclass
class PortContext:
    """One address and port of one endpoint attempt, shared by its kinds' steps."""

    kit: Toolkit
    trace: Trace
    endpoint: Endpoint
    address: str
    port: int
    recorded: Recorded
    conn: Connection | None = None
    failed: bool = False  # an earlier stage failed here: later stages do not run

    def take(self) -> Connection | None:
        """The open connection, handed over: whoever takes it closes it."""
        conn, self.conn = self.conn, None
        return conn


Run = Callable[[PortContext, Check], Awaitable[None]]
Findings = Callable[[EndpointObservations, AnalysisInput], list[Finding]]
Rows = Callable[[EndpointObservations, Endpoint, Verdict], list[CheckResult]]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    kind: str
    usage: str  # how the check is written, for check-config messages: "tcp:PORT"
    parse: Callable[[str, str], Check]  # (argument, endpoint host) -> Check; ValueError with a reason
    methods: tuple[Method, ...]  # what its findings can prove (exported per endpoint)
    findings: Findings
    rows: Rows
    stage: int = 0
    # Per-address kinds name the port they run on; None for name-level kinds (dns).
    port: Callable[[Check], int] | None = None
    run: Run | None = None
    # A kind that only makes sense for a host name (dns) says so.
    needs_name: bool = False
