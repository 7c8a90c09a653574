"""An on-path DNS injector, run in the censor's namespace of the path network.

``python -m tests.netns.inject_dns --iface IF --forged IP [--ttl N] NAME…``
sniffs the UDP queries forwarded through ``IF`` (a BPF filter: the kernel
hands over nothing else) and answers each A query for one of the names,
whatever its destination (a query to an address that runs no resolver is
answered too, as on-path injectors do), with a forged reply: from the
query's destination address and port to its source, the same DNS id and
question, one A record ``IP``, IP TTL ``N``. The query itself goes on to
the genuine resolver, whose reply arrives later: two replies to one
transmission, the second one genuine.

The forgery also carries scapy's fixed IP ID (1) where the kernel's vary:
another fingerprint, as real injectors have theirs.

It prints ``ready`` once the sniffer runs (not before: a query sent earlier
would go unanswered) and ``injected NAME`` per forged reply. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scapy.config import conf
from scapy.layers.dns import DNS, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.sendrecv import sniff

BPF = "udp and dst port 53"
ANSWER_TTL = 60  # s, the forged record's own TTL
TYPE_A = 1


def _name(raw: bytes) -> str:
    return raw.decode("ascii", "replace").rstrip(".").lower()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iface", required=True)
    parser.add_argument("--forged", required=True)
    parser.add_argument("--ttl", type=int, default=200)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    names = {_name(n.encode()) for n in args.names}
    # One socket for every forgery: opening it per answer would cost the race time.
    sender = conf.L3socket()

    def forge(packet: Any) -> None:
        if IP not in packet or UDP not in packet or DNS not in packet:
            return
        query = packet[DNS]
        if query.qr != 0 or not query.qd:
            return
        question = query.qd[0]
        name = _name(question.qname)
        if name not in names or question.qtype != TYPE_A:
            return
        ip, udp = packet[IP], packet[UDP]
        reply = (
            IP(src=ip.dst, dst=ip.src, ttl=args.ttl, id=1)
            / UDP(sport=udp.dport, dport=udp.sport)
            / DNS(
                id=query.id,
                qr=1,
                opcode=query.opcode,
                rd=query.rd,
                ra=1,
                rcode=0,
                qd=question,
                an=DNSRR(rrname=question.qname, type="A", rclass="IN", ttl=ANSWER_TTL, rdata=args.forged),
            )
        )
        sender.send(reply)
        print(f"injected {name}", flush=True)

    try:
        sniff(
            iface=args.iface,
            filter=BPF,
            prn=forge,
            store=False,
            started_callback=lambda: print("ready", flush=True),
        )
    finally:
        sender.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
