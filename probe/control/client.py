"""The probe's side of peer controls: ask every configured peer, concurrently.

A peer that cannot be reached, refuses, or answers something that is not a
valid summary yields an ``Answer`` with ``error`` set and no summary: to the
analysis that peer saw nothing (controls get blocked too, and a control
behind the same censor is no control). Every request is bounded in time and
in the bytes read back.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from probe.config.model import ControlPeer
from probe.control.api import PATH, Answer, ApiError, Request, Summary
from probe.measure.errors import classify

MAX_ANSWER = 1024 * 1024  # bytes of one summary; a real one is a few KiB
# Requests in flight per peer: a peer refuses beyond its own cap (503, never
# queued) and serves many probes; four keep a cycle moving without crowding it.
PER_PEER_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class Peer:
    """A configured peer with what talking to it needs, built once per config."""

    config: ControlPeer
    token: str
    ssl: ssl.SSLContext | None  # None: the default trust store (or plain HTTP)

    @classmethod
    def create(cls, peer: ControlPeer) -> Peer:
        token = Path(peer.token_file).read_text(encoding="utf-8").strip()
        context = None
        if peer.ca_bundle is not None:
            context = ssl.create_default_context(cafile=str(peer.ca_bundle))
        return cls(peer, token, context)


class ControlClient:
    def __init__(self, peers: Sequence[Peer], session: aiohttp.ClientSession, *, timeout: float) -> None:
        self.peers = tuple(peers)
        self.session = session
        self.timeout = timeout
        self._slots = {p.config.name: asyncio.Semaphore(PER_PEER_IN_FLIGHT) for p in self.peers}

    async def ask(self, request: Request) -> tuple[Answer, ...]:
        """Every peer's answer (in config order); never raises for a peer's failure."""
        return tuple(await asyncio.gather(*(self._one(p, request) for p in self.peers)))

    async def _one(self, peer: Peer, request: Request) -> Answer:
        async with self._slots[peer.config.name]:
            return await self._send(peer, request)

    async def _send(self, peer: Peer, request: Request) -> Answer:
        name = peer.config.name
        try:
            async with asyncio.timeout(self.timeout):
                async with self.session.post(
                    peer.config.url + PATH,
                    json=request.to_json(),
                    headers={"Authorization": f"Bearer {peer.token}"},
                    ssl=peer.ssl if peer.ssl is not None else True,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as response:
                    body = await response.content.read(MAX_ANSWER + 1)
                    if len(body) > MAX_ANSWER:
                        return Answer(name, None, f"answer larger than {MAX_ANSWER} bytes")
                    if response.status != 200:
                        return Answer(name, None, f"HTTP {response.status}: {_reason(body)}")
                    return Answer(name, Summary.from_json(json.loads(body)))
        except (ApiError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            return Answer(name, None, f"not a summary: {str(exc)[:200]}")
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            failure, _ = classify(exc)
            return Answer(name, None, failure.value)


def _reason(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    return str(error)[:200] if error else "no reason given"
