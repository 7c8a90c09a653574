"""A control accepts a catalog endpoint's freeze check, and no freeze check it does not have."""

from __future__ import annotations

from probe.config.model import Check, Config, Endpoint, Service
from probe.control.api import Request
from probe.control.policy import Job, Refusal, authorize
from probe.vocab import CheckKind

ENDPOINT = Endpoint(
    "chat.example",
    (Check(CheckKind.TCP, port=443), Check(CheckKind.TLS, port=443), Check(CheckKind.FREEZE, port=443)),
)
CONFIG = Config(path=None, services=(Service("chat", "Chat", (ENDPOINT,)),))


def test_the_freeze_check_of_the_catalog_endpoint_is_measured() -> None:
    # authorize() is pure: the address is only checked against reserved space, never contacted.
    job = authorize(CONFIG, Request("chat", "chat.example", ("tcp:443", "freeze:443"), ("149.154.167.51",)))
    assert isinstance(job, Job)
    assert [c.label for c in job.endpoint.checks] == ["tcp:443", "freeze:443"]
    everything = authorize(CONFIG, Request("chat", "chat.example"))
    assert isinstance(everything, Job) and "freeze:443" in [c.label for c in everything.endpoint.checks]


def test_a_freeze_check_on_another_port_is_refused_before_any_packet() -> None:
    refusal = authorize(CONFIG, Request("chat", "chat.example", ("freeze:8443",)))
    assert isinstance(refusal, Refusal) and refusal.status == 403
    assert "'freeze:8443' is not configured for chat.example" in refusal.message
