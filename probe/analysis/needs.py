"""Which follow-up measurement a step's outcome calls for.

Each predicate encodes the witness an analysis rule will ask for; measure
imports them, so the follow-up that runs and the rule that reads it can never
drift apart (a decoy that is never run makes a rule silently never fire).
Pure functions of observations and config.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from probe.addresses import in_prefixes, is_bogon
from probe.config.model import Endpoint, IPNetwork
from probe.model import DnsObservation, HttpObservation, TcpObservation, TlsObservation, Verdict
from probe.vocab import CERTIFICATE_FAILURES, DECOY_WORTHY, Failure, Method, Operation, Purpose, Status

CANARY_WORTHY = frozenset({Failure.DNS_REFUSED, Failure.DNS_SERVER_FAILURE, Failure.TIMEOUT})


def needs_decoy(failure: Failure | None) -> bool:
    """A reset or stall a harmless name may survive (tls.reset/timeout, http.reset/timeout)."""
    return failure in DECOY_WORTHY


def needs_http_decoy(o: HttpObservation) -> bool:
    """A reset or stall after the connection was up: a connect failure is no name-based block."""
    return needs_decoy(o.failure) and o.failed_operation is not Operation.CONNECT


def needs_inspection(failure: Failure | None) -> bool:
    """A rejected certificate whose issuer may name an interception CA (tls.mitm)."""
    return failure in CERTIFICATE_FAILURES


def needs_canary(probe: Sequence[DnsObservation]) -> bool:
    """No address and a refusal, silence or a chain of CNAMEs leading nowhere:
    does the resolver answer other names at all?"""
    return not any(o.addresses for o in probe) and any(
        o.failure in CANARY_WORTHY or unanswered_chain(o) for o in probe
    )


def unanswered_chain(o: DnsObservation) -> bool:
    """An empty NOERROR that named a CNAME: a resolver that answers every name
    this way (the canary too) is broken, not censoring this one."""
    return o.failure is Failure.DNS_NO_ANSWER and bool(o.cnames)


def ordinary_space(endpoint: Endpoint, test_networks: tuple[IPNetwork, ...]) -> tuple[IPNetwork, ...]:
    """Prefixes where an answer is not a bogon: the service's own and the test networks."""
    return endpoint.expected.prefixes + test_networks


def outside_expected(endpoint: Endpoint, addresses: Sequence[str]) -> bool:
    prefixes = endpoint.expected.prefixes
    return bool(prefixes) and not all(in_prefixes(a, prefixes) for a in addresses)


def needs_control(
    endpoint: Endpoint,
    probe: Sequence[DnsObservation],
    test_networks: tuple[IPNetwork, ...],
    has_asn_database: bool,
) -> bool:
    """Does the answer need a second witness? Only a failure, a reserved
    address or one outside the expected networks does; a healthy answer
    costs no control query (DoH requests are the dearest part of DNS)."""
    addresses = [a for o in probe for a in o.addresses]
    if not addresses:
        return True
    if any(is_bogon(a, ordinary_space(endpoint, test_networks)) for a in addresses):
        return True
    if outside_expected(endpoint, addresses):
        return True
    # ASNs are looked up later; with a database, an ASN expectation asks the control.
    expected = endpoint.expected
    return bool(expected.asns) and has_asn_database and not expected.prefixes


def control_addresses_to_measure(
    endpoint: Endpoint,
    dns: Sequence[DnsObservation],
    tcp: Sequence[TcpObservation],
) -> tuple[str, ...]:
    """The control's addresses, when the answer here is outside the expected
    networks, disagrees with the control and nothing connects at any answered
    address: if the control's address works, the answer was the block
    (dns.inconsistent). A TLS failure for the name needs no such witness."""
    answered = {a for o in dns if o.role == "probe" for a in o.addresses}
    control = tuple(dict.fromkeys(a for o in dns if o.role == "control" for a in o.addresses))
    if not answered or not control or answered & set(control):
        return ()
    if not outside_expected(endpoint, sorted(answered)):
        return ()
    checked = [o for o in tcp if o.purpose is Purpose.CHECK]
    failed = {o.address for o in checked if o.failure is not None}
    if not checked or not answered <= failed:
        return ()
    return control[:2]


def needs_peer_control(status: Status, endpoint: Endpoint) -> bool:
    """Ask the control peers: for every endpoint not ok here (is it the network
    or the service?), and for every plain-HTTP check, whose response only a
    control's view of the same URL can tell from a blockpage nobody
    fingerprinted (http.diff)."""
    if status is Status.ERROR:
        return False
    return status is not Status.OK or any(c.url.startswith("http://") for c in endpoint.checks)


def needs_packet_dns(
    endpoint: Endpoint,
    dns: Sequence[DnsObservation],
    tcp: Sequence[TcpObservation],
    test_networks: tuple[IPNetwork, ...],
) -> bool:
    """Is the answer here suspect enough to ask the packets who sent it (raw)?
    A reply that is a failure, a reserved address or one outside the expected
    networks, a second reply to one query, or answered addresses none of
    which connects. Silence is never suspect: there is no reply to attribute."""
    probe = [o for o in dns if o.role == "probe"]
    if not any(o.rcode is not None for o in probe):
        return False  # nothing answered at all: no reply to attribute (and an offline vantage pays nothing)
    if any(o.extra_replies for o in probe):
        return True
    if needs_control(endpoint, probe, test_networks, has_asn_database=False):
        return True
    answered = {a for o in probe for a in o.addresses}
    checked = [o for o in tcp if o.purpose is Purpose.CHECK and o.address in answered]
    return bool(checked) and all(o.failure is not None for o in checked)


_SNI_METHODS = frozenset({Method.TLS_RESET, Method.TLS_TIMEOUT, Method.THROTTLED})
_HOST_METHODS = frozenset({Method.HTTP_RESET, Method.HTTP_TIMEOUT, Method.HTTP_BLOCKPAGE, Method.HTTP_DIFF})


def needs_traceroute(
    verdict: Verdict, tls: Sequence[TlsObservation], http: Sequence[HttpObservation]
) -> tuple[str, str, int] | None:
    """(trigger, address, port) of the censor traceroute a block calls for, or None.

    A name-based block carries its trigger: the SNI of a ClientHello, or the
    Host of a plain-HTTP request (an HTTPS request's Host is encrypted, so its
    trigger is the SNI). An address, DNS, UDP or whitelist block has none to
    send with increasing TTL. IPv4 only, like the traceroute."""
    if verdict.status is not Status.BLOCKED or verdict.method is None or verdict.address is None:
        return None
    address = verdict.address
    if ":" in address:
        return None
    if verdict.method in _SNI_METHODS:
        port = next((t.port for t in tls if t.address == address and t.purpose is Purpose.CHECK), 443)
        return "sni", address, port
    if verdict.method in _HOST_METHODS:
        request = next((h for h in http if h.address == address and not h.decoy), None)
        if request is None:
            return None
        parts = urlsplit(request.url)
        if parts.scheme == "https":
            return "sni", address, parts.port or 443
        return "host", address, parts.port or 80
    return None
