"""The path test network behaves as ``tests.netns.path`` documents.

Every fact the packet-evidence tests rely on is checked here with plain
sockets in the client namespace, no probe code involved: which address
answers at which hop and with which IP TTL, where the censor's SNI reset
and Host drop happen, the genuine and closed-port resets, the injector's
race and its answer from an address that runs no resolver, and the client
without CAP_NET_RAW.

The module is also the driver it runs in the client namespace
(``python -m tests.netns.test_path_network COMMAND …`` prints one JSON
object): raw sockets (we are root there) receive a copy of every incoming
ICMP and TCP packet with its IP header, which is how the IP TTLs are read
without any capture library.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import select
import socket
import ssl
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import pytest

from tests.conftest import require_netns
from tests.netns.path import (
    CENSOR_IP,
    CENSOR_RST_TTL,
    CLOSED_PORT,
    HOPS,
    HTTP_PORT,
    HTTPS_PORT,
    INJECTED_TTL,
    R1_IP,
    R2_IP,
    RESET_PORT,
    RESOLVER_DELAY,
    RESOLVER_IP,
    SERVER_IP,
    SERVER_TTL,
    SILENT_IP,
    PathNetwork,
    path_network,
)

DRIVER = "tests.netns.test_path_network"
DRIVER_TIMEOUT = 20.0  # s for one driver run: each of its waits is bounded far under it
ANSWER_WAIT = 2.0  # s for an answer that must come (a reply, a reset, an ICMP error): they take ms
SILENCE_WAIT = 1.0  # s of nothing that proves a drop (a reply takes ms here)
FORGED_IP = "10.79.4.66"
ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED = 3, 11
TCP_RST, TCP_SYN, TCP_ACK = 0x04, 0x02, 0x10
IP_RECVTTL = 12  # linux/in.h; the socket module does not export it
UDP_BASE_PORT = 33434  # traceroute's
BURST = 30  # datagrams sent at once to show that no ICMP error is rate limited


# The driver, run inside the client namespace.


def _ip_header(packet: bytes) -> tuple[int, int, str, bytes]:
    """(TTL, IP ID, source, payload) of an IPv4 packet."""
    ihl = (packet[0] & 0x0F) * 4
    return packet[8], struct.unpack_from("!H", packet, 4)[0], socket.inet_ntoa(packet[12:16]), packet[ihl:]


def _quoted_ports(icmp: bytes) -> tuple[int, int]:
    """The (source, destination) ports of the packet an ICMP error quotes."""
    inner = icmp[8:]
    ihl = (inner[0] & 0x0F) * 4
    sport, dport = struct.unpack_from("!HH", inner, ihl)
    return sport, dport


def _icmp_error(packet: bytes, local_port: int) -> dict[str, Any] | None:
    """The ICMP error in ``packet`` if it quotes a packet from ``local_port``."""
    ttl, _, source, icmp = _ip_header(packet)
    if icmp[0] in (ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED) and _quoted_ports(icmp)[0] == local_port:
        return {"src": source, "type": icmp[0], "ttl": ttl}
    return None


def _icmp_about(raw: socket.socket, local_port: int, deadline: float) -> dict[str, Any] | None:
    """The first ICMP error quoting a packet from ``local_port``, by ``deadline``."""
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([raw], [], [], left)[0]:
            break
        if (error := _icmp_error(raw.recv(65535), local_port)) is not None:
            return error
    return None


def _tcp_from(raw: socket.socket, port: int, local_port: int) -> list[dict[str, Any]]:
    """Every segment from ``SERVER_IP:port`` to ``local_port`` already queued on the raw socket."""
    segments = []
    with contextlib.suppress(BlockingIOError):
        while True:
            ttl, ip_id, source, tcp = _ip_header(raw.recv(65535, socket.MSG_DONTWAIT))
            sport, dport = struct.unpack_from("!HH", tcp)
            if source == SERVER_IP and sport == port and dport == local_port:
                segments.append({"ttl": ttl, "ip_id": ip_id, "flags": tcp[13]})
    return segments


def _hop(ttl: int, count: int) -> dict[str, Any]:
    """``count`` UDP datagrams at once with IP TTL ``ttl`` to SERVER_IP: the ICMP errors they draw."""
    errors: list[dict[str, Any]] = []
    with (
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        for _ in range(count):
            udp.sendto(b"hop", (SERVER_IP, UDP_BASE_PORT + ttl))
        deadline = time.monotonic() + ANSWER_WAIT
        while len(errors) < count and (error := _icmp_about(raw, udp.getsockname()[1], deadline)):
            errors.append(error)
    return {"icmp": errors}


def _client_hello(name: str) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _handshake(name: str, port: int, ca: str) -> dict[str, Any]:
    """A TLS handshake with SNI ``name``: its outcome and every segment the server's address sent."""
    context = ssl.create_default_context(cafile=ca)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as raw:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(ANSWER_WAIT)
        sock.bind(("0.0.0.0", 0))
        local = sock.getsockname()[1]
        try:
            sock.connect((SERVER_IP, port))
            with context.wrap_socket(sock, server_hostname=name) as tls:
                outcome = f"ok {tls.version()}"
        except ConnectionResetError:
            outcome = "reset"
        except ConnectionRefusedError:
            outcome = "refused"
        except TimeoutError:
            outcome = "timeout"
        finally:
            sock.close()
        # Raw copies are queued before TCP handles the segment: everything is already there.
        return {"outcome": outcome, "segments": _tcp_from(raw, port, local)}


def _trigger(kind: str, name: str, ttl: int, wait: float) -> dict[str, Any]:
    """The trigger for ``name`` (a ClientHello, or an HTTP request) sent with IP TTL ``ttl``
    on an established connection: the first ICMP error or server-address RST it draws."""
    port = HTTPS_PORT if kind == "sni" else HTTP_PORT
    payload = _client_hello(name) if kind == "sni" else f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as icmp_raw,
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as tcp_raw,
        socket.create_connection((SERVER_IP, port), ANSWER_WAIT) as sock,
    ):
        local = sock.getsockname()[1]
        # Set on an established socket, IP_TTL applies to the segments sent from now on.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.sendall(payload)
        deadline = time.monotonic() + wait
        result: dict[str, Any] = {"icmp": None, "reset": None}
        while (left := deadline - time.monotonic()) > 0:
            ready = select.select([icmp_raw, tcp_raw], [], [], left)[0]
            if icmp_raw in ready:
                result["icmp"] = _icmp_error(icmp_raw.recv(65535), local)
            if tcp_raw in ready:
                resets = [s for s in _tcp_from(tcp_raw, port, local) if s["flags"] & TCP_RST]
                result["reset"] = resets[0] if resets else None
            if result["icmp"] or result["reset"]:
                break
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return result


def _http(host: str) -> dict[str, Any]:
    with socket.create_connection((SERVER_IP, HTTP_PORT), ANSWER_WAIT) as sock:
        sock.settimeout(SILENCE_WAIT)
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        try:
            return {"status": sock.recv(4096).split(b"\r\n", 1)[0].decode()}
        except TimeoutError:
            return {"status": None}


def _dns(address: str, name: str, replies: int, wait: float) -> dict[str, Any]:
    """One A query for ``name`` to ``address``: the replies (with their IP TTL) until
    ``replies`` have come or ``wait`` s have passed."""
    query = dns.message.make_query(name, "A")
    seen: list[dict[str, Any]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        sent = time.monotonic()
        sock.sendto(query.to_wire(), (address, 53))
        while len(seen) < replies and (left := sent + wait - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            data, ancillary, _, source = sock.recvmsg(4096, socket.CMSG_SPACE(4))
            ttl = next(struct.unpack("i", d)[0] for level, kind, d in ancillary if kind == socket.IP_TTL)
            reply = dns.message.from_wire(data)
            addresses = [item.to_text() for rrset in reply.answer for item in rrset]
            seen.append({"src": source[0], "ttl": ttl, "id": reply.id == query.id, "addresses": addresses,
                         "t": time.monotonic() - sent})  # fmt: skip
    return {"replies": seen}


def _capabilities() -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kind, family, proto in (
        ("packet", socket.AF_PACKET, socket.SOCK_RAW),
        ("raw", socket.AF_INET, socket.SOCK_RAW),
    ):
        try:
            socket.socket(family, proto, socket.IPPROTO_TCP if kind == "raw" else 0).close()
            result[kind] = "ok"
        except OSError as exc:
            result[kind] = errno.errorcode.get(exc.errno or 0, str(exc))
    with socket.create_connection((SERVER_IP, HTTP_PORT), ANSWER_WAIT):
        result["tcp"] = "ok"
    return result


def _drive(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog=DRIVER)
    commands = parser.add_subparsers(dest="command", required=True)
    hop = commands.add_parser("hop")
    hop.add_argument("ttl", type=int)
    hop.add_argument("count", type=int, nargs="?", default=1)
    tls = commands.add_parser("tls")
    for arg in ("name", "port", "ca"):
        tls.add_argument(arg)
    trigger = commands.add_parser("trigger")
    for arg in ("kind", "name", "ttl", "wait"):
        trigger.add_argument(arg)
    commands.add_parser("http").add_argument("host")
    query = commands.add_parser("dns")
    for arg in ("address", "name", "replies", "wait"):
        query.add_argument(arg)
    commands.add_parser("caps")
    args = parser.parse_args(argv)
    if args.command == "hop":
        return _hop(args.ttl, args.count)
    if args.command == "tls":
        return _handshake(args.name, int(args.port), args.ca)
    if args.command == "trigger":
        return _trigger(args.kind, args.name, int(args.ttl), float(args.wait))
    if args.command == "http":
        return _http(args.host)
    if args.command == "dns":
        return _dns(args.address, args.name, int(args.replies), float(args.wait))
    return _capabilities()


# The tests.


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PathNetwork, Path]]:
    require_netns()
    workdir = tmp_path_factory.mktemp("netns-path")
    with path_network() as net:
        net.start_server(workdir)
        yield net, workdir


@pytest.fixture
def net(network: tuple[PathNetwork, Path]) -> Iterator[PathNetwork]:
    """The network with a censor that has no rule and no injector, before and after the test."""
    with network[0].flushed() as clean:
        yield clean


@pytest.fixture
def ca(network: tuple[PathNetwork, Path]) -> str:
    return str(network[1] / "ca.pem")


def drive(net: PathNetwork, *args: object, net_raw: bool = True) -> dict[str, Any]:
    run = net.python(net.client, "-m", DRIVER, *map(str, args), timeout=DRIVER_TIMEOUT, net_raw=net_raw)
    if run.returncode != 0:
        raise AssertionError(f"driver {args}: exit {run.returncode}: {run.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def replies(net: PathNetwork, address: str, name: str, count: int, wait: float) -> list[dict[str, Any]]:
    """The replies to one query, until ``count`` have come or ``wait`` s have passed."""
    seen: list[dict[str, Any]] = drive(net, "dns", address, name, count, wait)["replies"]
    return seen


def test_each_router_answers_its_hop_with_time_exceeded(net: PathNetwork) -> None:
    assert HOPS == {1: R1_IP, 2: R2_IP, 3: CENSOR_IP}
    seen = {ttl: drive(net, "hop", ttl)["icmp"] for ttl in (1, 2, 3, 4)}
    assert seen == {
        1: [{"src": R1_IP, "type": ICMP_TIME_EXCEEDED, "ttl": 64}],
        2: [{"src": R2_IP, "type": ICMP_TIME_EXCEEDED, "ttl": 63}],
        3: [{"src": CENSOR_IP, "type": ICMP_TIME_EXCEEDED, "ttl": CENSOR_RST_TTL}],  # it starts at 255
        4: [{"src": SERVER_IP, "type": ICMP_UNREACHABLE, "ttl": SERVER_TTL}],  # hop 4: the server itself
    }


def test_time_exceeded_is_not_rate_limited(net: PathNetwork) -> None:
    # Linux's default answers a burst of 6 per destination, then one a second.
    for ttl in (1, 2, 3):
        errors = drive(net, "hop", ttl, BURST)["icmp"]
        assert [e["src"] for e in errors] == [HOPS[ttl]] * BURST


def test_blocked_sni_is_reset_by_the_censor_and_clean_passes(net: PathNetwork, ca: str) -> None:
    net.reset_sni("blocked.path.test")
    clean = drive(net, "tls", "clean.path.test", HTTPS_PORT, ca)
    assert clean["outcome"] == "ok TLSv1.3"
    assert not [s for s in clean["segments"] if s["flags"] & TCP_RST]
    blocked = drive(net, "tls", "blocked.path.test", HTTPS_PORT, ca)
    assert blocked["outcome"] == "reset"
    synack, *rest = blocked["segments"]
    assert synack["flags"] == TCP_SYN | TCP_ACK and synack["ttl"] == SERVER_TTL
    resets = [s for s in rest if s["flags"] & TCP_RST]
    assert [(s["ttl"], s["flags"]) for s in resets] == [(CENSOR_RST_TTL, TCP_RST)]  # one forged RST


def test_genuine_resets_carry_the_servers_ttl(net: PathNetwork, ca: str) -> None:
    after_hello = drive(net, "tls", "chat.path.test", RESET_PORT, ca)
    assert after_hello["outcome"] == "reset"
    assert [s["ttl"] for s in after_hello["segments"] if s["flags"] & TCP_RST] == [SERVER_TTL]
    closed = drive(net, "tls", "chat.path.test", CLOSED_PORT, ca)
    assert closed["outcome"] == "refused"
    assert [(s["ttl"], s["flags"]) for s in closed["segments"]] == [(SERVER_TTL, TCP_RST | TCP_ACK)]


def test_the_sni_reset_happens_at_hop_3(net: PathNetwork) -> None:
    net.reset_sni("blocked.path.test")
    at_2 = drive(net, "trigger", "sni", "blocked.path.test", 2, ANSWER_WAIT)
    assert at_2["icmp"] == {"src": R2_IP, "type": ICMP_TIME_EXCEEDED, "ttl": 63}
    assert at_2["reset"] is None
    at_3 = drive(net, "trigger", "sni", "blocked.path.test", 3, ANSWER_WAIT)
    assert at_3["icmp"] is None  # the censor resets instead of expiring the trigger
    assert at_3["reset"]["ttl"] == CENSOR_RST_TTL
    clean_at_3 = drive(net, "trigger", "sni", "clean.path.test", 3, ANSWER_WAIT)
    assert clean_at_3 == {"icmp": {"src": CENSOR_IP, "type": ICMP_TIME_EXCEEDED, "ttl": CENSOR_RST_TTL},
                          "reset": None}  # fmt: skip


def test_the_host_drop_is_silence_from_hop_3(net: PathNetwork) -> None:
    net.drop_host("blocked.path.test")
    assert drive(net, "http", "clean.path.test")["status"] == "HTTP/1.1 200 OK"
    assert drive(net, "http", "blocked.path.test")["status"] is None
    at_2 = drive(net, "trigger", "host", "blocked.path.test", 2, ANSWER_WAIT)
    assert at_2["icmp"] is not None and at_2["icmp"]["src"] == R2_IP
    at_3 = drive(net, "trigger", "host", "blocked.path.test", 3, SILENCE_WAIT)
    assert at_3 == {"icmp": None, "reset": None}
    clean_at_3 = drive(net, "trigger", "host", "clean.path.test", 3, ANSWER_WAIT)
    assert clean_at_3["icmp"] is not None and clean_at_3["icmp"]["src"] == CENSOR_IP


def test_the_resolver_answers_once_and_late(net: PathNetwork) -> None:
    (reply,) = replies(net, RESOLVER_IP, "canary.path.test", 2, RESOLVER_DELAY + SILENCE_WAIT)
    assert reply["addresses"] == [SERVER_IP] and reply["ttl"] == SERVER_TTL and reply["id"]
    assert reply["t"] >= RESOLVER_DELAY
    assert replies(net, SILENT_IP, "chat.path.test", 1, SILENCE_WAIT) == []


def test_the_injector_wins_the_race_with_its_own_ttl(net: PathNetwork) -> None:
    injector = net.inject_dns(["chat.path.test"], FORGED_IP)
    forged, genuine = replies(net, RESOLVER_IP, "chat.path.test", 2, RESOLVER_DELAY + ANSWER_WAIT)
    injector.stdout.expect("injected chat.path.test", ANSWER_WAIT)
    assert (forged["src"], forged["addresses"], forged["ttl"]) == (RESOLVER_IP, [FORGED_IP], INJECTED_TTL - 2)
    assert (genuine["src"], genuine["addresses"], genuine["ttl"]) == (RESOLVER_IP, [SERVER_IP], SERVER_TTL)
    assert forged["id"] and genuine["id"] and forged["t"] < genuine["t"]
    # Other names pass untouched: the canary baseline gets the resolver's reply alone.
    (canary,) = replies(net, RESOLVER_IP, "canary.path.test", 2, RESOLVER_DELAY + SILENCE_WAIT)
    assert canary["ttl"] == SERVER_TTL


def test_an_address_with_no_resolver_is_answered_by_the_injector_only(net: PathNetwork) -> None:
    net.inject_dns(["chat.path.test"], FORGED_IP, ttl=100)
    (forged,) = replies(net, SILENT_IP, "chat.path.test", 2, SILENCE_WAIT)
    assert (forged["src"], forged["addresses"], forged["ttl"]) == (SILENT_IP, [FORGED_IP], 98)


def test_without_net_raw_raw_sockets_fail_and_tcp_works(net: PathNetwork) -> None:
    assert drive(net, "caps") == {"packet": "ok", "raw": "ok", "tcp": "ok"}
    assert drive(net, "caps", net_raw=False) == {"packet": "EPERM", "raw": "EPERM", "tcp": "ok"}


if __name__ == "__main__":
    print(json.dumps(_drive(sys.argv[1:])))
