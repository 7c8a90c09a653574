"""Snapshots built by hand for the exporter tests: what the runner would publish.

``scenario()`` is one of each thing the exporter must show: a confirmed
block, a raw block not yet confirmed, an unreachable endpoint whose later
checks were skipped, a service that is down, an endpoint with no result yet
(added by a reload), a legacy endpoint, counters, histograms and reloads.
``catalog()`` is a catalog-sized snapshot for render timing.
"""

from __future__ import annotations

import dataclasses

from probe.analysis.censor_hop import CensorHop
from probe.model import (
    Certificate,
    CheckResult,
    DnsObservation,
    EndpointObservations,
    EndpointResult,
    HttpObservation,
    TcpObservation,
    TlsObservation,
    Verdict,
    Witness,
)
from probe.state import (
    DURATION_BUCKETS,
    CensorTrace,
    CheckStats,
    EvidenceHealth,
    FailureRecord,
    Histogram,
    ServiceView,
    Snapshot,
    TrackedEndpoint,
)
from probe.vocab import EndpointState, Failure, Method, Regime, Status

NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z
STARTED = NOW - 3600
DNS_METHODS = tuple(m for m in Method if m.value.startswith("dns."))
TLS_METHODS = (*DNS_METHODS, Method.TCP_TIMEOUT, Method.TCP_REFUSED, Method.TLS_RESET, Method.TLS_TIMEOUT)
FULL_METHODS = (
    *TLS_METHODS,
    Method.TLS_MITM,
    Method.HTTP_RESET,
    Method.HTTP_TIMEOUT,
    Method.HTTP_BLOCKPAGE,
    Method.HTTP_REDIRECT,
)
BLOCKPAGE_BODY = b"<html><title>Access denied</title>This site is blocked by order</html>"
# Free text a censor controls, to check escaping on the page.
HOSTILE_EVIDENCE = 'blockpage "Access denied" <script>alert(1)</script> & more'


def dns_obs(host: str, addresses: tuple[str, ...] = (), failure: Failure | None = None) -> DnsObservation:
    rcode = "NXDOMAIN" if failure is Failure.DNS_NXDOMAIN else "NOERROR"
    return DnsObservation(
        host, "A", "127.0.0.1:5353", "udp", "probe", 0.0, 0.0123456, failure, None, rcode, addresses
    )


def tls_reset_result(service: str, host: str, address: str) -> EndpointResult:
    obs = EndpointObservations(
        service,
        host,
        dns=(dns_obs(host, (address,)),),
        tcp=(TcpObservation(address, 443, 0.013, 0.0021, None),),
        tls=(
            TlsObservation(
                address, 443, host, False, 0.016, 0.0305, Failure.CONNECTION_RESET, "reset by peer"
            ),
            TlsObservation(
                address,
                443,
                "example.com",
                True,
                0.05,
                0.02,
                None,
                None,
                "TLSv1.3",
                "TLS_AES_128_GCM_SHA256",
                Certificate(
                    "CN=example.com", "CN=Test CA", "2024-01-01", "2025-01-01", ("example.com",), "ab" * 32
                ),
            ),
        ),
        asns=((address, 64500),),
    )
    checks = (
        CheckResult(
            "dns", True, None, 0.0123456, None, {"resolver": "127.0.0.1:5353", "addresses": [address]}
        ),
        CheckResult("tcp:443", True, None, 0.0021, address),
        CheckResult(
            "tls:443", False, "connection_reset", 0.0305, address, {"sni": host, "decoy_sni": "example.com"}
        ),
    )
    verdict = Verdict(
        Status.BLOCKED,
        Method.TLS_RESET,
        "connection_reset",
        f"reset after ClientHello with SNI {host}; decoy SNI example.com completes",
        None,
        address,
        (Witness("decoy", "the same handshake with SNI example.com completes"),),
    )
    return EndpointResult(service, host, verdict, checks, obs)


def ok_result(service: str, host: str, address: str, *, http: bool = False) -> EndpointResult:
    rows = [
        CheckResult("dns", True, None, 0.01, None, {"addresses": [address]}),
        CheckResult("tcp:443", True, None, 0.002, address),
        CheckResult("tls:443", True, None, 0.02, address, {"sni": host, "version": "TLSv1.3"}),
    ]
    https: tuple[HttpObservation, ...] = ()
    if http:
        rows.append(CheckResult(f"http:https://{host}/", True, None, 0.04, address, {"status": 200}))
        https = (
            HttpObservation(f"https://{host}/", "GET", address, host, False, 0.05, 0.04, None, status=200),
        )
    obs = EndpointObservations(
        service,
        host,
        dns=(dns_obs(host, (address,)),),
        tcp=(TcpObservation(address, 443, 0.01, 0.002, None),),
        tls=(TlsObservation(address, 443, host, False, 0.012, 0.02, None, None, "TLSv1.3"),),
        http=https,
    )
    return EndpointResult(service, host, Verdict(Status.OK), tuple(rows), obs)


def nxdomain_result(service: str, host: str) -> EndpointResult:
    obs = EndpointObservations(service, host, dns=(dns_obs(host, failure=Failure.DNS_NXDOMAIN),))
    verdict = Verdict(
        Status.BLOCKED, Method.DNS_NXDOMAIN, "dns_nxdomain_error", f"{host}: NXDOMAIN; control resolves it"
    )
    return EndpointResult(
        service, host, verdict, (CheckResult("dns", False, "dns_nxdomain_error", 0.004),), obs
    )


def blockpage_result(service: str, host: str, address: str) -> EndpointResult:
    url = f"https://{host}/"
    http = HttpObservation(
        url,
        "GET",
        address,
        host,
        False,
        0.06,
        0.0301,
        None,
        status=403,
        headers=(("content-type", "text/html"),),
        body=BLOCKPAGE_BODY,
        body_length=len(BLOCKPAGE_BODY),
        title="Access denied",
    )
    obs = EndpointObservations(
        service,
        host,
        dns=(dns_obs(host, (address,)),),
        tcp=(TcpObservation(address, 443, 0.01, 0.002, None),),
        tls=(TlsObservation(address, 443, host, False, 0.012, 0.02, None, None, "TLSv1.3"),),
        http=(http,),
    )
    rows = (
        CheckResult("dns", True, None, 0.01),
        CheckResult("tcp:443", True, None, 0.002, address),
        CheckResult("tls:443", True, None, 0.02, address),
        CheckResult(f"http:{url}", False, None, 0.0301, address, {"status": 403, "title": "Access denied"}),
    )
    verdict = Verdict(
        Status.BLOCKED, Method.HTTP_BLOCKPAGE, None, HOSTILE_EVIDENCE, "test-blockpage", address
    )
    return EndpointResult(service, host, verdict, rows, obs)


def timeout_result(service: str, host: str, address: str) -> EndpointResult:
    obs = EndpointObservations(
        service,
        host,
        dns=(dns_obs(host, (address,)),),
        tcp=(TcpObservation(address, 443, 0.01, 5.0, Failure.TIMEOUT),),
    )
    rows = (
        CheckResult("dns", True, None, 0.01),
        CheckResult("tcp:443", False, "generic_timeout_error", 5.0, address),
    )
    verdict = Verdict(
        Status.UNREACHABLE,
        None,
        "generic_timeout_error",
        f"tcp {address}:443 timed out; no control to compare",
    )
    return EndpointResult(service, host, verdict, rows, obs)


def down_result(service: str, host: str, address: str) -> EndpointResult:
    obs = EndpointObservations(
        service,
        host,
        dns=(dns_obs(host, (address,)),),
        tcp=(TcpObservation(address, 443, 0.01, 0.001, Failure.CONNECTION_REFUSED),),
    )
    rows = (
        CheckResult("dns", True, None, 0.01),
        CheckResult("tcp:443", False, "connection_refused", 0.001, address),
    )
    verdict = Verdict(Status.DOWN, None, "connection_refused", "refused here and at the control")
    return EndpointResult(service, host, verdict, rows, obs)


def histogram(*durations: float) -> Histogram:
    counts = [sum(1 for d in durations if d <= b) for b in DURATION_BUCKETS]
    return Histogram((*counts, len(durations)), sum(durations), len(durations))


TLS_CHECKS = ("dns", "tcp:443", "tls:443")


def scenario() -> Snapshot:
    wechat_blocked = tls_reset_result("wechat", "short.weixin.qq.com", "203.0.113.10")
    wechat_ok = ok_result("wechat", "dns.weixin.qq.com", "203.0.113.11")
    line_raw = nxdomain_result("line", "gd2.line.naver.jp")
    line_page = blockpage_result("line", "line.me", "203.0.113.20")
    zello = timeout_result("zello", "zello.io", "198.51.100.7")
    bbm = down_result("bbm", "bbm.example", "198.51.100.9")
    endpoints = (
        TrackedEndpoint(
            "wechat",
            "short.weixin.qq.com",
            EndpointState.ACTIVE,
            Status.BLOCKED,
            Method.TLS_RESET,
            NOW - 600,
            wechat_blocked,
            TLS_CHECKS,
            TLS_METHODS,
            (
                FailureRecord(NOW - 900, Status.BLOCKED, Method.TLS_RESET, "connection_reset", "first reset"),
                FailureRecord(
                    NOW - 600, Status.BLOCKED, Method.TLS_RESET, "connection_reset", "second reset"
                ),
            ),
        ),
        TrackedEndpoint(
            "wechat",
            "dns.weixin.qq.com",
            EndpointState.ACTIVE,
            Status.OK,
            None,
            NOW - 3000,
            wechat_ok,
            TLS_CHECKS,
            TLS_METHODS,
        ),
        # Raw blocked once, not yet confirmed: status stays ok, raw says blocked.
        TrackedEndpoint(
            "line",
            "gd2.line.naver.jp",
            EndpointState.ACTIVE,
            Status.OK,
            None,
            NOW - 3000,
            line_raw,
            TLS_CHECKS,
            TLS_METHODS,
            (
                FailureRecord(
                    NOW - 10, Status.BLOCKED, Method.DNS_NXDOMAIN, "dns_nxdomain_error", "NXDOMAIN once"
                ),
            ),
        ),
        TrackedEndpoint(
            "line",
            "line.me",
            EndpointState.ACTIVE,
            Status.BLOCKED,
            Method.HTTP_BLOCKPAGE,
            NOW - 1200,
            line_page,
            (*TLS_CHECKS, "http:https://line.me/"),
            FULL_METHODS,
            (FailureRecord(NOW - 1200, Status.BLOCKED, Method.HTTP_BLOCKPAGE, None, HOSTILE_EVIDENCE),),
        ),
        # Added by a reload: configured, never measured.
        TrackedEndpoint(
            "line",
            "obs.line-scdn.net",
            EndpointState.LEGACY,
            Status.UNKNOWN,
            None,
            None,
            None,
            TLS_CHECKS,
            TLS_METHODS,
        ),
        TrackedEndpoint(
            "zello",
            "zello.io",
            EndpointState.ACTIVE,
            Status.UNREACHABLE,
            None,
            NOW - 1800,
            zello,
            TLS_CHECKS,
            TLS_METHODS,
            (FailureRecord(NOW - 1800, Status.UNREACHABLE, None, "generic_timeout_error", "tcp timed out"),),
        ),
        TrackedEndpoint(
            "bbm",
            "bbm.example",
            EndpointState.ACTIVE,
            Status.DOWN,
            None,
            NOW - 2400,
            bbm,
            ("dns", "tcp:443"),
            (Method.TCP_TIMEOUT, Method.TCP_REFUSED),
        ),
    )
    services = (
        ServiceView("wechat", "WeChat", Status.BLOCKED, True),
        ServiceView("line", "LINE", Status.BLOCKED, True),
        ServiceView("zello", "Zello", Status.UNREACHABLE, False),
        ServiceView("bbm", "BBM", Status.DOWN, False),
    )
    stats = CheckStats(
        totals={
            ("wechat", "tls:443", "connection_reset"): 3,
            ("wechat", "tls:443", "none"): 9,
            ("zello", "tcp:443", "generic_timeout_error"): 2,
            # A detail that escaped the tracker: must be reduced to the vocabulary.
            ("zello", "dns", "unknown_failure: weird 10.1.2.3"): 1,
        },
        durations={
            ("wechat", "tls:443"): histogram(0.03, 0.02, 0.04, 0.3),
            ("zello", "tcp:443"): histogram(5.0, 5.0),
        },
    )
    return Snapshot(
        version="0.1.0",
        probe_id="vol-7",
        country="ZZ",
        asn="AS64500",
        started=STARTED,
        cycles=12,
        last_cycle_start=NOW - 5.5,
        last_cycle_end=NOW - 2.5,
        last_cycle_duration=3.0,
        vantage_online=True,
        regime=Regime.ONLINE,
        canaries={"max.example": True, "ya.example": False},
        endpoints=endpoints,
        services=services,
        stats=stats,
        reload_ok=False,
        reload_time=NOW - 1000,
        reloads={"success": 2, "failure": 1},
        config_path="/etc/msgprobe/probe.yaml",
        budget_used=1_234_567,
        budget_limit=5_000_000,
        evidence=EvidenceHealth(
            records=42, write_errors=1, dropped=3, bytes=123_456, last_error="No space left on device"
        ),
        controls={
            "control-a.example:9491": (True, None),
            "control-b.example:9491": (False, "connection_reset"),
        },
    )


def empty() -> Snapshot:
    """Just started: nothing measured, nothing configured yet in the snapshot."""
    return Snapshot(version="0.1.0", probe_id="vol-7", country="ZZ", asn="AS64500", started=STARTED)


def catalog(services: int = 14, per_service: int = 8) -> Snapshot:
    """A catalog-sized snapshot (default 112 endpoints), every one measured, a few blocked."""
    endpoints = []
    views = []
    durations: dict[tuple[str, str], Histogram] = {}
    totals: dict[tuple[str, str, str], int] = {}
    for s in range(services):
        name = f"service{s:02d}"
        for i in range(per_service):
            host = f"e{i}.{name}.example"
            address = f"203.0.113.{(s * per_service + i) % 250 + 1}"
            blocked = i == 0 and s % 3 == 0
            result = (
                tls_reset_result(name, host, address)
                if blocked
                else ok_result(name, host, address, http=i == 1)
            )
            checks = (*TLS_CHECKS, f"http:https://{host}/") if i == 1 else TLS_CHECKS
            endpoints.append(
                TrackedEndpoint(
                    name,
                    host,
                    EndpointState.ACTIVE,
                    Status.BLOCKED if blocked else Status.OK,
                    Method.TLS_RESET if blocked else None,
                    NOW - 600,
                    result,
                    checks,
                    FULL_METHODS if i == 1 else TLS_METHODS,
                )
            )
            for check in checks:
                durations[(name, check)] = histogram(0.01, 0.02, 0.3)
                totals[(name, check, "none")] = 40
        totals[(name, "tls:443", "connection_reset")] = 3
        views.append(ServiceView(name, name.title(), Status.BLOCKED if s % 3 == 0 else Status.OK, s % 3 == 0))
    return Snapshot(
        version="0.1.0",
        probe_id="bench",
        country="ZZ",
        asn="AS64500",
        started=STARTED,
        cycles=100,
        last_cycle_start=NOW - 10,
        last_cycle_end=NOW - 8,
        last_cycle_duration=2.0,
        vantage_online=True,
        endpoints=tuple(endpoints),
        services=tuple(views),
        stats=CheckStats(totals, durations),
    )


def packets() -> Snapshot:
    """``scenario()`` with packet witnesses: a forged reset and the censor at hop 3 for the
    blocked WeChat endpoint, a traceroute that found no hop for line.me, a clean DNS check
    for zello.io, and none for the others (no raw check ran: no series)."""
    base = scenario()
    witnesses = {
        "short.weixin.qq.com": dict(
            packets_checked=("dns", "reset"),
            packets_injected=("reset",),
            censor=CensorTrace(NOW - 7200, CensorHop(3, "reset", "10.79.2.2", "10.79.3.1")),
        ),
        "line.me": dict(censor=CensorTrace(NOW - 90_000, None)),
        "zello.io": dict(packets_checked=("dns",)),
    }
    endpoints = tuple(
        dataclasses.replace(e, **witnesses[e.endpoint]) if e.endpoint in witnesses else e  # type: ignore[arg-type]
        for e in base.endpoints
    )
    return dataclasses.replace(base, endpoints=endpoints, raw_enabled=True)
