"""One trace per endpoint attempt: every network operation, timed and classified.

Each step runs its I/O inside ``with trace.op(Operation.X, ...) as op:``. The
trace owns the attempt's zero time and its clock, times the block, maps a
library exception to the failure vocabulary (``probe.measure.errors``) and
appends a :class:`~probe.model.TraceEvent`, so no step writes its own
try/except/timing and nothing the probe did goes unrecorded (OONI's
``measurexlite.Trace`` with ``ErrWrapper{Failure, Operation}``; httpcore's
``Trace("connect_tcp")``).

Exceptions that are facts about the network (an ``OSError``, a timeout, a
protocol violation by the peer) are recorded and swallowed: the step reads
``op.failure``. Anything else is a bug in the probe: it is recorded too and
then propagates, so the runner turns it into status ``error`` for this one
endpoint instead of a silent ``unknown_failure``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from types import TracebackType

from probe.measure.errors import classify, is_network_fact
from probe.model import Sample, TraceEvent
from probe.vocab import Failure, Operation, Purpose

MAX_SAMPLES = 256  # per operation: enough for goodput, bounded for a 512 KiB body
SAMPLE_SPACING = 0.005  # seconds between kept byte samples


class Op:
    """One operation in progress; its outcome is readable after the block."""

    def __init__(
        self,
        trace: Trace,
        operation: Operation,
        transaction: int,
        address: str | None,
        port: int | None,
        purpose: Purpose,
        detail: str,
    ) -> None:
        self.trace = trace
        self.operation = operation
        self.transaction = transaction
        self.address = address
        self.port = port
        self.purpose = purpose
        self.detail = detail
        self.failure: Failure | None = None
        self.error: str | None = None
        self.started = 0.0
        self.duration = 0.0
        self.sent = 0
        self.received = 0
        self.first_byte: float | None = None
        self._samples: list[Sample] = []

    def count(self, sent: int = 0, received: int = 0) -> None:
        """Bytes moved during this operation (called by the measured stream)."""
        self.sent += sent
        self.received += received
        now = self.trace.now()
        if received and self.first_byte is None:
            self.first_byte = now - self.started
        last = self._samples[-1].t if self._samples else -1.0
        if len(self._samples) < MAX_SAMPLES and now - last >= SAMPLE_SPACING:
            self._samples.append(Sample(now, self.sent, self.received))

    def __enter__(self) -> Op:
        self.started = self.trace.now()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.duration = self.trace.now() - self.started
        fact = exc is not None and is_network_fact(exc)
        if exc is not None and isinstance(exc, Exception):
            self.failure, self.error = classify(exc, keep=self.trace.keep | {self.address or ""})
            if not fact:
                self.error = f"probe error: {type(exc).__name__}"
        if exc is None or isinstance(exc, Exception):
            self.trace.append(self._event())
        return fact

    def _event(self) -> TraceEvent:
        if self._samples and self._samples[-1].received != self.received:
            self._samples.append(Sample(self.started + self.duration, self.sent, self.received))
        return TraceEvent(
            operation=self.operation,
            transaction=self.transaction,
            started=self.started,
            duration=self.duration,
            failure=self.failure,
            error=self.error,
            address=self.address,
            port=self.port,
            purpose=self.purpose,
            detail=self.detail,
            bytes_sent=self.sent,
            bytes_received=self.received,
            samples=tuple(self._samples),
        )


class Trace:
    """The record of one endpoint attempt; ``keep`` are addresses evidence may name."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, keep: Collection[str] = ()) -> None:
        self.clock = clock
        self.t0 = clock()
        self.keep = frozenset(keep)
        self._events: list[TraceEvent] = []
        self._transactions = 0
        # transaction -> the connection's local port: in memory only, never in an
        # event or a record, so the raw reset witness can tell this attempt's
        # connections from every other endpoint's to the same address.
        self.local_ports: dict[int, int] = {}

    def now(self) -> float:
        return self.clock() - self.t0

    def transaction(self) -> int:
        self._transactions += 1
        return self._transactions

    def op(
        self,
        operation: Operation,
        *,
        transaction: int,
        address: str | None = None,
        port: int | None = None,
        purpose: Purpose = Purpose.CHECK,
        detail: str = "",
    ) -> Op:
        return Op(self, operation, transaction, address, port, purpose, detail)

    def append(self, event: TraceEvent) -> None:
        self._events.append(event)

    @property
    def events(self) -> tuple[TraceEvent, ...]:
        return tuple(sorted(self._events, key=lambda e: (e.started, e.transaction)))
