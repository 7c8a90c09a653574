"""The volunteer's page, rendered from hand-built snapshots: summary, grid,
history bars, collapsed evidence, confirming, escaping. (Chromium renders
it in test_statuspage_chromium; the live demo in test_statuspage_demo.)"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from probe.export.page_endpoint import BAR_CELLS
from probe.export.statuspage import render_status_page
from probe.state import HistoryCell, ServiceView, Snapshot
from probe.vocab import Method, Status
from tests.export import snapshots
from tests.export.snapshots import HOSTILE_EVIDENCE, NOW

HOSTILE = '"><script>alert(2)</script><img src=x onerror=alert(3)>&amp;'
RESET = "reset after ClientHello with SNI short.weixin.qq.com; decoy SNI example.com completes"


def cells(*spec: tuple[float, Status, Method | None, str]) -> tuple[HistoryCell, ...]:
    """History cells as the tracker builds them: equal neighbouring lines counted as repeats."""
    out: list[HistoryCell] = []
    for t, status, method, evidence in spec:
        failure = None if status is Status.OK else "connection_reset"
        prev = out[-1] if out else None
        if prev is not None and (prev.status, prev.method, prev.evidence) == (status, method, evidence):
            out.append(HistoryCell(t, status, method, failure, evidence, prev.repeats + 1, prev.since))
        else:
            out.append(HistoryCell(t, status, method, failure, evidence, 1, t))
    return tuple(out)


def with_endpoint(s: Snapshot, host: str, **changes: Any) -> Snapshot:
    endpoints = tuple(dataclasses.replace(e, **changes) if e.endpoint == host else e for e in s.endpoints)
    return dataclasses.replace(s, endpoints=endpoints)


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.S)
    assert match is not None, pattern
    return match.group(1)


def row_of(html: str, host: str) -> str:
    """One endpoint's markup, up to the next endpoint."""
    return html.split(f"<code>{host}</code>")[1].split('<div class="ep ')[0]


def history_scenario() -> Snapshot:
    """scenario() with a history: ok, then a reset for 12 cycles (one minute apart) up to now;
    and the raw NXDOMAIN of gd2.line.naver.jp pending confirmation, 1 of 2 cycles."""
    ok = [(NOW - 60 * (20 - i), Status.OK, None, "") for i in range(8)]
    resets = [(NOW - 60 * (11 - i), Status.BLOCKED, Method.TLS_RESET, RESET) for i in range(12)]
    s = with_endpoint(snapshots.scenario(), "short.weixin.qq.com", history=cells(*ok, *resets))
    s = with_endpoint(
        s, "gd2.line.naver.jp", pending=Status.BLOCKED, pending_method=Method.DNS_NXDOMAIN, pending_cycles=1
    )
    return dataclasses.replace(s, confirm=2, next_cycle=NOW + 297.5)


def _text(html: str) -> str:
    """The page's visible text, roughly: tags out, whitespace folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_page_is_self_contained_and_escaped() -> None:
    html = render_status_page(history_scenario(), now=NOW)
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta http-equiv="refresh" content="30">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<script" not in html.replace("&lt;script&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # No external asset of any kind: no src=, no stylesheet link, no absolute URL.
    assert not re.search(r"\bsrc=|<link|https?://(?!line\.me/)", html)
    for status in Status:
        assert f'class="badge s-{status.value}"' in html  # the legend shows every status


def test_summary_line_counts_services_vantage_controls_and_cycles() -> None:
    html = render_status_page(history_scenario(), now=NOW)
    summary = _text(found(r'<p class="summary">(.*?)</p>', html))
    assert summary == (
        "2 of 4 services blocked · 1 confirming a change · vantage online · controls 1/2 up · "
        "last cycle 11:59 UTC, next ~12:04"
    )


def test_grid_has_one_tile_per_service_coloured_by_status_in_catalog_order() -> None:
    html = render_status_page(history_scenario(), now=NOW)
    tiles = re.findall(r'<a class="tile s-(\w+)( confirming)?" href="#service-(\w+)"', html)
    assert tiles == [
        ("blocked", "", "wechat"),
        ("blocked", " confirming", "line"),  # confirmed blocked, and an endpoint confirming another block
        ("unreachable", "", "zello"),
        ("down", "", "bbm"),
    ]
    for name in ("wechat", "line", "zello", "bbm"):
        assert f'<section id="service-{name}">' in html  # every tile's anchor exists


def test_history_bar_shows_the_last_cycles_oldest_first_padded_on_the_left() -> None:
    html = render_status_page(history_scenario(), now=NOW)
    row = row_of(html, "short.weixin.qq.com")
    bar = found(r'<div class="bar"[^>]*>(.*?)</div>', row)
    shown = re.findall(r'<span class="h (s-\w+|h-none)" title="([^"]*)"></span>', bar)
    assert len(shown) == BAR_CELLS
    assert [c for c, _ in shown] == ["h-none"] * 10 + ["s-ok"] * 8 + ["s-blocked"] * 12
    titles = [t for c, t in shown if c != "h-none"]
    assert titles[0] == "2024-05-01T11:40:00.000Z · ok"
    assert titles[-1] == "2024-05-01T12:00:00.000Z · blocked · tls.reset"
    times = [t.split(" · ")[0] for t in titles]
    assert times == sorted(times) and len(set(times)) == 20


def test_history_keeps_only_the_newest_cells_when_the_ring_is_longer() -> None:
    many = cells(*[(NOW - 60 * (40 - i), Status.OK if i % 2 else Status.DOWN, None, "x") for i in range(41)])
    s = with_endpoint(snapshots.scenario(), "bbm.example", history=many)
    row = row_of(render_status_page(s, now=NOW), "bbm.example")
    bar = found(r'<div class="bar"[^>]*>(.*?)</div>', row)
    statuses = re.findall(r'class="h s-(\w+)"', bar)
    assert len(statuses) == BAR_CELLS and "h-none" not in bar
    assert statuses[-1] == "down" and statuses[-2] == "ok"  # i = 40 is even: the newest is down


def test_repeated_evidence_is_collapsed_into_one_line() -> None:
    html = render_status_page(history_scenario(), now=NOW)
    row = row_of(html, "short.weixin.qq.com")
    assert row.count(RESET) == 1
    assert "same for 12 cycles since " in _text(row) and ">11:49</time>" in row
    assert "<details>" not in row  # the ok cycles before are no evidence


def test_older_runs_go_into_details_with_their_span() -> None:
    spec = [
        *[(NOW - 60 * (9 - i), Status.BLOCKED, Method.TLS_RESET, "first reset") for i in range(3)],
        *[(NOW - 60 * (6 - i), Status.OK, None, "") for i in range(2)],
        *[(NOW - 60 * (4 - i), Status.UNREACHABLE, None, "tcp timed out") for i in range(4)],
        (NOW, Status.BLOCKED, Method.TLS_RESET, "second reset"),
    ]
    s = with_endpoint(snapshots.scenario(), "short.weixin.qq.com", history=cells(*spec))
    row = row_of(render_status_page(s, now=NOW), "short.weixin.qq.com")
    head, details = row.split("<details>")
    assert "second reset" in head and "latest cycle, " in _text(head)
    assert "<summary>2 earlier results</summary>" in details
    text = _text(details)
    assert text.index("tcp timed out") < text.index("first reset")  # newest first
    assert "4 cycles, 11:56–11:59 (60 s ago)" in text
    assert "3 cycles, 11:51–11:53 (7 min ago)" in text


def test_a_run_longer_than_the_ring_keeps_its_true_length_and_start() -> None:
    # The tracker counted 2000 cycles of the same line (since yesterday); the ring kept the last 30.
    ring = tuple(
        HistoryCell(
            NOW - 60 * (29 - i), Status.BLOCKED, Method.TLS_RESET, None, "reset", 1971 + i, NOW - 60 * 1999
        )
        for i in range(30)
    )
    s = with_endpoint(snapshots.scenario(), "short.weixin.qq.com", history=ring)
    row = row_of(render_status_page(s, now=NOW), "short.weixin.qq.com")
    assert "same for 2000 cycles since " in _text(row) and ">04-30 02:41</time>" in row


def test_without_history_equal_failure_records_are_merged() -> None:
    same = snapshots.scenario().endpoints[0].recent_failures[0]
    s = with_endpoint(
        snapshots.scenario(),
        "short.weixin.qq.com",
        recent_failures=(same, dataclasses.replace(same, time=NOW - 300)),
    )
    row = row_of(render_status_page(s, now=NOW), "short.weixin.qq.com")
    assert row.count("first reset") == 1 and "2 times, " in _text(row)


def test_a_status_being_confirmed_says_so() -> None:
    html = render_status_page(history_scenario(), now=NOW)
    row = row_of(html, "gd2.line.naver.jp")
    assert "blocked — confirming, 1 of 2 cycles dns.nxdomain" in _text(row)
    assert '<span class="badge s-ok">ok</span>' in row  # the confirmed status still stands
    assert 'title="LINE: blocked; confirming blocked, 1 of 2 cycles"' in html


def test_the_first_cycle_shows_candidates_as_confirming_not_unknown() -> None:
    s = history_scenario()
    first = tuple(
        dataclasses.replace(
            e, status=Status.UNKNOWN, method=None, since=None, pending=Status.BLOCKED, pending_cycles=1
        )
        for e in s.endpoints
    )
    views = tuple(dataclasses.replace(v, status=Status.UNKNOWN, blocked=False) for v in s.services)
    html = render_status_page(dataclasses.replace(s, endpoints=first, services=views, cycles=1), now=NOW)
    text = _text(html)
    assert "0 of 4 services blocked · 4 confirming a change" in text
    assert text.count("blocked — confirming, 1 of 2 cycles") == len(first)
    assert re.findall(r'<a class="tile s-(\w+) confirming"', html) == ["blocked"] * 4
    assert "blocked? 1/2" in text and "nothing confirmed yet" in text


def test_evidence_links_point_at_the_json_of_each_result() -> None:
    html = render_status_page(history_scenario(), now=NOW)
    assert '<a href="evidence?service=wechat">evidence JSON</a>' in html
    # The run's own records: from its first cycle on (rounded down to the second).
    assert f'<a href="evidence?service=wechat&amp;since={int(NOW - 660)}">JSON</a>' in html
    assert '<a href="status">/status</a>' in html
    # Without an evidence log /evidence answers 404: no link to it then.
    bare = render_status_page(dataclasses.replace(history_scenario(), evidence=None), now=NOW)
    assert "evidence?" not in bare and '<a href="status">/status</a>' in bare


def test_hostile_strings_are_text_everywhere() -> None:
    s = history_scenario()
    hostile_cells = cells((NOW, Status.BLOCKED, Method.HTTP_BLOCKPAGE, HOSTILE))
    endpoints = (
        dataclasses.replace(s.endpoints[0], service=HOSTILE, endpoint=HOSTILE, history=hostile_cells),
        *s.endpoints[1:],
    )
    s = dataclasses.replace(
        s,
        probe_id=HOSTILE,
        endpoints=endpoints,
        services=(ServiceView(HOSTILE, HOSTILE, Status.BLOCKED, True), *s.services[1:]),
        controls={HOSTILE: (False, HOSTILE)},
        canaries={HOSTILE: True},
    )
    html = render_status_page(s, now=NOW)
    assert "<script>" not in html and "<img" not in html  # markup only as text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&amp;amp;" in html  # escaped once more, never unescaped
    # In attributes too: a quote never closes one.
    for attribute in re.findall(r'(?:href|title|id)="([^"]*)"', html):
        assert "<" not in attribute and ">" not in attribute
    assert HOSTILE_EVIDENCE not in html  # the blockpage evidence of line.me, escaped


def test_page_before_the_first_cycle() -> None:
    html = render_status_page(snapshots.empty(), now=NOW)
    assert "Waiting for the first measurement cycle" in html
    assert "none yet" in html and "no measurement cycle has finished yet" in html


def test_page_says_when_the_vantage_is_offline() -> None:
    html = render_status_page(
        dataclasses.replace(snapshots.scenario(), vantage_online=False, regime=None), now=NOW
    )
    assert "vantage looks offline" in html and "s-offline" in html and "vantage offline" in _text(html)


def test_catalog_sized_page_stays_small_and_fast() -> None:
    import time

    s = snapshots.catalog()
    ring = cells(*[(NOW - 300 * (29 - i), Status.OK, None, "") for i in range(30)])
    s = dataclasses.replace(s, endpoints=tuple(dataclasses.replace(e, history=ring) for e in s.endpoints))
    started = time.perf_counter()
    html = render_status_page(s, now=NOW)
    elapsed = time.perf_counter() - started
    assert html.count('<div class="bar"') == 112
    assert len(html) < 600_000, len(html)
    assert elapsed < 0.5, elapsed


def test_the_page_shows_verdicts_not_raw_observations() -> None:
    # Evidence text was scrubbed of the volunteer's address when measured (probe.privacy);
    # the page must not show anything else of an observation: resolvers, addresses, decoys.
    html = render_status_page(history_scenario(), now=NOW)
    for raw in ("127.0.0.1:5353", "203.0.113.11", "TLS_AES_128_GCM_SHA256", "CN=Test CA"):
        assert raw not in html, raw
