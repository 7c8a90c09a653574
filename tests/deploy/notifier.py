"""A loopback stand-in for Alertmanager's ``POST /api/v2/alerts``: the live
stacks' rule evaluators (central Prometheus, vmalert) notify it, and the
tests read what was sent, so "fires" means "reached the notifier"."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class NotifierSink:
    received: list[dict[str, Any]] = field(default_factory=list)  # every alert of every POST
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        assert self.server is not None, "the sink is not started"
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> str:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                alerts = json.loads(body or b"[]")
                with sink.lock:
                    sink.received.extend(a for a in alerts if isinstance(a, dict))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://{self.address}"

    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
