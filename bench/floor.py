"""The physical floor: one HTTPS GET with a blocking socket and Python's ``ssl``, nothing else.

    python -m bench.floor CONFIG [--limit N] [--dns]

For each endpoint of CONFIG (a config the loopback censor wrote, the very
one the full-chain benchmark measures) it opens a TCP connection to the
endpoint's address, does one verified TLS handshake (the same CA bundle,
the same SNI), sends one HTTP/1.1 GET and reads the response to the end of
its body: one endpoint after another, no event loop, no concurrency
machinery, no parsing beyond the status line and Content-Length. That is
about the least CPU any Python probe can spend to show that an HTTPS
service answers, so msgprobe's full-chain CPU per endpoint divided by this
says what its machinery costs on top of the bytes that must move.

CPU is this process's own (``time.process_time``): the censor serves from
its own process and waiting on loopback is not CPU. The first few endpoints
warm up (imports, the CA store) and are not counted.

``--dns`` adds, per endpoint, one A and one AAAA query over a plain UDP
socket to the config's resolver, as msgprobe resolves every name first. It
is printed as a separate figure; the ratio's floor is the one without.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

TIMEOUT = 5.0  # seconds per socket operation: loopback answers in well under that
WARMUP = 5
MAX_RESPONSE = 1 << 20  # the testbed's page is a few hundred bytes; never read more than this


@dataclass(frozen=True)
class Target:
    host: str  # SNI and Host header
    address: str  # where the censor listens for it
    port: int
    path: str


def targets(config: dict[str, object]) -> list[Target]:
    """Every endpoint with an HTTPS check, at the (first) address the testbed expects it on."""
    out = []
    for service in config["services"]:  # type: ignore[attr-defined]
        for endpoint in service["endpoints"]:
            urls = [c.split(":", 1)[1] for c in endpoint["checks"] if c.startswith("http:https://")]
            prefixes = endpoint.get("expected", {}).get("prefixes", [])
            if not urls or not prefixes:
                continue
            url = urlsplit(urls[0])
            address = str(ipaddress.ip_network(prefixes[0]).network_address)
            out.append(Target(endpoint["host"], address, url.port or 443, url.path or "/"))
    return out


def https_get(context: ssl.SSLContext, target: Target) -> int:
    """One connection, one handshake, one GET; the response's status code."""
    request = (
        f"GET {target.path} HTTP/1.1\r\nHost: {target.host}\r\nUser-Agent: bench-floor\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    with (
        socket.create_connection((target.address, target.port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=target.host) as tls,
    ):
        tls.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < MAX_RESPONSE:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            (int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"),
            None,
        )
        while (length is None or len(body) < length) and len(body) < MAX_RESPONSE:
            try:
                chunk = tls.recv(65536)
            except ssl.SSLEOFError:  # a server that closes without close_notify
                break
            if not chunk:
                break
            body += chunk
    return status


def _query(name: str, qtype: int) -> bytes:
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    header = struct.pack("!HHHHHH", int.from_bytes(os.urandom(2), "big"), 0x0100, 1, 0, 0, 0)
    return header + qname + struct.pack("!HH", qtype, 1)


def resolve(resolver: tuple[str, int], name: str) -> None:
    """One A and one AAAA query over a connected UDP socket, each awaited in turn."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(TIMEOUT)
        udp.connect(resolver)
        for qtype in (1, 28):
            query = _query(name, qtype)
            udp.send(query)
            while udp.recv(4096)[:2] != query[:2]:
                pass


def measure(config_path: Path, *, limit: int | None = None, dns: bool = False) -> dict[str, float]:
    config = yaml.safe_load(config_path.read_text())
    context = ssl.create_default_context(cafile=config["tls"]["ca_bundle"])
    host, _, port = config["resolvers"][0].rpartition(":")
    resolver = (host, int(port))
    chosen = targets(config)[:limit]
    for target in chosen[:WARMUP]:
        https_get(context, target)
    counted = chosen[WARMUP:] or chosen
    ok = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for target in counted:
        if dns:
            resolve(resolver, target.host)
        ok += https_get(context, target) == 200
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "endpoints": len(counted),
        "ok": ok,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 4),
        "cpu_ms_per_endpoint": round(1000 * cpu / len(counted), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--dns", action="store_true", help="resolve each name (A, AAAA) first")
    args = parser.parse_args()
    print(json.dumps(measure(args.config, limit=args.limit, dns=args.dns)), flush=True)
