"""The raw witnesses' place in an endpoint attempt (``raw.packets``).

A capture runs around each address's checks (forged resets), and a
suspect DNS answer is asked once more with a capture (injected replies).
Without NET_RAW (or scapy, or libpcap) nothing is captured and each witness
that would have run is recorded with the reason, so its row reads
``error: needs NET_RAW`` while every other check runs as before. A raw step
that fails for any other reason is contained the same way: logged, recorded,
and no other check loses its measurement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from probe.analysis.needs import needs_packet_dns
from probe.checks.spec import Recorded
from probe.config.model import Endpoint
from probe.measure.dns import DnsTarget
from probe.measure.toolkit import Toolkit
from probe.measure.trace import Trace
from probe.model import DnsObservation
from probe.model_packets import RawDns, RawReset
from probe.raw.reset_witness import AddressCapture  # stdlib only: scapy loads when a capture starts
from probe.vocab import Failure, Operation, Purpose

log = logging.getLogger("msgprobe")


def _failed(step: str, exc: BaseException) -> str:
    log.error("raw check failed", exc_info=exc, extra={"fields": {"step": step}})
    return f"raw check failed: {type(exc).__name__}"


# A capture, why it would not start, or None (raw off, or not capable: recorded at the end).
Started = AddressCapture | str | None


async def start_capture(kit: Toolkit, address: str) -> Started:
    if not kit.packets:
        return None
    try:
        return await AddressCapture.start(address)
    except Exception as exc:
        return _failed("reset capture", exc)


def _resets_seen(address: str, recorded: Recorded) -> list[tuple[int, str, bool]]:
    """(port, step, trigger sent) of each check connection here that ended in a reset."""
    here = [o for o in recorded.tcp if o.address == address and o.purpose is Purpose.CHECK]
    seen = [(o.port, "connect", False) for o in here if o.failure is Failure.CONNECTION_REFUSED]
    shakes = [o for o in recorded.tls if o.address == address and o.purpose is Purpose.CHECK]
    seen += [(o.port, "tls", True) for o in shakes if o.failure is Failure.CONNECTION_RESET]
    requests = [o for o in recorded.http if o.address == address and not o.decoy]
    seen += [(_port(o.url), "http", True) for o in requests if o.failure is Failure.CONNECTION_RESET]
    return seen


def _port(url: str) -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def drop_capture(capture: Started) -> None:
    """A cancelled or failed attempt: stop capturing, parse nothing."""
    if isinstance(capture, AddressCapture):
        capture.close()


async def finish_capture(
    kit: Toolkit, trace: Trace, address: str, capture: Started, recorded: Recorded
) -> None:
    from_capture: list[RawReset] = []
    problem = kit.resources.raw_problem if kit.config.raw.packets else None
    if isinstance(capture, str):
        problem = capture
    elif capture is not None:
        try:
            from_capture = await capture.resets(trace.events, trace.local_ports)
        except Exception as exc:
            problem = _failed("reset capture", exc)
        finally:
            capture.close()
    if problem is None:
        recorded.other.extend(from_capture)
        return
    recorded.other.extend(
        RawReset("raw_reset", address, port, step, Purpose.CHECK.value, sent, failure=problem)
        for port, step, sent in _resets_seen(address, recorded)
    )


def _qtype(dns: Sequence[DnsObservation]) -> str:
    """A, unless only the AAAA query got addresses here."""
    answered = {o.qtype for o in dns if o.role == "probe" and o.addresses}
    return "AAAA" if answered == {"AAAA"} else "A"


async def dns_step(
    kit: Toolkit, trace: Trace, endpoint: Endpoint, dns: Sequence[DnsObservation], recorded: Recorded
) -> None:
    raw = kit.config.raw
    if not raw.packets or endpoint.is_ip:
        return
    if not needs_packet_dns(endpoint, dns, recorded.tcp, kit.config.test_networks):
        return
    target = next((t for t in kit.resolvers if t.transport == "udp"), None)
    if target is None:
        return  # DoH and DNS over TCP: no injector races an answer on a connection
    base = RawDns("raw_dns", endpoint.host, _qtype(dns), target.spec.raw, target.host, kit.config.canary_name)
    if kit.resources.raw_problem is not None:
        recorded.other.append(_with_failure(base, kit.resources.raw_problem))
        return
    async with kit.raw_slots:
        recorded.other.append(await _dns_witness(kit, trace, target, base))


async def _dns_witness(kit: Toolkit, trace: Trace, target: DnsTarget, base: RawDns) -> RawDns:
    from probe.raw.dns_witness import dns_witness

    witness = base
    with trace.op(
        Operation.RAW_DNS,
        transaction=trace.transaction(),
        address=target.host,
        port=target.port,
        detail=base.hostname,
    ) as op:
        try:
            witness = await dns_witness(
                resolver=target.spec.raw,
                address=target.host,
                port=target.port,
                hostname=base.hostname,
                qtype=base.qtype,
                canary=kit.config.canary_name,
                no_resolver=kit.config.raw.no_resolver,
                timeout=kit.config.timeouts.dns,
                window=kit.config.injection_window,
            )
        except Exception as exc:
            if isinstance(exc, OSError):
                raise  # a network fact: the trace records it and the witness says so below
            witness = _with_failure(base, _failed("dns witness", exc))
    if op.failure is not None:
        return _with_failure(base, f"raw check failed: {op.failure}")
    return witness


def _with_failure(base: RawDns, failure: str) -> RawDns:
    return replace(base, failure=failure)
