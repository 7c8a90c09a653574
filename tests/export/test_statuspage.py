"""The volunteer's page: escaped, self-contained, and rendered by a real headless Chromium."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import struct
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry

from probe.export.statuspage import render_status_page
from probe.export.web import bound_addresses, make_app, serve
from probe.state import Snapshot
from probe.vocab import Status
from tests.conftest import require_tool
from tests.export import snapshots
from tests.export.snapshots import HOSTILE_EVIDENCE, NOW

CHROMIUM_TIMEOUT = 60


def test_page_is_self_contained_and_escaped() -> None:
    html = render_status_page(snapshots.scenario(), now=NOW)
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta http-equiv="refresh" content="30">' in html
    assert "<script" not in html.replace("&lt;script&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # No external asset of any kind: no src=, no stylesheet link, no absolute URL.
    assert not re.search(r"\bsrc=|<link|https?://(?!line\.me/)", html)
    assert "10 min ago" in html and "2024-05-01T11:50:00.000Z" in html
    for status in Status:
        assert f'class="badge s-{status.value}"' in html  # the legend shows every status


def test_page_before_the_first_cycle() -> None:
    html = render_status_page(snapshots.empty(), now=NOW)
    assert "Waiting for the first measurement cycle" in html
    assert "none yet" in html


def test_page_says_when_the_vantage_is_offline() -> None:
    html = render_status_page(dataclasses.replace(snapshots.scenario(), vantage_online=False), now=NOW)
    assert "vantage looks offline" in html and "s-offline" in html


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Loopback only: every background service that could reach out is off.
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT,
        check=False,
    )


async def _render_in_chromium(chromium: str, snapshot: Snapshot, tmp_path: Path) -> tuple[str, Path]:
    app = make_app(lambda: snapshot, registry=CollectorRegistry(), wall=lambda: NOW)
    runner = await serve(app, "127.0.0.1:0")
    try:
        url = f"http://{bound_addresses(runner)[0]}/"
        png = tmp_path / "status-page.png"
        shot = await asyncio.to_thread(
            _chromium,
            chromium,
            tmp_path / "profile-shot",
            f"--screenshot={png}",
            "--window-size=1280,1600",
            url,
        )
        assert png.exists(), shot.stderr[-2000:]
        dom = await asyncio.to_thread(_chromium, chromium, tmp_path / "profile-dom", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        return dom.stdout, png
    finally:
        await runner.cleanup()


def test_status_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    dom, png = asyncio.run(_render_in_chromium(chromium, snapshots.scenario(), tmp_path))
    assert _png_size(png) == (1280, 1600)
    assert png.stat().st_size > 20_000  # a blank page compresses to a few kB
    # The DOM Chromium built holds the content a volunteer must see.
    for text in (
        "vol-7",
        "WeChat",
        "LINE",
        "Zello",
        "BBM",
        "short.weixin.qq.com",
        "tls.reset",
        "http.blockpage",
        "second reset",
        "NXDOMAIN once",
        "connection_reset",
        "latest: blocked",
        "unreachable",
        "legacy",
    ):
        assert text in dom, text
    # Hostile evidence arrived as text, not as markup: Chromium shows the escaped form.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script>alert(1)</script>" not in dom
    assert HOSTILE_EVIDENCE.split("<")[0] in dom
