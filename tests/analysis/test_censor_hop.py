"""The censor's hop from recorded walks: the trigger judged against the control at each TTL.

The hops are the test network's (tests.netns.path): r1 at TTL 1, r2 at 2,
the censor's box at 3, the server at 4.
"""

from __future__ import annotations

from probe.analysis.censor_hop import CensorHop, censor_hop
from probe.model_packets import RawTraceroute, TraceHop

R1, R2, CENSOR, SERVER = "10.79.1.1", "10.79.2.2", "10.79.3.2", "10.79.4.10"
ROUTERS = {1: R1, 2: R2, 3: CENSOR}


def walk(*trigger: tuple[str, str | None], control: tuple[tuple[str, str | None], ...] = ()) -> RawTraceroute:
    """The control as on a clean path (time exceeded at 1-3, the server at 4) unless given,
    and the trigger's answers from TTL 1 on ("not sent" past its last)."""
    control = control or (*(icmp(t) for t in (1, 2, 3)), ("server", None))
    ttls = max(len(control), len(trigger))
    hops = tuple(
        TraceHop(
            ttl,
            *(control[ttl - 1] if ttl <= len(control) else ("not sent", None)),
            *(trigger[ttl - 1] if ttl <= len(trigger) else ("not sent", None)),
        )
        for ttl in range(1, ttls + 1)
    )
    return RawTraceroute("raw_traceroute", SERVER, 443, "sni", "blocked.path.test", "example.com", hops=hops)


def icmp(ttl: int) -> tuple[str, str | None]:
    return ("icmp", ROUTERS[ttl])


NONE = ("none", None)


def test_a_trigger_that_reaches_the_server_like_the_control_is_a_clean_path() -> None:
    assert censor_hop(walk(icmp(1), icmp(2), icmp(3), ("server", None))) is None


def test_a_reset_the_control_did_not_draw_is_the_censor_at_that_hop() -> None:
    assert censor_hop(walk(icmp(1), icmp(2), ("reset", None))) == CensorHop(3, "reset", R2, CENSOR)


def test_an_on_path_box_that_resets_beside_the_routers_answer_is_at_that_routers_hop() -> None:
    # The copy went on and expired (time exceeded from the censor) while a tap reset it.
    assert censor_hop(walk(icmp(1), icmp(2), ("reset", CENSOR))) == CensorHop(3, "reset", R2, CENSOR)


def test_a_reset_both_payloads_drew_is_the_far_ends_own() -> None:
    control = (icmp(1), icmp(2), icmp(3), ("reset", None))
    assert censor_hop(walk(icmp(1), icmp(2), icmp(3), ("reset", None), control=control)) is None


def test_silence_at_two_ttls_that_answered_the_control_is_a_drop() -> None:
    assert censor_hop(walk(icmp(1), icmp(2), NONE, NONE)) == CensorHop(3, "drop", R2, CENSOR)


def test_one_lost_time_exceeded_is_not_a_drop() -> None:
    assert censor_hop(walk(icmp(1), NONE, icmp(3), ("server", None))) is None


def test_silence_at_the_servers_hop_alone_is_not_a_drop() -> None:
    # The walk stops at the control's server hop: one silent TTL there proves nothing.
    assert censor_hop(walk(icmp(1), icmp(2), icmp(3), NONE)) is None


def test_a_router_silent_to_both_is_skipped_and_the_drop_starts_where_the_control_answers() -> None:
    control = (icmp(1), NONE, icmp(3), ("server", None))
    assert censor_hop(walk(icmp(1), NONE, NONE, NONE, control=control)) == CensorHop(3, "drop", R1, CENSOR)


def test_a_server_answer_below_the_servers_hop_is_forged() -> None:
    assert censor_hop(walk(icmp(1), ("server", None))) == CensorHop(2, "forged", R1, R2)


def test_a_server_answer_where_the_control_expired_is_forged_when_the_control_never_reached_it() -> None:
    control = (icmp(1), icmp(2), icmp(3), NONE)
    assert censor_hop(walk(icmp(1), icmp(2), ("server", None), control=control)) == CensorHop(
        3, "forged", R2, CENSOR
    )


def test_the_last_router_is_none_when_the_censor_is_the_first_hop() -> None:
    assert censor_hop(walk(("reset", None))) == CensorHop(1, "reset", None, R1)


def test_a_walk_cut_short_before_any_answer_finds_nothing() -> None:
    assert censor_hop(walk(icmp(1))) is None
    assert censor_hop(walk()) is None


def test_routers_in_the_probes_own_slash_24_are_never_named() -> None:
    from probe.raw.trace_probe import near

    assert near("192.168.1.1", "192.168.1.23") and near("10.79.1.2", "10.79.1.2")
    assert not near("10.79.2.2", "10.79.1.2")
    assert near("2001:db8::1", "10.79.1.2")  # not comparable: say nothing
