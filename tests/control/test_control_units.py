"""The control's pure parts: the token file, the rate and in-flight bounds, the policy."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import stat
from pathlib import Path

import pytest

from probe.config.model import Check, Config, Endpoint, Service
from probe.config.nodes import ConfigError
from probe.control import tokens
from probe.control.api import Request
from probe.control.limits import InFlight, RateLimiter, retry_after
from probe.control.policy import Job, Refusal, Result, authorize
from probe.vocab import CheckKind

# --- tokens ------------------------------------------------------------------


def test_a_token_file_is_names_and_sha256_digests() -> None:
    token = "s3cret"
    hexdigest = hashlib.sha256(token.encode()).hexdigest()
    text = f"# probes\n\nprobe-ru-1 sha256:{hexdigest}  # the Moscow box\nprobe_2 sha256:{'0' * 64}\n"
    entries = tokens.parse(text, "tokens")
    assert [e.name for e in entries] == ["probe-ru-1", "probe_2"]
    assert tokens.lookup(entries, token) == "probe-ru-1"
    assert tokens.lookup(entries, "s3cret ") is None
    assert tokens.lookup(entries, "") is None
    assert tokens.line_for("probe-ru-1", token) == f"probe-ru-1 sha256:{hexdigest}"


def test_every_bad_line_is_reported_at_once_with_its_place() -> None:
    text = "\n".join(
        [
            "probe-1",
            f"probe-1 sha256:{'a' * 64}",
            f"probe-1 sha256:{'b' * 64}",
            f"probe-2 sha256:{'A' * 64}",
            f"probe-3 md5:{'a' * 32}",
            f"-bad sha256:{'a' * 64}",
            f"probe-4 sha256:{'a' * 64} extra",
        ]
    )
    with pytest.raises(ConfigError) as caught:
        tokens.parse(text, "t.txt")
    assert caught.value.problems == [
        "t.txt:1: expected 'NAME sha256:HEX'",
        "t.txt:3: probe-1: duplicate name",
        "t.txt:4: probe-2: expected sha256: and 64 lower-case hex digits",
        "t.txt:5: probe-3: expected sha256: and 64 lower-case hex digits",
        "t.txt:6: name '-bad': letters, digits, '.', '_', '-' (at most 64)",
        "t.txt:7: expected 'NAME sha256:HEX'",
    ]


def test_add_creates_the_file_0600_and_shows_the_token_once(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    first = tokens.add(path, "probe-1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first not in path.read_text()  # only its hash is kept
    path.write_text(path.read_text() + "# no newline at the end")
    second = tokens.add(path, "probe-2")
    assert first != second and len(second) >= 43
    entries = tokens.read(path)
    assert [tokens.lookup(entries, t) for t in (first, second, "x")] == ["probe-1", "probe-2", None]
    with pytest.raises(ConfigError, match="probe-1: a token with this name exists"):
        tokens.add(path, "probe-1")
    with pytest.raises(ConfigError, match="letters, digits"):
        tokens.add(path, "no spaces")


def test_the_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(tokens.line_for("a", "token-a") + "\n")
    live = tokens.TokenFile(path)
    assert live.lookup("token-b") is None
    path.write_text(path.read_text() + tokens.line_for("b", "token-b") + "\n")
    assert live.lookup("token-b") == "b"  # issued: at once, no restart
    path.write_text("garbage\n")
    assert live.lookup("token-a") == "a"  # a broken file keeps the tokens loaded before
    path.write_text(tokens.line_for("b", "token-b") + "\n")
    assert live.lookup("token-a") is None  # revoked


def test_a_missing_token_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the token file"):
        tokens.TokenFile(tmp_path / "absent")


# --- limits ------------------------------------------------------------------


def test_the_rate_is_a_bucket_per_key_a_minute_deep() -> None:
    rate = RateLimiter(per_minute=3)
    assert [rate.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rate.take("a", 0.0) == pytest.approx(20.0)
    assert rate.take("b", 0.0) == 0.0
    assert rate.take("a", 10.0) == pytest.approx(10.0)  # half a unit refilled
    assert rate.take("a", 20.0) == 0.0
    assert rate.take("a", 1e6) == 0.0  # refilled to the depth, no more
    assert [rate.take("a", 1e6) for _ in range(3)][-1] > 0
    assert (retry_after(0.2), retry_after(20.0), retry_after(20.1)) == ("1", "20", "21")


def test_in_flight_refuses_beyond_its_limit_and_never_waits() -> None:
    slots = InFlight(2)
    assert [slots.try_enter() for _ in range(3)] == [True, True, False]
    slots.leave()
    assert slots.try_enter() and slots.count == 2


# --- policy ------------------------------------------------------------------

PUBLIC = "149.154.167.51"
ENDPOINT = Endpoint(
    "api.example.test",
    (Check(CheckKind.DNS), Check(CheckKind.TCP, port=443), Check(CheckKind.TLS, port=443)),
)
CONFIG = Config(
    path=None, services=(Service("svc", "Svc", (ENDPOINT, Endpoint(PUBLIC, (Check("tcp", 443),)))),)
)


def test_empty_checks_mean_all_of_them_and_a_subset_narrows_the_endpoint() -> None:
    job = authorize(CONFIG, Request("svc", "api.example.test", addresses=(PUBLIC, PUBLIC)))
    assert isinstance(job, Job)
    assert job.endpoint == ENDPOINT and job.addresses == (PUBLIC,)
    job = authorize(CONFIG, Request("svc", "api.example.test", checks=("tls:443", "dns")))
    assert isinstance(job, Job)
    assert [c.label for c in job.endpoint.checks] == ["dns", "tls:443"]  # the catalog's order


def test_refusals_are_403_with_a_reason() -> None:
    cases = {
        Request("svc", "other.example.test"): "not in this control's catalog",
        Request("other", "api.example.test"): "not in this control's catalog",
        Request("svc", PUBLIC, checks=("tcp:80",)): "check 'tcp:80' is not configured for 149.154.167.51",
        Request("svc", PUBLIC, addresses=("127.0.0.1",)): "address 127.0.0.1 is private or reserved",
    }
    for request, reason in cases.items():
        refusal = authorize(CONFIG, request)
        assert isinstance(refusal, Refusal) and refusal.status == 403 and refusal.result is Result.FORBIDDEN
        assert reason in refusal.message


def test_test_networks_are_the_only_reserved_space_a_control_measures() -> None:
    config = Config(path=None, services=CONFIG.services, test_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    assert isinstance(authorize(config, Request("svc", PUBLIC, addresses=("127.0.0.9",))), Job)
    assert isinstance(authorize(config, Request("svc", PUBLIC, addresses=("10.0.0.1",))), Refusal)
