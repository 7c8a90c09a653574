"""The DPI middlebox, in front of a genuine server, driven by raw sockets,
the ssl module and aiohttp: what it does per SNI and per Host, and how it
reads a first flight that arrives in pieces."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest

from probe.testbed.middlebox import (
    FIRST_FLIGHT_TIMEOUT,
    Action,
    CensorProxy,
    Reset,
    Stall,
    client_hello_sni,
    http_host,
)
from probe.testbed.pki import TestCA
from probe.testbed.replies import RKN_BLOCKPAGE, Blockpage, Redirect
from probe.testbed.servers import TITLE, WebServer
from tests.testbed.loop import HOST, OTHER_HOST, client_context, run

CA = TestCA()
LEAF = CA.issue(["svc.test", "blocked.test", "decoy.test"])
WARNING = "http://warning.rt.ru/?id=17&dt=blocked.test"
SNI_RULES: dict[str, Action] = {"blocked.test": Reset(), "stalled.test": Stall()}
HOST_RULES: dict[str, Action] = {
    "reset.test": Reset(),
    "stalled.test": Stall(),
    "blockpage.test": Blockpage(RKN_BLOCKPAGE),
    "legal.test": Blockpage("unavailable", status=451),
    "redirect.test": Redirect(WARNING),
}


def client_hello(server_hostname: str) -> bytes:
    """The first flight a Python TLS client sends for ``server_hostname``, with no socket at all."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(CA).wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def refragment(hello: bytes, cut: int) -> bytes:
    """The same ClientHello split into two TLS records at ``cut`` bytes of its body."""
    header, body = hello[:5], hello[5:]
    records = [body[:cut], body[cut:]]
    return b"".join(header[:3] + len(r).to_bytes(2, "big") + r for r in records)


Proxies = tuple[CensorProxy, CensorProxy]  # (TLS in front of HTTPS, plain in front of HTTP)


@asynccontextmanager
async def censored() -> AsyncIterator[Proxies]:
    async with (
        WebServer(OTHER_HOST, leaf=LEAF) as server,
        CensorProxy(HOST, 0, (OTHER_HOST, server.https_port), sni_rules=dict(SNI_RULES)) as tls,
        CensorProxy(HOST, 0, (OTHER_HOST, server.http_port), host_rules=dict(HOST_RULES)) as plain,
    ):
        yield tls, plain


def with_proxies(use: Callable[[CensorProxy, CensorProxy], Awaitable[None]]) -> None:
    async def body() -> None:
        async with censored() as (tls, plain):
            await use(tls, plain)

    run(body)


async def send_in_pieces(proxy: CensorProxy, data: bytes, cuts: list[int]) -> bytes:
    """Send ``data`` cut at ``cuts`` (one TCP segment each, with pauses), return what comes back."""
    reader, writer = await asyncio.open_connection(*proxy.address)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            writer.write(data[start:end])
            await writer.drain()
            await asyncio.sleep(0.02)
        async with asyncio.timeout(2):
            return await reader.read(5)
    finally:
        writer.close()
        await writer.wait_closed()


async def tls_get(proxy: CensorProxy, sni: str, timeout: float = 2.0) -> str:
    """A verified TLS handshake through the proxy, then GET / over it: the page title line."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            *proxy.address, ssl=client_context(CA), server_hostname=sni
        )
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        return (await reader.read()).decode()
    finally:
        writer.close()
        await writer.wait_closed()


def test_sni_rules_reset_stall_or_pass_the_same_address() -> None:
    async def use(tls: CensorProxy, plain: CensorProxy) -> None:
        # The decoy completes a handshake the test CA vouches for, and bytes flow both ways.
        assert f"<title>{TITLE}</title>" in await tls_get(tls, "decoy.test")
        assert TITLE in await tls_get(tls, "svc.test")
        with pytest.raises(ConnectionResetError):
            await tls_get(tls, "blocked.test")
        with pytest.raises(ConnectionResetError):
            await tls_get(tls, "BLOCKED.test")
        with pytest.raises(TimeoutError):
            await tls_get(tls, "stalled.test", timeout=0.3)
        tls.sni_rules["decoy.test"] = Reset()  # rules change while it serves
        with pytest.raises(ConnectionResetError):
            await tls_get(tls, "decoy.test")

    with_proxies(use)


def test_reset_comes_after_a_raw_client_hello_and_is_a_real_rst() -> None:
    async def use(tls: CensorProxy, plain: CensorProxy) -> None:
        with pytest.raises(ConnectionResetError):
            await send_in_pieces(tls, client_hello("blocked.test"), [])
        # The decoy's ClientHello gets the server's answer: a handshake record.
        assert (await send_in_pieces(tls, client_hello("decoy.test"), []))[:1] == b"\x16"

    with_proxies(use)


@pytest.mark.parametrize("layout", ["segments", "records", "segments-of-records"])
def test_client_hello_in_pieces_is_still_read(layout: str) -> None:
    def first_flight(name: str) -> tuple[bytes, list[int]]:
        hello = client_hello(name)
        if layout == "segments":  # record header alone, then mid-extension, then the rest
            return hello, [3, 5, len(hello) // 2]
        split = refragment(hello, 40)  # the SNI lands in the second record
        return split, ([] if layout == "records" else [44, 47, 100])

    async def use(tls: CensorProxy, plain: CensorProxy) -> None:
        with pytest.raises(ConnectionResetError):
            await send_in_pieces(tls, *first_flight("blocked.test"))
        assert (await send_in_pieces(tls, *first_flight("decoy.test")))[:1] == b"\x16"

    with_proxies(use)


async def http(
    proxy: CensorProxy, host: str, *, method: str = "GET", data: bytes | None = None
) -> tuple[int, str, str, str | None]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"http://{HOST}:{proxy.port}/", headers={"Host": host}, data=data, allow_redirects=False
        ) as response,
    ):
        return response.status, response.reason or "", await response.text(), response.headers.get("Location")


def test_host_rules_answer_for_the_server_or_pass() -> None:
    async def use(tls: CensorProxy, plain: CensorProxy) -> None:
        status, _, text, _ = await http(plain, "svc.test")
        assert status == 200 and TITLE in text
        status, _, text, _ = await http(plain, "BlockPage.test:80")
        assert status == 200 and "Роскомнадзор" in text and "eais.rkn.gov.ru" in text
        # The request body the box never reads does not spoil its answer.
        status, _, text, _ = await http(plain, "blockpage.test", method="POST", data=b"x" * 200_000)
        assert status == 200 and "Роскомнадзор" in text
        assert (await http(plain, "legal.test"))[:3] == (451, "Unavailable For Legal Reasons", "unavailable")
        status, _, _, location = await http(plain, "redirect.test")
        assert (status, location) == (302, WARNING)
        with pytest.raises(aiohttp.ClientOSError, match="Connection reset by peer"):
            await http(plain, "reset.test")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await http(plain, "stalled.test")

    with_proxies(use)


def test_an_injected_answer_ends_in_fin_even_with_a_request_body_unread() -> None:
    # Closing with unread input makes the kernel send RST, which a client
    # reading to the end would take for a reset; the box must hang up cleanly.
    async def use(tls: CensorProxy, plain: CensorProxy) -> None:
        reader, writer = await asyncio.open_connection(*plain.address)
        body = b"x" * 200_000
        writer.write(b"POST / HTTP/1.1\r\nHost: blockpage.test\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)
        async with asyncio.timeout(2):
            answer = await reader.read()  # to EOF: raises ConnectionResetError on RST
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and "Роскомнадзор".encode() in answer

    with_proxies(use)


def test_reset_after_the_request_is_a_real_rst_for_a_raw_client() -> None:
    async def use(tls: CensorProxy, plain: CensorProxy) -> None:
        request = b"GET / HTTP/1.1\r\nHost: reset.test\r\n\r\n"
        with pytest.raises(ConnectionResetError):
            await send_in_pieces(plain, request, [4, 20])
        assert await send_in_pieces(plain, request.replace(b"reset", b"svc"), [4, 20]) == b"HTTP/"

    with_proxies(use)


def test_other_protocols_pass_through_at_once() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    async def body() -> None:
        backend = await asyncio.start_server(echo, OTHER_HOST, 0)
        async with backend, CensorProxy(HOST, 0, backend.sockets[0].getsockname()[:2]) as proxy:
            for hello in (b"\x00\x01binary", b"SSH-2.0-OpenSSH_9.6\r\n", b"get / lower-case"):
                async with asyncio.timeout(FIRST_FLIGHT_TIMEOUT / 5):  # not waiting for a head
                    assert await send_in_pieces(proxy, hello, []) == hello[:5]

    run(body)


def test_a_connection_that_sends_nothing_never_reaches_the_backend() -> None:
    accepted = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        writer.close()

    async def body() -> None:
        backend = await asyncio.start_server(count, OTHER_HOST, 0)
        async with backend, CensorProxy(HOST, 0, backend.sockets[0].getsockname()[:2]) as proxy:
            for _ in range(3):
                _, writer = await asyncio.open_connection(*proxy.address)  # a TCP reachability check
                writer.close()
                await writer.wait_closed()
            assert await send_in_pieces(proxy, b"\x00data", []) == b""
            await asyncio.sleep(0.05)
        assert len(accepted) == 1

    run(body)


def test_garbage_and_a_dead_backend_leave_the_proxy_serving() -> None:
    rng = random.Random(1)
    flights = [
        b"\x16\x03\x01\xff\xff" + rng.randbytes(300),  # a record that promises 64 KiB, then a hang-up
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",  # a ClientHello too short to hold anything
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",  # a handshake, but not a ClientHello
        b"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n",
        rng.randbytes(3000),
    ]

    async def use(tls: CensorProxy, plain: CensorProxy) -> None:
        for flight in flights:
            for proxy in (tls, plain):
                _, writer = await asyncio.open_connection(*proxy.address)
                writer.write(flight)
                writer.close()
                await writer.wait_closed()
        async with CensorProxy(HOST, 0, (OTHER_HOST, 1)) as dead:  # nothing listens at port 1
            assert await send_in_pieces(dead, client_hello("svc.test"), []) == b""
        assert TITLE in await tls_get(tls, "svc.test")
        assert (await http(plain, "svc.test"))[0] == 200

    with_proxies(use)


def test_closing_with_spliced_stalled_and_half_read_connections_leaks_nothing() -> None:
    async def body() -> None:
        async with censored() as (tls, plain):
            ctx = client_context(CA)
            spliced = await asyncio.open_connection(*tls.address, ssl=ctx, server_hostname="svc.test")
            stalled = await asyncio.open_connection(*plain.address)
            stalled[1].write(b"GET / HTTP/1.1\r\nHost: stalled.test\r\n\r\n")
            half = await asyncio.open_connection(*tls.address)
            half[1].write(client_hello("svc.test")[:20])
            await asyncio.sleep(0.05)
        # Every client sees its connection end once the proxies are gone.
        for reader, writer in (spliced, stalled, half):
            async with asyncio.timeout(1):
                assert await reader.read() == b""
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    run(body)


def test_sni_and_host_parsers() -> None:
    hello = client_hello("Mixed.Case.test")
    assert client_hello_sni(hello) == "mixed.case.test"
    assert client_hello_sni(refragment(hello, 10)) == "mixed.case.test"
    assert client_hello_sni(hello[:-1]) is False
    assert client_hello_sni(hello[:3]) is False
    assert client_hello_sni(b"\x17\x03\x03\x00\x01\x00") is None
    no_sni = client_context(CA)
    no_sni.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    with pytest.raises(ssl.SSLWantReadError):
        no_sni.wrap_bio(incoming, outgoing).do_handshake()
    assert client_hello_sni(outgoing.read()) is None
    assert http_host(b"GET / HTTP/1.1\r\nHOST: Svc.Test:8080\r\n\r\n") == "svc.test"
    assert http_host(b"GET / HTTP/1.1\r\nhost: [::1]:80\r\n\r\n") == "::1"
    assert http_host(b"GET / HTTP/1.1\r\nHost: svc.test\r\n") is False
    assert http_host(b"GE") is False
    assert http_host(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") is None
    assert http_host(b"\x00\x01") is None
    assert http_host(b"GET\n") is None  # not a request line: no waiting for a head
