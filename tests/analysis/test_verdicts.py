"""Every verdict from recorded observations: no network, no clock.

Each blocking method has its test and a mirror test where the same
endpoint, clean, is ``ok``; the traps (website down, expected loopback,
bad certificates on genuine addresses, offline vantage) have theirs.
"""

from __future__ import annotations

from probe.analysis.endpoint import AnalysisInput
from probe.analysis.vantage import apply_vantage, vantage_online
from probe.checks.analyze import analyze_endpoint
from probe.model import DnsReply, EndpointObservations, EndpointResult, HttpHop
from probe.vocab import EndpointState, Failure, Method, Status
from tests.analysis.observations import (
    ADDR,
    ADDR2,
    FINGERPRINTS,
    HOST,
    MITM,
    dns,
    endpoint,
    http,
    resolved,
    service,
    tcp,
    tls,
)

FULL = ("dns", "tcp:443", "tls:443", f"http:https://{HOST}/")


def verdict(
    obs: EndpointObservations, *checks: str, state: EndpointState = EndpointState.ACTIVE
) -> EndpointResult:
    ep = endpoint(*(checks or FULL), state=state)
    return analyze_endpoint(obs, AnalysisInput(service(ep), ep, FINGERPRINTS))


def observed(dns_obs=(), tcp_obs=(), tls_obs=(), http_obs=()) -> EndpointObservations:  # type: ignore[no-untyped-def]
    return EndpointObservations("chat", HOST, tuple(dns_obs), tuple(tcp_obs), tuple(tls_obs), tuple(http_obs))


CLEAN = observed(resolved(ADDR), [tcp()], [tls()], [http()])


def test_clean_endpoint_is_ok() -> None:
    result = verdict(CLEAN)
    assert (result.verdict.status, result.verdict.method) == (Status.OK, None)
    assert [r.check for r in result.checks] == ["dns", "tcp:443", "tls:443", f"http:https://{HOST}/"]
    assert all(r.ok for r in result.checks)


# ---------------------------------------------------------------- DNS


def test_nxdomain_where_control_resolves_is_dns_nxdomain() -> None:
    obs = observed(
        [
            dns(failure=Failure.DNS_NXDOMAIN),
            dns(qtype="AAAA", failure=Failure.DNS_NXDOMAIN),
            dns("control", addresses=(ADDR,)),
        ]
    )
    v = verdict(obs).verdict
    assert (v.status, v.method, v.failure) == (Status.BLOCKED, Method.DNS_NXDOMAIN, Failure.DNS_NXDOMAIN)
    assert ADDR in v.evidence


def test_nxdomain_everywhere_is_down_not_blocked() -> None:
    obs = observed([dns(failure=Failure.DNS_NXDOMAIN), dns("control", failure=Failure.DNS_NXDOMAIN)])
    assert verdict(obs).verdict.status is Status.DOWN


def test_nxdomain_without_a_control_answer_is_unreachable() -> None:
    obs = observed([dns(failure=Failure.DNS_NXDOMAIN), dns("control", failure=Failure.TIMEOUT)])
    v = verdict(obs).verdict
    assert (v.status, v.failure) == (Status.UNREACHABLE, Failure.DNS_NXDOMAIN)


def test_empty_answer_where_control_resolves_is_dns_no_answer() -> None:
    obs = observed(
        [
            dns(failure=Failure.DNS_NO_ANSWER),
            dns("AAAA", failure=Failure.DNS_NO_ANSWER),
            dns("control", addresses=(ADDR,)),
        ]
    )
    assert verdict(obs).verdict.method is Method.DNS_NO_ANSWER


def test_refused_for_this_name_only_is_dns_refused() -> None:
    obs = observed(
        [
            dns(failure=Failure.DNS_REFUSED),
            dns("control", addresses=(ADDR,)),
            dns("canary", addresses=("198.51.100.1",), name="example.com"),
        ]
    )
    assert verdict(obs).verdict.method is Method.DNS_REFUSED


def test_refused_by_a_resolver_that_answers_nothing_is_unknown() -> None:
    obs = observed(
        [
            dns(failure=Failure.DNS_REFUSED),
            dns("control", addresses=(ADDR,)),
            dns("canary", failure=Failure.DNS_REFUSED, name="example.com"),
        ]
    )
    assert verdict(obs).verdict.status is Status.UNKNOWN


def test_timeout_for_this_name_only_is_dns_timeout() -> None:
    obs = observed(
        [
            dns(failure=Failure.TIMEOUT),
            dns("control", addresses=(ADDR,)),
            dns("canary", addresses=("198.51.100.1",), name="example.com"),
        ]
    )
    v = verdict(obs).verdict
    assert (v.method, v.failure) == (Method.DNS_TIMEOUT, Failure.TIMEOUT)


def test_bogon_answer_is_dns_bogon() -> None:
    obs = observed(resolved("10.10.34.35", control=(ADDR,)))
    v = verdict(obs).verdict
    assert (v.method, v.address) == (Method.DNS_BOGON, "10.10.34.35")


def test_loopback_answers_inside_expected_prefixes_are_ok() -> None:
    import ipaddress

    from probe.config.model import Expected

    ep = endpoint(*FULL, expected=Expected(prefixes=(ipaddress.ip_network("127.0.0.0/8"),)))
    obs = observed(resolved("127.0.0.5"), [tcp("127.0.0.5")], [tls("127.0.0.5")], [http("127.0.0.5")])
    assert analyze_endpoint(obs, AnalysisInput(service(ep), ep, FINGERPRINTS)).verdict.status is Status.OK


def test_answer_outside_expected_networks_failing_tls_is_dns_inconsistent() -> None:
    wrong = "151.101.1.66"  # public space outside the expected /24
    obs = observed(resolved(wrong, control=(ADDR,)), [tcp(wrong)], [tls(wrong, Failure.SSL_INVALID_HOSTNAME)])
    v = verdict(obs).verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.DNS_INCONSISTENT)


def test_unexpected_answer_with_valid_tls_is_genuine() -> None:
    cdn = "151.101.1.66"
    obs = observed(resolved(cdn, control=(ADDR,)), [tcp(cdn)], [tls(cdn)], [http(cdn)])
    assert verdict(obs).verdict.status is Status.OK


def test_known_blocking_address_is_dns_inconsistent_with_fingerprint() -> None:
    dns_fp = next(f for f in FINGERPRINTS.dns if f.kind == "full" and f.scope != "fp")
    obs = observed(resolved(dns_fp.pattern, control=(ADDR,)))
    v = verdict(obs).verdict
    assert (v.method, v.fingerprint) == (Method.DNS_INCONSISTENT, dns_fp.name)


def test_two_replies_to_one_query_is_dns_injected() -> None:
    first = dns(addresses=("151.101.9.9",), extra=(DnsReply("NOERROR", (ADDR,), 0.05),))
    obs = observed([first, dns("control", addresses=(ADDR,))])
    assert verdict(obs).verdict.method is Method.DNS_INJECTED


def test_differing_replies_after_a_retransmission_are_never_injection_alone() -> None:
    from dataclasses import replace

    late = DnsReply("NOERROR", (ADDR,), 1.5, transmissions=2)
    first = replace(dns(addresses=("151.101.9.9",), extra=(late,)), transmissions=2)
    obs = observed([first, dns("control", addresses=(ADDR,))])
    assert verdict(obs).verdict.method is not Method.DNS_INJECTED


def test_a_later_reply_that_is_not_genuine_is_no_witness() -> None:
    """Two strange answers to one transmission: a lead, not a proof."""
    first = dns(addresses=("151.101.9.9",), extra=(DnsReply("NOERROR", ("151.101.9.10",), 0.05),))
    obs = observed([first, dns("control", addresses=(ADDR,))])
    assert verdict(obs).verdict.method is not Method.DNS_INJECTED


def test_injection_is_judged_after_the_tls_guard() -> None:
    """TLS verified the name at the first answer: it was genuine, whatever came later."""
    cdn = "151.101.9.9"
    first = dns(addresses=(cdn,), extra=(DnsReply("NOERROR", (ADDR,), 0.05),))
    obs = observed([first, dns("control", addresses=(ADDR,))], [tcp(cdn)], [tls(cdn)])
    assert verdict(obs).verdict.status is Status.OK


# ---------------------------------------------------------------- TCP


def test_tcp_refused_without_control_is_unreachable_with_failure() -> None:
    obs = observed(resolved(ADDR), [tcp(failure=Failure.CONNECTION_REFUSED)])
    v = verdict(obs).verdict
    assert (v.status, v.method, v.failure) == (Status.UNREACHABLE, None, Failure.CONNECTION_REFUSED)


def test_tcp_timeout_without_control_is_unreachable_with_failure() -> None:
    obs = observed(resolved(ADDR), [tcp(failure=Failure.TIMEOUT)])
    assert (verdict(obs).verdict.status, verdict(obs).verdict.failure) == (
        Status.UNREACHABLE,
        Failure.TIMEOUT,
    )


def test_ipv6_unreachable_vantage_is_not_held_against_the_service() -> None:
    v6 = "2001:db8::10"
    obs = observed(resolved(ADDR), [tcp(), tcp(v6, failure=Failure.NETWORK_UNREACHABLE)], [tls()], [http()])
    assert verdict(obs).verdict.status is Status.OK


# ---------------------------------------------------------------- TLS


def test_reset_after_client_hello_with_decoy_ok_is_tls_reset() -> None:
    obs = observed(resolved(ADDR), [tcp()], [tls(failure=Failure.CONNECTION_RESET), tls(decoy=True)])
    v = verdict(obs).verdict
    assert (v.status, v.method, v.failure) == (Status.BLOCKED, Method.TLS_RESET, Failure.CONNECTION_RESET)
    assert "example.com" in v.evidence


def test_reset_for_decoy_too_is_unreachable() -> None:
    obs = observed(
        resolved(ADDR),
        [tcp()],
        [tls(failure=Failure.CONNECTION_RESET), tls(failure=Failure.CONNECTION_RESET, decoy=True)],
    )
    assert verdict(obs).verdict.status is Status.UNREACHABLE


def test_stall_after_client_hello_with_decoy_ok_is_tls_timeout() -> None:
    obs = observed(resolved(ADDR), [tcp()], [tls(failure=Failure.TIMEOUT), tls(decoy=True)])
    assert verdict(obs).verdict.method is Method.TLS_TIMEOUT


def test_interception_ca_is_tls_mitm() -> None:
    obs = observed(resolved(ADDR), [tcp()], [tls(failure=Failure.SSL_UNKNOWN_AUTHORITY, certificate=MITM)])
    v = verdict(obs).verdict
    assert (v.status, v.method, v.fingerprint) == (
        Status.BLOCKED,
        Method.TLS_MITM,
        "msgprobe.testbed_interception",
    )


def test_bad_certificates_on_a_genuine_address_are_never_blocked() -> None:
    for failure in (
        Failure.SSL_INVALID_CERTIFICATE,
        Failure.SSL_INVALID_HOSTNAME,
        Failure.SSL_UNKNOWN_AUTHORITY,
    ):
        obs = observed(resolved(ADDR), [tcp()], [tls(failure=failure)])
        v = verdict(obs).verdict
        assert (v.status, v.failure) == (Status.UNREACHABLE, failure)


# ---------------------------------------------------------------- HTTP


def test_reset_after_request_with_decoy_host_ok_is_http_reset() -> None:
    obs = observed(
        resolved(ADDR), [tcp()], [tls()], [http(failure=Failure.CONNECTION_RESET), http(decoy=True)]
    )
    assert verdict(obs).verdict.method is Method.HTTP_RESET


def test_no_response_with_decoy_host_ok_is_http_timeout() -> None:
    obs = observed(resolved(ADDR), [tcp()], [tls()], [http(failure=Failure.TIMEOUT), http(decoy=True)])
    assert verdict(obs).verdict.method is Method.HTTP_TIMEOUT


def test_blockpage_body_is_http_blockpage() -> None:
    body = "<html><p>Доступ к сайту ограничен в соответствии с Федеральными законами</p></html>".encode()
    obs = observed(resolved(ADDR), [tcp()], [tls()], [http(body=body)])
    v = verdict(obs).verdict
    assert (v.method, v.fingerprint) == (Method.HTTP_BLOCKPAGE, "ooni.ru_0")


def test_a_vague_blocking_word_alone_is_not_a_block() -> None:
    body = "<html><title>Доступ ограничен</title>maintenance</html>".encode()
    obs = observed(resolved(ADDR), [tcp()], [tls()], [http(body=body)])
    assert verdict(obs).verdict.status is Status.OK


def test_redirect_off_the_service_is_http_redirect() -> None:
    hop = HttpHop(f"https://{HOST}/", 302, "http://warning.example.net/?blocked")
    obs = observed(resolved(ADDR), [tcp()], [tls()], [http(redirects=(hop,))])
    assert verdict(obs).verdict.method is Method.HTTP_REDIRECT


def test_redirect_within_the_service_is_ok() -> None:
    hop = HttpHop(f"http://{HOST}/", 301, f"https://www.{HOST}/")
    obs = observed(resolved(ADDR), [tcp()], [tls()], [http(redirects=(hop,))])
    assert verdict(obs).verdict.status is Status.OK


def test_http_error_status_from_the_real_server_is_ok() -> None:
    obs = observed(resolved(ADDR), [tcp()], [tls()], [http(status=500)])
    assert verdict(obs).verdict.status is Status.OK


# ---------------------------------------------------------------- traps


def test_partial_block_one_of_two_addresses() -> None:
    obs = observed(
        resolved(ADDR, ADDR2),
        [tcp(), tcp(ADDR2)],
        [tls(), tls(ADDR2, Failure.CONNECTION_RESET), tls(ADDR2, decoy=True)],
        [http()],
    )
    v = verdict(obs).verdict
    assert (v.method, v.address) == (Method.TLS_RESET, ADDR2)
    assert "1 of 2 addresses" in v.evidence


def test_defunct_endpoint_failure_is_down_never_blocked() -> None:
    obs = observed(resolved(ADDR), [tcp()], [tls(failure=Failure.CONNECTION_RESET), tls(decoy=True)])
    assert verdict(obs, state=EndpointState.DEFUNCT).verdict.status is Status.DOWN


def test_offline_vantage_turns_everything_unknown() -> None:
    offline = observed(
        [
            dns(failure=Failure.TIMEOUT),
            dns("control", failure=Failure.TIMEOUT),
            dns("canary", failure=Failure.TIMEOUT, name="example.com"),
        ]
    )
    results = [verdict(offline), verdict(observed([], [tcp(failure=Failure.NETWORK_UNREACHABLE)]), "tcp:443")]
    online = vantage_online([r.observations for r in results])
    assert online is False
    assert {r.verdict.status for r in apply_vantage(results, online)} == {Status.UNKNOWN}


def test_one_reachable_endpoint_keeps_the_vantage_online() -> None:
    assert vantage_online([CLEAN]) is True


def test_timeouts_while_the_probe_itself_lagged_are_not_blocks() -> None:
    from probe.analysis.vantage import apply_overload

    obs = observed(resolved(ADDR), [tcp()], [tls(failure=Failure.TIMEOUT), tls(decoy=True)])
    stalled = verdict(obs)
    reset = verdict(
        observed(resolved(ADDR), [tcp()], [tls(failure=Failure.CONNECTION_RESET), tls(decoy=True)])
    )
    assert stalled.verdict.method is Method.TLS_TIMEOUT
    calm = apply_overload([stalled, reset], max_lag=0.1, timeout=2.0)
    assert [r.verdict.status for r in calm] == [Status.BLOCKED, Status.BLOCKED]
    busy = apply_overload([stalled, reset], max_lag=0.9, timeout=2.0)
    assert [r.verdict.status for r in busy] == [Status.UNKNOWN, Status.BLOCKED]
    assert "overloaded" in busy[0].verdict.evidence


def test_an_answer_in_an_expected_asn_is_not_inconsistent() -> None:
    from dataclasses import replace

    from probe.config.model import Expected

    far = "151.101.1.66"
    ep = endpoint(*FULL, expected=Expected(asns=(64500,)))
    obs = observed(resolved(far, control=(ADDR,)), [tcp(far)], [tls(far, Failure.SSL_INVALID_HOSTNAME)])
    inp = AnalysisInput(service(ep), ep, FINGERPRINTS)
    in_as = analyze_endpoint(replace(obs, asns=((far, 64500),)), inp).verdict
    other_as = analyze_endpoint(replace(obs, asns=((far, 64501),)), inp).verdict
    assert in_as.method is None and in_as.status is Status.UNREACHABLE  # the TLS failure, not the DNS answer
    assert other_as.method is Method.DNS_INCONSISTENT
    # Without an ASN database nothing is recorded, and an ASN-only expectation cannot judge.
    assert analyze_endpoint(obs, inp).verdict.method is None
