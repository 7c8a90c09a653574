"""The volunteer's page in a real headless Chromium, at a phone's width
(390x844) and a desktop's (1280x900): the DOM it built, a screenshot each,
and no horizontal scrolling on the phone.

Why the DevTools protocol and not only ``--window-size``: headless Chromium
clamps a window to 500 px wide, lays the page out at 500 and crops the
screenshot to 390, so a "phone" screenshot made that way is a desktop
layout cut off (measured: ``innerWidth`` 500 at ``--window-size=390,844``).
``Emulation.setDeviceMetricsOverride`` with ``mobile`` sets a real 390 px
device viewport, which honours the page's viewport meta as a phone does.

Horizontal overflow is measured, not guessed: with every <details> open,
the document's scroll width and the right edge of every element are read
in the page (DevTools evaluation; the page itself runs no script and its
CSP forbids one). The same measurement after adding a deliberately wide
element must report the overflow, so a measurement that cannot see
overflow fails the test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import struct
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from probe.export.web import bound_addresses, make_app, serve
from probe.state import Snapshot
from tests.conftest import require_tool
from tests.export.snapshots import HOSTILE_EVIDENCE, NOW
from tests.export.test_statuspage import history_scenario

CHROMIUM_TIMEOUT = 60
PHONE = (390, 844)
DESKTOP = (1280, 900)
# Loopback only: every background service that could reach out is off.
QUIET = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
MEASURE = """(() => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  const root = document.documentElement;
  let widest = 0, culprit = "";
  for (const el of document.querySelectorAll("body *")) {
    const right = el.getBoundingClientRect().right;
    if (right > widest) { widest = right; culprit = el.tagName + "." + el.className; }
  }
  return {inner: innerWidth, client: root.clientWidth, scroll: root.scrollWidth, widest, culprit};
})()"""
WIDEN = """document.querySelector("main").insertAdjacentHTML("afterbegin",
  '<div style="width:600px;height:4px"></div>')"""


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *QUIET, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT,
        check=False,
    )


class Tab:
    """One page of a Chromium driven over the DevTools protocol (a flat session)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str | None = None) -> None:
        self.ws, self.session = ws, session
        self._ids = itertools.count(1)
        self.events: list[str] = []  # every event seen, in order, so none is missed while awaiting a reply

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send_json(message)
        while True:
            reply = await self._next()
            if reply.get("id") == number:
                assert "error" not in reply, (method, reply)
                result: dict[str, Any] = reply["result"]
                return result

    async def until(self, event: str) -> None:
        while event not in self.events:
            await self._next()

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in reply, reply
        return reply["result"].get("value")

    async def _next(self) -> dict[str, Any]:
        frame = await self.ws.receive()
        assert frame.type is aiohttp.WSMsgType.TEXT, f"DevTools connection ended: {frame.type}"
        message: dict[str, Any] = json.loads(frame.data)
        if "method" in message:
            self.events.append(message["method"])
        return message


@contextlib.asynccontextmanager
async def _browser(chromium: str, profile: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """A headless Chromium listening for DevTools on loopback; yields its browser endpoint."""
    process = await asyncio.create_subprocess_exec(
        chromium,
        *QUIET,
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        found = None
        async with asyncio.timeout(CHROMIUM_TIMEOUT):
            while found is None and (line := await process.stderr.readline()):
                found = re.search(rb"DevTools listening on (ws://127\.0\.0\.1:\d+/\S+)", line)
        assert found is not None, "Chromium exited before saying where DevTools listens"
        # Keep reading its stderr, or a chatty browser blocks on a full pipe.
        drain = asyncio.create_task(process.stderr.read())
        async with aiohttp.ClientSession() as http:
            yield http, found.group(1).decode()
        drain.cancel()
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def _tab(chromium: str, profile: Path, size: tuple[int, int], *, mobile: bool) -> AsyncIterator[Tab]:
    async with (
        _browser(chromium, profile) as (http, endpoint),
        http.ws_connect(endpoint, max_msg_size=0) as ws,
    ):
        browser = Tab(ws)
        target = await browser.call("Target.createTarget", url="about:blank")
        attached = await browser.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        tab = Tab(ws, attached["sessionId"])
        tab._ids = browser._ids  # one connection: ids must not repeat across its sessions
        width, height = size
        await tab.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )
        await tab.call("Page.enable")
        yield tab


async def _open(tab: Tab, url: str) -> None:
    await tab.call("Page.navigate", url=url)
    await tab.until("Page.loadEventFired")


async def _screenshot(tab: Tab, png: Path) -> Path:
    shot = await tab.call("Page.captureScreenshot", format="png")
    await asyncio.to_thread(png.write_bytes, base64.b64decode(shot["data"]))
    return png


@contextlib.asynccontextmanager
async def _served(snapshot: Snapshot) -> AsyncIterator[str]:
    """The page as the daemon serves it (CSP and all), on loopback; yields its URL."""
    app = make_app(lambda: snapshot, registry=CollectorRegistry(), wall=lambda: NOW)
    runner = await serve(app, "127.0.0.1:0")
    try:
        yield f"http://{bound_addresses(runner)[0]}/"
    finally:
        await runner.cleanup()


def _visible(dom: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", dom))


def _check_content(dom: str, where: str) -> None:
    text = _visible(dom)
    for expected in (
        "2 of 4 services blocked · 1 confirming a change · vantage online · controls 1/2 up",
        "vol-7",
        "WeChat",
        "LINE",
        "Zello",
        "BBM",
        "short.weixin.qq.com",
        "tls.reset",
        "http.blockpage",
        "same for 12 cycles since 11:49",
        "blocked — confirming, 1 of 2 cycles dns.nxdomain",
        "NXDOMAIN once",
        "legacy",
        "evidence JSON",
    ):
        assert expected in text, (where, expected)
    assert len(re.findall(r'<a class="tile ', dom)) == 4, where
    assert len(re.findall(r'<span class="h s-', dom)) == 20, where  # the history cells Chromium kept
    # Hostile evidence arrived as text, not as markup: Chromium shows the escaped form.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom, where
    assert "<script" not in dom, where  # the page holds no script of any kind
    assert HOSTILE_EVIDENCE.split("<")[0] in dom, where


async def _render(chromium: str, tmp_path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with _served(history_scenario()) as url:
        for name, size, mobile in (("phone", PHONE, True), ("desktop", DESKTOP, False)):
            async with _tab(chromium, tmp_path / f"profile-{name}", size, mobile=mobile) as tab:
                await _open(tab, url)
                png = await _screenshot(tab, tmp_path / f"status-page-{name}.png")
                dom = await tab.evaluate("document.documentElement.outerHTML")
                measured = await tab.evaluate(MEASURE)
                await tab.evaluate(WIDEN)
                out[name] = (png, dom, measured, await tab.evaluate(MEASURE))
        dump = await asyncio.to_thread(
            _chromium, chromium, tmp_path / "profile-dump", "--dump-dom", "--window-size=1280,900", url
        )
    assert dump.returncode == 0, dump.stderr[-2000:]
    out["dump-dom"] = dump.stdout
    return out


def test_status_page_in_headless_chromium_at_phone_and_desktop_widths(tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    rendered = asyncio.run(_render(chromium, tmp_path))
    _check_content(rendered["dump-dom"], "--dump-dom")
    for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        png, dom, measured, widened = rendered[name]
        assert _png_size(png) == size, name
        assert png.stat().st_size > 20_000, name  # a blank page compresses to a few kB
        _check_content(dom, name)
        # The viewport really had this width (on the phone through the page's viewport meta) ...
        assert measured["inner"] == size[0], (name, measured)
        # ... nothing scrolls sideways and no element sticks out ...
        assert measured["scroll"] <= measured["client"], (name, measured)
        assert measured["widest"] <= measured["client"] + 0.5, (name, measured)
        # ... and the same measurement does see a page that overflows.
        if size[0] < 600:
            assert widened["scroll"] > widened["client"] and widened["widest"] > 600, (name, widened)
