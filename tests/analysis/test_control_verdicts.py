"""Verdicts with control peers as witnesses, from recorded answers (pure)."""

from __future__ import annotations

from dataclasses import replace

from probe.analysis.endpoint import AnalysisInput
from probe.checks.analyze import analyze_endpoint
from probe.control.api import Answer, ConnectSummary, DnsSummary, HttpSummary, Summary, TlsSummary
from probe.model import EndpointObservations, EndpointResult
from probe.vocab import Failure, Method, Status
from tests.analysis.observations import ADDR, FINGERPRINTS, HOST, endpoint, http, resolved, service, tcp, tls

PLAIN = f"http://{HOST}/"
PAGE = b"<html><head><title>Chat</title></head><body>" + b"x" * 2000 + b"</body></html>"


def summary(
    *,
    tcp_failure: str | None = None,
    tls_failure: str | None = None,
    status: int = 200,
    length: int = len(PAGE),
    title: str | None = "Chat",
    names: tuple[str, ...] = ("content-type",),
    truncated: bool = False,
) -> Summary:
    return Summary(
        DnsSummary((ADDR,), None),
        (ConnectSummary(ADDR, 443, tcp_failure), ConnectSummary(ADDR, 80, tcp_failure)),
        (TlsSummary(ADDR, 443, tls_failure, "CN=Real CA"),),
        (HttpSummary(PLAIN, ADDR, None, status, title, length, "ab", truncated, (), names),),
    )


def peer(s: Summary | None, error: str | None = None) -> Answer:
    return Answer("control.example:9491", s, error)


def analysed(obs: EndpointObservations, *checks: str, answers: tuple[Answer, ...] = ()) -> EndpointResult:
    ep = endpoint(*checks)
    return analyze_endpoint(replace(obs, controls=answers), AnalysisInput(service(ep), ep, FINGERPRINTS))


def observed(*, tcp_obs=(), tls_obs=(), http_obs=()) -> EndpointObservations:  # type: ignore[no-untyped-def]
    return EndpointObservations("chat", HOST, resolved(ADDR), tuple(tcp_obs), tuple(tls_obs), tuple(http_obs))


def test_syn_dropped_here_while_a_control_connects_is_tcp_timeout() -> None:
    obs = observed(tcp_obs=[tcp(failure=Failure.TIMEOUT)])
    v = analysed(obs, "dns", "tcp:443", answers=(peer(summary()),)).verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.TCP_TIMEOUT), v.evidence
    assert [w.kind for w in v.witnesses] == ["control"] and "control.example:9491" in v.evidence


def test_reset_or_icmp_prohibited_here_while_a_control_connects_is_tcp_refused() -> None:
    for failure in (Failure.CONNECTION_REFUSED, Failure.HOST_UNREACHABLE):
        obs = observed(tcp_obs=[tcp(failure=failure)])
        v = analysed(obs, "dns", "tcp:443", answers=(peer(summary()),)).verdict
        assert (v.status, v.method) == (Status.BLOCKED, Method.TCP_REFUSED), failure


def test_failing_at_every_control_too_is_down() -> None:
    obs = observed(tcp_obs=[tcp(failure=Failure.TIMEOUT)])
    v = analysed(obs, "dns", "tcp:443", answers=(peer(summary(tcp_failure="generic_timeout_error")),)).verdict
    assert v.status is Status.DOWN and v.method is None


def test_no_control_reachable_is_unknown() -> None:
    obs = observed(tcp_obs=[tcp(failure=Failure.TIMEOUT)])
    v = analysed(obs, "dns", "tcp:443", answers=(peer(None, "generic_timeout_error"),)).verdict
    assert v.status is Status.UNKNOWN and "no control peer reachable" in v.evidence


def test_without_controls_a_tcp_failure_stays_unreachable() -> None:
    v = analysed(observed(tcp_obs=[tcp(failure=Failure.TIMEOUT)]), "dns", "tcp:443").verdict
    assert (v.status, v.method) == (Status.UNREACHABLE, None)


def test_a_control_connecting_to_an_address_nobody_vouches_for_proves_nothing() -> None:
    forged = "151.101.9.9"  # outside the expected /24, and not the control's answer
    obs = EndpointObservations(
        "chat", HOST, resolved(forged, control=(ADDR,)), (tcp(forged, failure=Failure.TIMEOUT),)
    )
    s = replace(summary(), tcp=(ConnectSummary(forged, 443, None),))
    v = analysed(obs, "dns", "tcp:443", answers=(peer(s),)).verdict
    assert v.method is not Method.TCP_TIMEOUT


def test_certificate_invalid_here_and_valid_at_a_control_is_tls_mitm() -> None:
    obs = observed(tcp_obs=[tcp()], tls_obs=[tls(failure=Failure.SSL_UNKNOWN_AUTHORITY, certificate=None)])
    v = analysed(obs, "dns", "tcp:443", "tls:443", answers=(peer(summary()),)).verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.TLS_MITM), v.evidence


def test_certificate_invalid_at_the_control_too_is_down() -> None:
    obs = observed(tcp_obs=[tcp()], tls_obs=[tls(failure=Failure.SSL_UNKNOWN_AUTHORITY, certificate=None)])
    s = summary(tls_failure="ssl_unknown_authority")
    assert analysed(obs, "dns", "tcp:443", "tls:443", answers=(peer(s),)).verdict.status is Status.DOWN


def _plain(
    body: bytes = PAGE, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> EndpointObservations:
    page = http(url=PLAIN, body=body, status=status, headers=headers)
    title = "Chat" if b"<title>Chat</title>" in body else ("Warning" if b"Warning" in body else None)
    return observed(tcp_obs=[tcp(port=80)], http_obs=[replace(page, title=title, body_length=len(body))])


def test_an_unknown_page_instead_of_the_services_is_http_diff() -> None:
    page = b"<html><head><title>Warning</title></head><body>blocked by order</body></html>"
    v = analysed(_plain(page), "dns", f"http:{PLAIN}", answers=(peer(summary()),)).verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.HTTP_DIFF), v.evidence
    assert "ratio" in v.evidence and "'Warning' vs 'Chat'" in v.evidence


def test_a_status_the_control_does_not_get_is_http_diff() -> None:
    v = analysed(_plain(status=403), "dns", f"http:{PLAIN}", answers=(peer(summary()),)).verdict
    assert v.method is Method.HTTP_DIFF and "HTTP 403 here, 200 at control" in v.evidence


def test_a_dynamic_page_with_the_same_title_is_ok() -> None:
    v = analysed(_plain(), "dns", f"http:{PLAIN}", answers=(peer(summary(length=9000)),)).verdict
    assert v.status is Status.OK, v.evidence


def test_close_lengths_or_a_shared_uncommon_header_are_ok() -> None:
    page = b"<html>" + b"y" * 2000 + b"</html>"
    untitled = summary(title=None, length=len(page) + 100)
    assert (
        analysed(_plain(page), "dns", f"http:{PLAIN}", answers=(peer(untitled),)).verdict.status is Status.OK
    )
    far = summary(title=None, length=90_000, names=("x-chat-node",))
    obs = _plain(page, headers=(("x-chat-node", "7"),))
    assert analysed(obs, "dns", f"http:{PLAIN}", answers=(peer(far),)).verdict.status is Status.OK


def test_a_control_that_does_not_get_2xx_says_nothing() -> None:
    page = b"<html><head><title>Warning</title></head></html>"
    v = analysed(_plain(page), "dns", f"http:{PLAIN}", answers=(peer(summary(status=503)),)).verdict
    assert v.status is Status.OK


def test_truncated_bodies_without_titles_are_not_compared() -> None:
    page = b"<html>" + b"z" * 100 + b"</html>"
    s = summary(title=None, length=600_000, truncated=True)
    assert analysed(_plain(page), "dns", f"http:{PLAIN}", answers=(peer(s),)).verdict.status is Status.OK


def test_https_is_not_diffed() -> None:
    obs = observed(tcp_obs=[tcp()], tls_obs=[tls()], http_obs=[http()])
    s = replace(summary(), http=(replace(summary().http[0], url=f"https://{HOST}/", status=404),))
    assert (
        analysed(obs, "dns", "tcp:443", "tls:443", f"http:https://{HOST}/", answers=(peer(s),)).verdict.status
        is Status.OK
    )


def test_nxdomain_here_while_only_a_control_peer_resolves_is_dns_nxdomain() -> None:
    from tests.analysis.observations import dns

    silent = dns("control", failure=Failure.TIMEOUT)  # the probe's DoH control got nothing
    obs = EndpointObservations("chat", HOST, (dns(failure=Failure.DNS_NXDOMAIN), silent))
    assert analysed(obs, "dns", "tcp:443").verdict.status is not Status.BLOCKED
    v = analysed(obs, "dns", "tcp:443", answers=(peer(summary()),)).verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.DNS_NXDOMAIN), v.evidence
