"""What packets prove, from recorded packet facts (no network)."""

from __future__ import annotations

from probe.analysis.packets import dns_injection, reset_injection, summary
from probe.model_packets import PacketFacts, RawDns, RawReset

RESOLVER = "10.79.4.53"
SERVER = "10.79.4.10"


def reply(
    ttl: int, addresses: tuple[str, ...] = ("10.79.4.10",), t: float = 0.002, ip_id: int = 0
) -> PacketFacts:
    return PacketFacts(t, RESOLVER, ttl, ip_id, rcode="NOERROR", addresses=addresses)


Silent = tuple[tuple[str, tuple[PacketFacts, ...]], ...]


def raw_dns(
    replies: tuple[PacketFacts, ...], baseline: tuple[PacketFacts, ...] = (), silent: Silent = ()
) -> RawDns:
    return RawDns(
        "raw_dns",
        "chat.path.test",
        "A",
        "10.79.4.53:53",
        RESOLVER,
        "canary.path.test",
        replies,
        baseline,
        silent,
    )


def test_a_reply_with_the_resolvers_own_ttl_is_genuine() -> None:
    assert dns_injection(raw_dns((reply(60),), (reply(60),))) is None
    assert dns_injection(raw_dns((reply(61),), (reply(60),))) is None  # one hop of path change is no proof


def test_a_reply_whose_ttl_is_not_the_resolvers_is_injected() -> None:
    found = dns_injection(raw_dns((reply(198, ("203.0.113.9",)), reply(60)), (reply(60),)))
    assert found is not None and found.kind == "dns"
    assert any("ttl 198 vs 60" in m for m in found.marks)
    assert any("2 different replies" in m for m in found.marks)


def test_any_answer_from_an_address_without_a_resolver_is_forged() -> None:
    found = dns_injection(raw_dns((reply(60),), (reply(60),), silent=(("10.79.4.99", (reply(198),)),)))
    assert found is not None and "10.79.4.99, which runs no resolver" in found.marks[0]
    assert dns_injection(raw_dns((reply(60),), (reply(60),), silent=(("10.79.4.99", ()),))) is None


def test_a_raw_check_that_could_not_run_proves_nothing() -> None:
    failed = RawDns("raw_dns", "chat.path.test", "A", "x", RESOLVER, "canary", failure="needs NET_RAW")
    assert dns_injection(failed) is None
    assert summary([failed]).checked == frozenset()


def packet(
    ttl: int, flags: str, *, ip_id: int = 0, window: int = 0, payload: int = 0, t: float = 0.001
) -> PacketFacts:
    return PacketFacts(t, SERVER, ttl, ip_id, True, flags, window, payload)


def reset(resets: tuple[PacketFacts, ...], synack: PacketFacts | None, **kw: object) -> RawReset:
    return RawReset("raw_reset", SERVER, 443, "tls", "check", True, resets, synack, **kw)  # type: ignore[arg-type]


def test_a_reset_like_its_synack_is_genuine() -> None:
    assert reset_injection(reset((packet(60, "R"),), packet(60, "SA", window=64240))) is None
    # Linux's SYN-ACK carries IP ID 0 and later packets a counter: no mark from that alone.
    assert reset_injection(reset((packet(60, "RA", ip_id=4242),), packet(60, "SA"))) is None


def test_a_closed_ports_reset_is_judged_against_a_synack_of_the_same_address() -> None:
    refused = RawReset(
        "raw_reset", SERVER, 8443, "connect", "check", False, (packet(60, "RA"),), None, packet(60, "SA")
    )
    assert reset_injection(refused) is None
    unjudged = RawReset("raw_reset", SERVER, 8443, "connect", "check", False, (packet(60, "RA"),))
    assert reset_injection(unjudged) is None  # nothing to compare with: never marked


def test_a_forged_reset_is_marked_by_each_fingerprint() -> None:
    synack = packet(60, "SA", ip_id=30000)
    by_ttl = reset_injection(reset((packet(253, "R"),), synack))
    assert by_ttl is not None and "reset ttl 253 vs 60 (the SYN-ACK's)" in by_ttl.marks
    by_id = reset_injection(reset((packet(253, "R", ip_id=0x9916),), synack))
    assert by_id is not None and any(m.startswith("ip id") for m in by_id.marks)
    # A randomised IP ID alone (OpenBSD's stack) is no proof.
    assert reset_injection(reset((packet(60, "R", ip_id=0x9916),), synack)) is None
    by_count = reset_injection(reset((packet(60, "RA"),) * 3, packet(60, "SA")))
    assert by_count is not None and "3 identical resets" in by_count.marks
    by_payload = reset_injection(reset((packet(60, "RA", payload=10),), packet(60, "SA")))
    assert by_payload is not None and "reset carries 10 bytes" in by_payload.marks
    by_race = reset_injection(reset((packet(60, "R"),), packet(60, "SA"), after_reset=2))
    assert by_race is not None and "2 packets from the server after the reset" in by_race.marks


def test_summary_names_the_kinds_checked_and_injected() -> None:
    forged = reset((packet(253, "R"),), packet(60, "SA"))
    clean = raw_dns((reply(60),), (reply(60),))
    s = summary([forged, clean])
    assert s.checked == {"dns", "reset"} and s.injected == {"reset"} and not s.traced
