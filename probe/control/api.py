"""The control peer's API, version 1: what a probe asks and what it gets back.

A control peer is a msgprobe in an uncensored network (``msgprobe control``),
modelled on OONI's test helper: the probe asks it to measure one endpoint of
the catalog and gets back **summaries, never content**.

    POST /v1/measure
    Authorization: Bearer <token>
    Content-Type: application/json

    {"service": "telegram", "endpoint": "149.154.167.51",
     "checks": ["tcp:443", "tls:443"], "addresses": ["149.154.167.51"]}

- ``endpoint`` is a host name or IP literal exactly as in the control's own
  catalog, and ``service`` the service it belongs to there;
- ``checks`` are labels of that endpoint's configured checks (a subset; empty
  means all of them): nothing else is measured, so no port or URL outside
  the catalog can be asked for;
- ``addresses`` (at most ``MAX_ADDRESSES``) are what the probe resolved; the
  control measures them besides its own answers, and refuses any that is
  private or reserved.

200 answers a ``Summary`` (``to_json``); anything else ``{"error": "..."}``
with 400 (malformed), 401 (no or unknown token), 403 (not in the catalog, a
check it does not have, a reserved address), 413 (body too large), 429
(rate per token), 503 (too many requests in flight), 504 (the measurement
outran the control's deadline), 500 (the control could not measure).

Both sides use these types: the server renders with ``summarize`` and
``Summary.to_json``; the probe reads with ``Summary.from_json``, which
validates strictly (a control can be compromised too).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from probe.analysis.dns import DnsFacts
from probe.measure.transfer import BUDGET_SPENT
from probe.model import EndpointObservations, StunObservation, TransferObservation
from probe.vocab import Purpose, failure_string

PATH = "/v1/measure"
MAX_ADDRESSES = 16
MAX_CHECKS = 16
MAX_BODY = 16 * 1024  # bytes of a request body
MAX_TEXT = 512  # characters of any string in an answer
# Headers worth comparing for the HTTP diff (OONI ts-017's uncommon headers
# are judged from these); never cookies, never anything echoing the requester.
SELECTED_HEADERS = ("server", "content-type", "content-length", "location", "via", "x-powered-by")


class ApiError(ValueError):
    """A request or an answer that does not follow this API."""


def _text(value: object, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ApiError(f"{what}: expected a string of at most {MAX_TEXT} characters")
    return value


def _int(value: object, what: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ApiError(f"{what}: expected a non-negative integer")
    return value


def _list(value: object, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise ApiError(f"{what}: expected a list of at most {limit} items")
    return value


def _address(value: object, what: str) -> str:
    text = _text(value, what) or ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ApiError(f"{what}: {text!r} is not an IP address") from None


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(f"{what}: expected an object")
    return value


@dataclass(frozen=True, slots=True)
class Request:
    service: str
    endpoint: str
    checks: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "endpoint": self.endpoint,
            "checks": list(self.checks),
            "addresses": list(self.addresses),
        }

    @classmethod
    def from_json(cls, data: object) -> Request:
        d = _object(data, "request")
        unknown = set(d) - {"service", "endpoint", "checks", "addresses"}
        if unknown:
            raise ApiError(f"request: unknown field {sorted(unknown)[0]!r}")
        return cls(
            service=_text(d.get("service"), "service") or "",
            endpoint=_text(d.get("endpoint"), "endpoint") or "",
            checks=tuple(
                _text(c, "checks[]") or "" for c in _list(d.get("checks", []), "checks", MAX_CHECKS)
            ),
            addresses=tuple(
                _address(a, "addresses[]") for a in _list(d.get("addresses", []), "addresses", MAX_ADDRESSES)
            ),
        )


@dataclass(frozen=True, slots=True)
class DnsSummary:
    addresses: tuple[str, ...]
    failure: str | None  # the control resolver's failure, A query first


@dataclass(frozen=True, slots=True)
class ConnectSummary:
    address: str
    port: int
    failure: str | None


@dataclass(frozen=True, slots=True)
class TlsSummary:
    address: str
    port: int
    failure: str | None  # verified against the control's trust store: null means valid for the name
    issuer: str | None


@dataclass(frozen=True, slots=True)
class HttpSummary:
    url: str
    address: str
    failure: str | None
    status: int | None
    title: str | None
    body_length: int
    body_sha256: str | None
    body_truncated: bool
    headers: tuple[tuple[str, str], ...]  # SELECTED_HEADERS only, lower-case names
    header_names: tuple[str, ...] = ()  # every header's name (no value): for the uncommon-header test


@dataclass(frozen=True, slots=True)
class TransferSummary:
    """A freeze check's transfer at the control: byte counts and outcome, never content."""

    address: str
    port: int
    sent: int
    received: int
    stalled: bool
    failure: str | None


@dataclass(frozen=True, slots=True)
class StunSummary:
    """A stun check at the control: did the relay answer a Binding Request (never the mapped address)."""

    address: str
    port: int
    answered: bool
    failure: str | None


@dataclass(frozen=True, slots=True)
class Summary:
    dns: DnsSummary | None
    tcp: tuple[ConnectSummary, ...]
    tls: tuple[TlsSummary, ...]
    http: tuple[HttpSummary, ...]
    transfer: tuple[TransferSummary, ...] = ()  # freeze checks (absent from older controls)
    stun: tuple[StunSummary, ...] = ()  # stun checks (absent from older controls)

    def to_json(self) -> dict[str, Any]:
        return {
            "dns": None
            if self.dns is None
            else {"addresses": list(self.dns.addresses), "failure": self.dns.failure},
            "tcp": [{"address": c.address, "port": c.port, "failure": c.failure} for c in self.tcp],
            "tls": [
                {"address": t.address, "port": t.port, "failure": t.failure, "issuer": t.issuer}
                for t in self.tls
            ],
            "http": [
                {
                    "url": h.url,
                    "address": h.address,
                    "failure": h.failure,
                    "status": h.status,
                    "title": h.title,
                    "body_length": h.body_length,
                    "body_sha256": h.body_sha256,
                    "body_truncated": h.body_truncated,
                    "headers": dict(h.headers),
                    "header_names": list(h.header_names),
                }
                for h in self.http
            ],
            "transfer": [
                {
                    "address": t.address,
                    "port": t.port,
                    "sent": t.sent,
                    "received": t.received,
                    "stalled": t.stalled,
                    "failure": t.failure,
                }
                for t in self.transfer
            ],
            "stun": [
                {"address": u.address, "port": u.port, "answered": u.answered, "failure": u.failure}
                for u in self.stun
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> Summary:
        d = _object(data, "summary")
        dns = None
        if d.get("dns") is not None:
            n = _object(d["dns"], "dns")
            dns = DnsSummary(
                tuple(_address(a, "dns.addresses[]") for a in _list(n.get("addresses", []), "dns", 64)),
                _text(n.get("failure"), "dns.failure", optional=True),
            )
        tcp = tuple(
            ConnectSummary(
                _address(c.get("address"), "tcp.address"),
                _int(c.get("port"), "tcp.port") or 0,
                _text(c.get("failure"), "tcp.failure", optional=True),
            )
            for c in (_object(x, "tcp[]") for x in _list(d.get("tcp", []), "tcp", 64))
        )
        tls = tuple(
            TlsSummary(
                _address(t.get("address"), "tls.address"),
                _int(t.get("port"), "tls.port") or 0,
                _text(t.get("failure"), "tls.failure", optional=True),
                _text(t.get("issuer"), "tls.issuer", optional=True),
            )
            for t in (_object(x, "tls[]") for x in _list(d.get("tls", []), "tls", 64))
        )
        http = tuple(
            HttpSummary(
                _text(h.get("url"), "http.url") or "",
                _address(h.get("address"), "http.address"),
                _text(h.get("failure"), "http.failure", optional=True),
                _int(h.get("status"), "http.status", optional=True),
                _text(h.get("title"), "http.title", optional=True),
                _int(h.get("body_length"), "http.body_length") or 0,
                _text(h.get("body_sha256"), "http.body_sha256", optional=True),
                bool(h.get("body_truncated", False)),
                tuple(
                    (name, _text(value, "http.headers") or "")
                    for name, value in _object(h.get("headers", {}), "http.headers").items()
                    if name in SELECTED_HEADERS
                ),
                tuple(
                    (_text(n, "http.header_names[]") or "").lower()
                    for n in _list(h.get("header_names", []), "http.header_names", 64)
                ),
            )
            for h in (_object(x, "http[]") for x in _list(d.get("http", []), "http", 64))
        )
        transfer = tuple(
            TransferSummary(
                _address(t.get("address"), "transfer.address"),
                _int(t.get("port"), "transfer.port") or 0,
                _int(t.get("sent"), "transfer.sent") or 0,
                _int(t.get("received"), "transfer.received") or 0,
                t.get("stalled") is True,
                _text(t.get("failure"), "transfer.failure", optional=True),
            )
            for t in (_object(x, "transfer[]") for x in _list(d.get("transfer", []), "transfer", 64))
        )
        stun = tuple(
            StunSummary(
                _address(u.get("address"), "stun.address"),
                _int(u.get("port"), "stun.port") or 0,
                u.get("answered") is True,
                _text(u.get("failure"), "stun.failure", optional=True),
            )
            for u in (_object(x, "stun[]") for x in _list(d.get("stun", []), "stun", 64))
        )
        return cls(dns, tcp, tls, http, transfer, stun)


@dataclass(frozen=True, slots=True)
class Answer:
    """One peer's answer as the probe recorded it: a summary, or why there is none."""

    peer: str  # the peer's label (host:port)
    summary: Summary | None
    error: str | None = None  # "HTTP 403: endpoint not in the control's catalog", "generic_timeout_error"

    @property
    def reachable(self) -> bool:
        return self.summary is not None


def summarize(obs: EndpointObservations) -> Summary:
    """What a control tells a probe about its measurement: no body, no local address."""
    own = DnsFacts.of(obs.dns)  # "probe" role: the control's own resolver, from where it stands
    dns = None
    if own.probe:
        failed = own.failed
        dns = DnsSummary(own.addresses, failure_string(failed.failure, failed.error) if failed else None)
    tcp = tuple(
        ConnectSummary(o.address, o.port, failure_string(o.failure, o.error))
        for o in obs.tcp
        if o.purpose is Purpose.CHECK
    )
    tls = tuple(
        TlsSummary(
            t.address,
            t.port,
            failure_string(t.failure, t.error),
            t.certificate.issuer[:MAX_TEXT] if t.certificate else None,
        )
        for t in obs.tls
        if t.purpose is Purpose.CHECK
    )
    http = tuple(
        HttpSummary(
            h.url,
            h.address,
            failure_string(h.failure, h.error),
            h.status,
            h.title,
            h.body_length,
            hashlib.sha256(h.body).hexdigest() if h.body else None,
            h.body_truncated,
            tuple((n, v[:MAX_TEXT]) for n, v in h.headers if n in SELECTED_HEADERS),
            tuple(dict.fromkeys(n for n, _ in h.headers))[:64],
        )
        for h in obs.http
        if not h.decoy
    )
    transfer = tuple(
        TransferSummary(t.address, t.port, t.sent, t.received, t.stalled, failure_string(t.failure, t.error))
        for t in obs.other
        if isinstance(t, TransferObservation) and t.purpose is Purpose.CHECK and t.ended != BUDGET_SPENT
    )[:64]
    stun = tuple(
        StunSummary(o.address, o.port, o.relay.answered, failure_string(o.relay.failure, o.relay.error))
        for o in obs.other
        if isinstance(o, StunObservation)
    )[:64]
    return Summary(dns, tcp, tls, http, transfer, stun)
