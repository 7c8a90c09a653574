"""What a control agrees to measure: decided from the request and its own
config alone, before any packet leaves.

A control must never become an open proxy or a port scanner (DESIGN,
Controls). oohelperd lets anyone ask for TCP and TLS to any non-bogon
address on the URL's port; a control here narrows that to its catalog:

- the endpoint (host name or IP literal, exactly as written) must be in the
  catalog under the service named;
- every check asked for must be one of that endpoint's configured checks,
  by label (``tcp:443``, ``http:https://…``): a port or URL outside the
  catalog cannot be asked for, and an empty list means all of them;
- every address the probe passes (what its resolver said) must be ordinary
  public space, unless the control's config declares it a test network.

What remains possible is "can the control reach this public address on a
port of its catalog": the oracle OONI's helper also is, bounded per token by
``limits``.

A ``freeze:PORT`` check is accepted like any other configured check: the
control then moves ~40 KB each way to that catalog address and answers the
byte counts only. Every such transfer is reserved from the control's own
daily byte budget (``throttle.daily_bytes``), so no number of probes or
tokens can make it move more than that in a day; past it, the summary has
no transfer and the probe has no control witness for a freeze.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from probe.addresses import is_bogon
from probe.config.model import Config, Endpoint, Service
from probe.control.api import Request


class Result(StrEnum):
    """How a request ended: the ``result`` label of the control's request counter."""

    OK = "ok"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    BAD_REQUEST = "bad_request"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    result: Result
    message: str


@dataclass(frozen=True, slots=True)
class Job:
    """What the control will measure: a catalog endpoint narrowed to the checks asked for."""

    service: Service
    endpoint: Endpoint
    addresses: tuple[str, ...]


def _forbidden(message: str) -> Refusal:
    return Refusal(403, Result.FORBIDDEN, message)


def authorize(config: Config, request: Request) -> Job | Refusal:
    service = next((s for s in config.services if s.name == request.service), None)
    endpoint = None
    if service is not None:
        endpoint = next((e for e in service.endpoints if e.host == request.endpoint), None)
    if service is None or endpoint is None:
        return _forbidden(
            f"endpoint {request.endpoint!r} of service {request.service!r} is not in this control's catalog"
        )
    labels = [c.label for c in endpoint.checks]
    unknown = [c for c in request.checks if c not in labels]
    if unknown:
        configured = ", ".join(labels)
        return _forbidden(f"check {unknown[0]!r} is not configured for {endpoint.host} (only {configured})")
    reserved = [a for a in request.addresses if is_bogon(a, config.test_networks)]
    if reserved:
        return _forbidden(f"address {reserved[0]} is private or reserved: this control does not measure it")
    if request.checks:
        wanted = set(request.checks)
        endpoint = replace(endpoint, checks=tuple(c for c in endpoint.checks if c.label in wanted))
    return Job(service, endpoint, tuple(dict.fromkeys(request.addresses)))
