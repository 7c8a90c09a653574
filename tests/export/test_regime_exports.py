"""The vantage regime in the human outputs: the table's last line and the status page."""

from __future__ import annotations

import dataclasses

from probe.export.records import cycle_record
from probe.export.statuspage import render_status_page
from probe.export.table import render_table, vantage_line
from probe.vocab import Regime
from tests.export import snapshots

CANARIES = {"max.ru": True, "ya.ru": False}


def test_the_table_says_the_regime_in_words() -> None:
    assert vantage_line(Regime.ONLINE, {}) == "Vantage online."
    assert (
        vantage_line(Regime.ONLINE, CANARIES)
        == "Vantage online (canaries answering: max.ru; canaries failing: ya.ru)."
    )
    assert vantage_line(Regime.WHITELIST, CANARIES) == (
        "Vantage in a whitelist regime: only domestic canaries answer (max.ru); "
        "every service outside the white list is blocked."
    )
    assert vantage_line(Regime.OFFLINE, {"max.ru": False}).startswith("Vantage OFFLINE: nothing answered")
    # Callers that know only vantage_online keep their old line.
    assert render_table([], vantage_online=False).endswith(
        "Vantage OFFLINE: nothing answered, the controls included; no block is raised."
    )
    table = render_table([], vantage_online=True, regime=Regime.WHITELIST, canaries=CANARIES)
    assert table.endswith("every service outside the white list is blocked.")


def test_cycle_records_carry_the_regime_next_to_vantage_online() -> None:
    offline = cycle_record(probe={}, started=0.0, finished=1.0, vantage_online=False, results=[])
    assert (offline["regime"], offline["canaries"]) == ("offline", {})
    whitelist = cycle_record(
        probe={},
        started=0.0,
        finished=1.0,
        vantage_online=True,
        results=[],
        regime=Regime.WHITELIST,
        canaries=CANARIES,
    )
    assert (whitelist["vantage_online"], whitelist["regime"], whitelist["canaries"]) == (
        True,
        "whitelist",
        CANARIES,
    )


def test_the_status_page_names_the_regime_and_the_canaries() -> None:
    snapshot = dataclasses.replace(snapshots.scenario(), regime=Regime.WHITELIST, canaries=CANARIES)
    html = render_status_page(snapshot, now=snapshots.NOW)
    assert '<span class="badge s-whitelist">whitelist</span>' in html
    assert "<dt>canaries</dt><dd>max.ru answering; ya.ru failing</dd>" in html
    assert "only the domestic canaries (max.ru) answer" in html
    online = render_status_page(snapshots.scenario(), now=snapshots.NOW)
    assert '<span class="badge s-online">online</span>' in online and "whitelist regime" not in online
