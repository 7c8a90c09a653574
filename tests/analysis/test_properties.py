"""The analysis on arbitrary observations: it never raises, and it never says
``blocked`` without a witness (a decoy, a control, a fingerprint, a canary…).

The observations are drawn from the same small world the verdict tests use
(one name, a few addresses in and out of the expected prefix, every failure
string, hostile titles and bodies), so the generator reaches the rules
rather than only random noise.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from probe.analysis.endpoint import AnalysisInput
from probe.checks.analyze import analyze_endpoint
from probe.control.api import Answer, ConnectSummary, DnsSummary, HttpSummary, Summary, TlsSummary
from probe.model import (
    Certificate,
    DnsObservation,
    DnsReply,
    EndpointObservations,
    HttpHop,
    HttpObservation,
    TcpObservation,
    TlsObservation,
)
from probe.vocab import Failure, Purpose, Status
from tests.analysis.observations import ADDR, ADDR2, FINGERPRINTS, HOST, endpoint, service

ADDRESSES = st.sampled_from([ADDR, ADDR2, "198.51.100.9", "10.10.34.35", "127.0.0.1", "2001:db8::1"])
FAILURES = st.one_of(st.none(), st.sampled_from(list(Failure)))
TIMES = st.floats(0, 30, allow_nan=False)
PORTS = st.sampled_from([443, 80])
URLS = st.sampled_from([f"https://{HOST}/", f"http://{HOST}/"])
TEXT = st.text(max_size=40)


def _dns() -> st.SearchStrategy[DnsObservation]:
    return st.builds(
        DnsObservation,
        hostname=st.sampled_from([HOST, "example.com"]),
        qtype=st.sampled_from(["A", "AAAA"]),
        resolver=st.sampled_from(["127.0.0.1:53", "https://127.0.0.2/dns-query", "system"]),
        transport=st.sampled_from(["udp", "doh", "tcp"]),
        role=st.sampled_from(["probe", "control", "canary"]),
        started=TIMES,
        duration=TIMES,
        failure=FAILURES,
        rcode=st.sampled_from([None, "NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL"]),
        addresses=st.lists(ADDRESSES, max_size=3).map(tuple),
        extra_replies=st.lists(
            st.builds(
                DnsReply,
                rcode=st.sampled_from(["NOERROR", "NXDOMAIN"]),
                addresses=st.lists(ADDRESSES, max_size=2).map(tuple),
                t=TIMES,
                transmissions=st.integers(1, 3),
            ),
            max_size=2,
        ).map(tuple),
        transmissions=st.integers(1, 3),
    )


def _certificate() -> st.SearchStrategy[Certificate | None]:
    return st.one_of(
        st.none(),
        st.builds(
            Certificate,
            subject=TEXT,
            issuer=st.sampled_from(["CN=Real CA", "CN=msgprobe testbed interception CA", "x"]),
            not_before=TEXT,
            not_after=TEXT,
            names=st.lists(st.sampled_from([HOST, "*.example", "other.test"]), max_size=2).map(tuple),
            sha256=TEXT,
        ),
    )


def _tls() -> st.SearchStrategy[TlsObservation]:
    return st.builds(
        TlsObservation,
        address=ADDRESSES,
        port=PORTS,
        sni=st.sampled_from([HOST, "example.com"]),
        decoy=st.booleans(),
        started=TIMES,
        duration=TIMES,
        failure=FAILURES,
        certificate=_certificate(),
        certificate_error=st.one_of(st.none(), TEXT),
        purpose=st.sampled_from(list(Purpose)),
    )


def _http() -> st.SearchStrategy[HttpObservation]:
    return st.builds(
        HttpObservation,
        url=URLS,
        method=st.sampled_from(["GET", "POST"]),
        address=ADDRESSES,
        host=st.sampled_from([HOST, "example.com"]),
        decoy=st.booleans(),
        started=TIMES,
        duration=TIMES,
        failure=FAILURES,
        status=st.one_of(st.none(), st.sampled_from([200, 302, 403, 451, 500])),
        headers=st.lists(
            st.tuples(st.sampled_from(["location", "server", "x-client"]), TEXT), max_size=2
        ).map(tuple),
        body=st.one_of(st.just(b""), st.binary(max_size=200), st.just("Доступ ограничен".encode())),
        body_length=st.integers(0, 1 << 20),
        body_truncated=st.booleans(),
        title=st.one_of(st.none(), TEXT),
        redirects=st.lists(
            st.builds(
                HttpHop, url=URLS, status=st.sampled_from([301, 302]), location=st.one_of(st.none(), TEXT)
            ),
            max_size=2,
        ).map(tuple),
    )


def _answers() -> st.SearchStrategy[tuple[Answer, ...]]:
    summary = st.builds(
        Summary,
        dns=st.builds(DnsSummary, addresses=st.lists(ADDRESSES, max_size=2).map(tuple), failure=st.none()),
        tcp=st.lists(
            st.builds(ConnectSummary, address=ADDRESSES, port=PORTS, failure=st.one_of(st.none(), TEXT)),
            max_size=2,
        ).map(tuple),
        tls=st.lists(
            st.builds(
                TlsSummary,
                address=ADDRESSES,
                port=PORTS,
                failure=st.one_of(st.none(), st.just("ssl_unknown_authority")),
                issuer=st.just("CN=Real CA"),
            ),
            max_size=1,
        ).map(tuple),
        http=st.lists(
            st.builds(
                HttpSummary,
                url=URLS,
                address=ADDRESSES,
                failure=st.none(),
                status=st.sampled_from([200, 403]),
                title=st.one_of(st.none(), TEXT),
                body_length=st.integers(0, 5000),
                body_sha256=TEXT,
                body_truncated=st.booleans(),
                headers=st.just(()),
            ),
            max_size=1,
        ).map(tuple),
    )
    answer = st.builds(
        Answer, peer=st.just("control.example:9491"), summary=st.one_of(st.none(), summary), error=st.none()
    )
    return st.lists(answer, max_size=2).map(tuple)


CHECKS = st.lists(
    st.sampled_from(["dns", "tcp:443", "tls:443", "tcp:80", f"http:https://{HOST}/", f"http:http://{HOST}/"]),
    min_size=1,
    max_size=4,
    unique=True,
)


# A longer search on demand: MSGPROBE_EXAMPLES=5000 make test.
@settings(max_examples=int(os.environ.get("MSGPROBE_EXAMPLES", "300")), deadline=None)
@given(
    checks=CHECKS,
    dns_obs=st.lists(_dns(), max_size=5),
    tcp_obs=st.lists(
        st.builds(
            TcpObservation,
            address=ADDRESSES,
            port=PORTS,
            started=TIMES,
            duration=TIMES,
            failure=FAILURES,
            purpose=st.sampled_from(list(Purpose)),
        ),
        max_size=4,
    ),
    tls_obs=st.lists(_tls(), max_size=3),
    http_obs=st.lists(_http(), max_size=3),
    answers=_answers(),
)
def test_no_block_without_a_witness_and_no_crash(
    checks: list[str],
    dns_obs: list[DnsObservation],
    tcp_obs: list[TcpObservation],
    tls_obs: list[TlsObservation],
    http_obs: list[HttpObservation],
    answers: tuple[Answer, ...],
) -> None:
    ep = endpoint(*checks)
    obs = EndpointObservations(
        "chat", HOST, tuple(dns_obs), tuple(tcp_obs), tuple(tls_obs), tuple(http_obs), controls=answers
    )
    result = analyze_endpoint(obs, AnalysisInput(service(ep), ep, FINGERPRINTS))
    verdict = result.verdict
    if verdict.status is Status.BLOCKED:
        assert verdict.method is not None
        assert verdict.witnesses or verdict.fingerprint, (verdict.method, verdict.evidence)
    else:
        assert verdict.method is None
