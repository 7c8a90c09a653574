"""The vantage regime (online, offline, whitelist) from recorded observations, and
what each regime does to the cycle's verdicts: pure, no network."""

from __future__ import annotations

from probe.analysis.vantage import OFFLINE_EVIDENCE, apply_regime, on_whitelist, regime, vantage_online
from probe.control.api import Answer, Summary
from probe.model import EndpointObservations, EndpointResult, TraceEvent, Verdict
from probe.vocab import Failure, Method, Operation, Regime, Status
from tests.analysis.observations import ADDR, dns, tcp, tls

CANARY_ADDR = "198.51.100.7"


def failed(endpoint: str = "chat.example") -> EndpointObservations:
    """A foreign endpoint as a white list leaves it: resolved, every SYN unanswered."""
    return EndpointObservations(
        "chat",
        endpoint,
        dns=(dns(addresses=(ADDR,), name=endpoint),),
        tcp=(tcp(failure=Failure.TIMEOUT),),
    )


def working(endpoint: str = "chat.example") -> EndpointObservations:
    return EndpointObservations(
        "chat", endpoint, dns=(dns(addresses=(ADDR,), name=endpoint),), tcp=(tcp(),), tls=(tls(),)
    )


def canary(name: str, *, verified: bool = True, tcp_ok: bool = True) -> EndpointObservations:
    """A canary's own attempt: its TLS check verified (or failed verification)."""
    shake = tls(CANARY_ADDR) if verified else tls(CANARY_ADDR, Failure.SSL_UNKNOWN_AUTHORITY)
    connect = tcp(CANARY_ADDR) if tcp_ok else tcp(CANARY_ADDR, failure=Failure.TIMEOUT)
    return EndpointObservations(
        "_canaries",
        name,
        dns=(dns(addresses=(CANARY_ADDR,), name=name),),
        tcp=(connect,),
        tls=(shake,) if tcp_ok else (),
    )


def result(obs: EndpointObservations, status: Status, method: Method | None = None) -> EndpointResult:
    verdict = Verdict(status, method, "generic_timeout_error", f"tcp {ADDR}:443: generic_timeout_error")
    return EndpointResult(obs.service, obs.endpoint, verdict, (), obs)


CANARIES = (canary("max.ru"), canary("ya.ru"))


def test_only_the_canaries_answering_is_the_whitelist_regime() -> None:
    assert regime([failed(), failed("web.example")], CANARIES) is Regime.WHITELIST


def test_one_verified_canary_is_enough() -> None:
    canaries = (canary("max.ru"), canary("ya.ru", tcp_ok=False), canary("vk.ru", verified=False))
    assert regime([failed()], canaries) is Regime.WHITELIST


def test_canaries_failing_with_every_endpoint_is_offline() -> None:
    down = (canary("max.ru", tcp_ok=False), canary("ya.ru", tcp_ok=False))
    assert regime([failed(), failed("web.example")], down) is Regime.OFFLINE


def test_a_canary_that_connects_but_does_not_verify_is_no_witness() -> None:
    # A captive portal or an interception box answers every name: no white list is proven.
    assert regime([failed()], (canary("max.ru", verified=False),)) is Regime.OFFLINE


def test_no_canaries_configured_keeps_the_old_rule() -> None:
    assert regime([failed()], ()) is Regime.OFFLINE
    assert regime([failed(), working("web.example")], ()) is Regime.ONLINE


def test_a_foreign_control_resolver_answering_is_online() -> None:
    obs = EndpointObservations("chat", "chat.example", dns=(dns("control", addresses=(ADDR,)),))
    assert regime([obs, failed("web.example")], CANARIES) is Regime.ONLINE


def test_the_control_resolver_answering_for_a_canary_is_online_too() -> None:
    asked = EndpointObservations(
        "_canaries", "max.ru", dns=(dns("control", failure=Failure.DNS_NXDOMAIN, name="max.ru"),)
    )
    assert regime([failed()], (asked, canary("ya.ru"))) is Regime.ONLINE


def test_a_control_peer_answering_is_online() -> None:
    summary = Summary(None, (), (), ())
    answered = EndpointObservations("chat", "chat.example", controls=(Answer("peer:9491", summary),))
    assert regime([answered], CANARIES) is Regime.ONLINE
    # An HTTP refusal came from the peer's own server: the route to it is open.
    refused = EndpointObservations(
        "chat", "chat.example", controls=(Answer("peer:9491", None, "HTTP 403: no"),)
    )
    assert regime([refused], CANARIES) is Regime.ONLINE
    timed_out = EndpointObservations(
        "chat", "chat.example", controls=(Answer("peer:9491", None, "generic_timeout_error"),)
    )
    assert regime([timed_out], CANARIES) is Regime.WHITELIST


def test_any_foreign_connection_that_got_through_is_online() -> None:
    assert regime([failed(), working("web.example")], CANARIES) is Regime.ONLINE
    # A decoy handshake or any later operation counts, whatever the check kind.
    decoy = EndpointObservations(
        "chat",
        "chat.example",
        tcp=(tcp(failure=Failure.TIMEOUT),),
        trace=(TraceEvent(Operation.UDP_RECEIVE, 1, 0.0, 0.01, None, address=ADDR, port=3478),),
    )
    assert regime([decoy], CANARIES) is Regime.ONLINE


def test_a_listed_domestic_endpoint_working_does_not_hide_the_white_list() -> None:
    # A messenger under a canary's domain (api.max.ru) works: it is on the list, not foreign.
    assert on_whitelist("api.max.ru", ["max.ru"]) and not on_whitelist("notmax.ru", ["max.ru"])
    assert regime([working("api.max.ru"), failed()], CANARIES) is Regime.WHITELIST
    # A domestic service the canaries do not name counts as foreign: online, never a false block.
    assert regime([working("oneme.ru"), failed()], CANARIES) is Regime.ONLINE
    # Canaries down while a listed endpoint works: the network is not dead, no list proven.
    down = (canary("max.ru", tcp_ok=False),)
    assert regime([working("api.max.ru"), failed()], down) is Regime.ONLINE


def test_vantage_online_is_unchanged_for_existing_callers() -> None:
    assert vantage_online([failed()]) is False
    assert vantage_online([failed(), working()]) is True


def test_whitelist_blocks_every_unexplained_failure_with_the_canaries_as_witnesses() -> None:
    results = [
        result(failed("chat.example"), Status.UNREACHABLE),
        result(failed("web.example"), Status.UNKNOWN),
        result(working("api.max.ru"), Status.OK),
        result(failed("broken.example"), Status.ERROR),
        result(failed("bogon.example"), Status.BLOCKED, Method.DNS_BOGON),
        result(failed("old.example"), Status.DOWN),
        result(failed("max.ru"), Status.UNREACHABLE),  # on the list: its failure is its own
        result(EndpointObservations("late", "late.example"), Status.UNKNOWN),  # the deadline: unmeasured
    ]
    out = {r.endpoint: r.verdict for r in apply_regime(results, Regime.WHITELIST, CANARIES)}
    for name in ("chat.example", "web.example"):
        v = out[name]
        assert (v.status, v.method, v.failure) == (Status.BLOCKED, Method.WHITELIST, "generic_timeout_error")
        assert v.evidence == (
            "whitelist regime: only domestic canaries answered (max.ru, ya.ru); foreign controls and "
            f"every foreign endpoint failed; here: tcp {ADDR}:443: generic_timeout_error"
        )
        assert [(w.kind, w.detail) for w in v.witnesses] == [
            ("canary", f"max.ru: TLS verified at {CANARY_ADDR}:443"),
            ("canary", f"ya.ru: TLS verified at {CANARY_ADDR}:443"),
        ]
    assert out["api.max.ru"].status is Status.OK
    assert out["broken.example"].status is Status.ERROR
    assert (out["bogon.example"].status, out["bogon.example"].method) == (Status.BLOCKED, Method.DNS_BOGON)
    assert out["old.example"].status is Status.DOWN
    assert out["max.ru"].status is Status.UNREACHABLE
    assert out["late.example"].status is Status.UNKNOWN


def test_offline_makes_everything_unknown_but_errors_and_online_changes_nothing() -> None:
    results = [result(failed(), Status.UNREACHABLE), result(failed("x.example"), Status.ERROR)]
    offline = apply_regime(results, Regime.OFFLINE, ())
    assert [(r.verdict.status, r.verdict.evidence) for r in offline] == [
        (Status.UNKNOWN, OFFLINE_EVIDENCE),
        (Status.ERROR, results[1].verdict.evidence),
    ]
    assert apply_regime(results, Regime.ONLINE, CANARIES) == results
