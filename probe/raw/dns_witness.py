"""The raw DNS witness: the suspect query sent once more, with its replies captured.

One transmission per query, never a retransmission: two replies to it can
then only mean that something besides the resolver answered. Each reply's
IP TTL and IP ID are read from the capture, and the same is done for the
canary name at the same resolver (the resolver's own TTL over the same path
back) and, when configured, at addresses on the path that run no resolver.
The socket stays open and is read for the whole window, so the kernel never
answers a late reply with a port unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from probe.model_packets import PacketFacts, RawDns
from probe.raw.capture import Capture, Packet

SILENT_WAIT = (
    2.0  # s an address with no resolver is given: injectors answer in ms, OONI's legacy test gave 3 s
)


def _facts(packet: Packet, sent: float, query_id: int) -> PacketFacts | None:
    try:
        reply = dns.message.from_wire(packet.payload)
    except (dns.exception.DNSException, ValueError):
        return None  # garbage on the flow is not an answer to our query
    if reply.id != query_id:
        return None
    addresses = tuple(
        item.to_text()
        for rrset in reply.answer
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for item in rrset
    )
    return PacketFacts(
        t=packet.t - sent,
        src=packet.src,
        ttl=packet.ttl,
        ip_id=packet.ip_id,
        df=packet.df,
        payload=len(packet.payload),
        rcode=dns.rcode.to_text(reply.rcode()),
        addresses=addresses,
    )


async def _drain(sock: socket.socket, first: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await loop.sock_recv(sock, 4096)
        first.set()


async def exchange(
    address: str, port: int, name: str, qtype: str, *, wait: float, hold: float
) -> tuple[PacketFacts, ...]:
    """One transmission of ``name`` to ``address``: every reply within ``hold`` s of the first
    (at most ``wait`` s for that first one), as the capture saw them."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    query = dns.message.make_query(name, qtype)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        local = sock.getsockname()[1]
        capture = await Capture.start(
            f"udp and host {address} and port {port} and port {local}", toward=address
        )
        first = asyncio.Event()
        drain = asyncio.create_task(_drain(sock, first))
        try:
            sent = time.time()
            await asyncio.get_running_loop().sock_sendto(sock, query.to_wire(), (address, port))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await first.wait()
            rtt = time.time() - sent if first.is_set() else 0.0
            await asyncio.sleep(max(hold, 2 * rtt) if first.is_set() else 0.0)
        except BaseException:
            capture.close()
            raise
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await drain
        packets = await capture.stop()
    outgoing = [p.t for p in packets if p.dst == address and p.dport == port and p.sport == local]
    sent_at = outgoing[0] if outgoing else sent
    replies = (
        _facts(p, sent_at, query.id)
        for p in packets
        if p.proto == "udp" and p.src == address and p.sport == port and p.dport == local
    )
    return tuple(r for r in replies if r is not None)


async def dns_witness(
    *,
    resolver: str,
    address: str,
    port: int,
    hostname: str,
    qtype: str,
    canary: str,
    no_resolver: tuple[str, ...],
    timeout: float,
    window: float,
) -> RawDns:
    """The suspect query, the canary baseline and the no-resolver queries, run side by side."""
    async with asyncio.TaskGroup() as group:  # one failing cancels the others: no capture is orphaned
        suspect = group.create_task(exchange(address, port, hostname, qtype, wait=timeout, hold=window))
        baseline = group.create_task(exchange(address, port, canary, "A", wait=timeout, hold=window))
        silent = [
            group.create_task(exchange(a, 53, hostname, qtype, wait=min(timeout, SILENT_WAIT), hold=window))
            for a in no_resolver
        ]
    return RawDns(
        kind="raw_dns",
        hostname=hostname,
        qtype=qtype,
        resolver=resolver,
        address=address,
        canary=canary,
        replies=suspect.result(),
        baseline=baseline.result(),
        silent=tuple((a, task.result()) for a, task in zip(no_resolver, silent, strict=True)),
        window=window,
    )
