"""Each blocking method against a real socket that behaves like the censor,
and its mirror: the same service, clean, is ``ok``.

All scenarios of one kind run in one cycle (one testbed), as a probe would
see them; each assertion names the service, so a failure says which.
"""

from __future__ import annotations

import pytest

from probe.testbed.middlebox import Reset
from probe.testbed.resolver import Drop
from probe.testbed.scenarios import DEMO, FakeService
from probe.vocab import Failure, Method, Status
from tests.e2e.harness import by_service, run

BLOCKED = {
    "dns-nxdomain": Method.DNS_NXDOMAIN,
    "dns-no-answer": Method.DNS_NO_ANSWER,
    "dns-refused": Method.DNS_REFUSED,
    "dns-timeout": Method.DNS_TIMEOUT,
    "dns-bogon": Method.DNS_BOGON,
    "dns-inconsistent": Method.DNS_INCONSISTENT,
    "tls-reset": Method.TLS_RESET,
    "tls-timeout": Method.TLS_TIMEOUT,
    "tls-mitm": Method.TLS_MITM,
    "http-reset": Method.HTTP_RESET,
    "http-timeout": Method.HTTP_TIMEOUT,
    "http-blockpage": Method.HTTP_BLOCKPAGE,
    "http-redirect": Method.HTTP_REDIRECT,
    "throttled": Method.THROTTLED,
    "calls-blocked": Method.UDP_BLOCKED,
}


@pytest.fixture(scope="module")
def demo() -> dict[str, object]:
    return by_service(run(DEMO))


@pytest.mark.parametrize("name", sorted(BLOCKED))
def test_censor_behaviour_yields_its_method(demo: dict[str, object], name: str) -> None:
    result = demo[name]
    v = result.verdict  # type: ignore[attr-defined]
    assert (v.status, v.method) == (Status.BLOCKED, BLOCKED[name]), v.evidence
    assert v.evidence


def test_blocks_cite_their_evidence(demo: dict[str, object]) -> None:
    blockpage = demo["http-blockpage"].verdict  # type: ignore[attr-defined]
    assert blockpage.fingerprint and blockpage.fingerprint in blockpage.evidence
    mitm = demo["tls-mitm"].verdict  # type: ignore[attr-defined]
    assert mitm.fingerprint == "msgprobe.testbed_interception"
    reset = demo["tls-reset"].verdict  # type: ignore[attr-defined]
    assert reset.failure == Failure.CONNECTION_RESET and "example.com" in reset.evidence
    redirect = demo["http-redirect"].verdict  # type: ignore[attr-defined]
    assert "blocked.isp.test" in redirect.evidence


@pytest.mark.parametrize(
    ("name", "failure"),
    [("tcp-refused", Failure.CONNECTION_REFUSED), ("tcp-timeout", Failure.TIMEOUT)],
)
def test_tcp_failures_need_a_control_so_are_unreachable(
    demo: dict[str, object], name: str, failure: Failure
) -> None:
    v = demo[name].verdict  # type: ignore[attr-defined]
    assert (v.status, v.method, v.failure) == (Status.UNREACHABLE, None, failure)


def test_clean_service_is_ok_and_every_check_ran(demo: dict[str, object]) -> None:
    result = demo["clean-messenger"]
    assert result.verdict.status is Status.OK  # type: ignore[attr-defined]
    checks = [c.check.split(":")[0] for c in result.checks]  # type: ignore[attr-defined]
    assert checks == ["dns", "tcp", "tls", "http"]
    assert all(c.ok for c in result.checks)  # type: ignore[attr-defined]


def test_website_down_everywhere_is_down(demo: dict[str, object]) -> None:
    assert demo["website-down"].verdict.status is Status.DOWN  # type: ignore[attr-defined]


def test_mirrors_the_same_services_clean_are_ok() -> None:
    # The demo's blocked services with the censor switched off.
    clean = [FakeService(f.name, checks=f.checks) for f in DEMO if f.name in BLOCKED and f.name != "tls-mitm"]
    results = by_service(run(clean))
    for name, result in results.items():
        assert result.verdict.status is Status.OK, (name, result.verdict.evidence)


def test_all_loopback_answers_that_are_expected_are_ok() -> None:
    results = run([FakeService("loop-a"), FakeService("loop-b", addresses=2)], test_networks=())
    assert {r.verdict.status for r in results.results} == {Status.OK}


def test_bad_certificates_on_a_genuine_address_are_never_blocked() -> None:
    # Expired, wrong-name, and an unknown authority (an interception certificate
    # whose CA no fingerprint names) at the expected address: no control, no block.
    results = by_service(
        run(
            [
                FakeService("expired", backend="expired"),
                FakeService("wrong-name", backend="wrong-name"),
                FakeService("unknown-ca", backend="unknown-ca"),
            ]
        )
    )
    expected = {
        "expired": Failure.SSL_INVALID_CERTIFICATE,
        "wrong-name": Failure.SSL_INVALID_HOSTNAME,
        "unknown-ca": Failure.SSL_UNKNOWN_AUTHORITY,
    }
    for name, failure in expected.items():
        v = results[name].verdict
        assert (v.status, v.failure) == (Status.UNREACHABLE, failure), (name, v.evidence)


def test_redirect_chain_of_eleven_is_bounded_and_recorded() -> None:
    result = by_service(run([FakeService("chain", checks=("dns", "tcp", "http:/hop/11"))]))["chain"]
    http = next(o for o in result.observations.http if not o.decoy)
    assert len(http.redirects) == 10 and http.redirect_limit_reached
    assert result.verdict.status is Status.OK


def test_server_slower_than_the_timeout_is_unreachable_not_blocked() -> None:
    result = by_service(run([FakeService("slow", checks=("dns", "tcp", "http:/slow"))]))["slow"]
    v = result.verdict
    assert (v.status, v.failure) == (Status.UNREACHABLE, Failure.TIMEOUT), v.evidence


def test_huge_body_is_read_capped() -> None:
    result = by_service(run([FakeService("huge", checks=("dns", "tcp", "http:/huge"))]))["huge"]
    http = next(o for o in result.observations.http if not o.decoy)
    assert http.body_truncated and http.body_length == 512 * 1024
    assert result.verdict.status is Status.OK


def test_partial_blocking_one_of_two_addresses() -> None:
    result = by_service(run([FakeService("partial", addresses=2, tls=Reset())]))["partial"]
    v = result.verdict
    assert (v.status, v.method) == (Status.BLOCKED, Method.TLS_RESET)
    assert "1 of 2 addresses" in v.evidence
    tls_rows = {c.address: c.ok for c in result.checks if c.check.startswith("tls")}
    assert sorted(tls_rows.values()) == [False, True]


def test_vantage_with_no_network_is_unknown_never_blocked() -> None:
    # Nothing answers: the resolver drops everything, the control is down, every TCP SYN is dropped.
    fakes = [FakeService(f"offline-{i}", dns=Drop(), tcp="blackhole") for i in range(3)]
    cycle = run(fakes, control_resolvers=(), canary_name="offline-0.msgprobe.test")
    assert cycle.vantage_online is False
    assert {r.verdict.status for r in cycle.results} == {Status.UNKNOWN}


def test_once_retries_confirm_a_block() -> None:
    cycle = run([FakeService("twice", tls=Reset())], retries=1)
    result = cycle.results[0]
    assert (result.verdict.method, result.attempts) == (Method.TLS_RESET, 2)


def test_an_endpoint_without_a_tcp_check_whose_connect_fails_is_not_ok() -> None:
    # tls-only (and http-only) endpoints open the connection too: its failure is theirs.
    cycle = run(
        [
            FakeService("tls-only-closed", tcp="closed", checks=("dns", "tls")),
            FakeService("https-only-closed", tcp="closed", checks=("dns", "https")),
            FakeService("clean"),  # the vantage is online
        ]
    )
    for result in cycle.results[:2]:
        assert result.verdict.status is Status.UNREACHABLE, (result.service, result.verdict)
        assert "connection_refused" in result.verdict.evidence
