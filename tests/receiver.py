"""A real HTTP receiver for webhook and notification tests, on an ephemeral port.

``Receiver(answers=[500, 200], host="127.0.0.1")`` answers each POST with the next status
of ``answers`` (the last one repeats); ``hold_first=True`` keeps the first request
unanswered until ``close()`` (a sender killed mid-send). Every request is recorded in
``requests`` (path, headers, body) in arrival order; ``got`` is set at each arrival.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    answers: list[int] = field(default_factory=lambda: [200])
    host: str = "127.0.0.1"
    port_wanted: int = 0
    """The port to listen on (0: any free one; another's, to stand in for a receiver that
    was down)."""
    hold_first: bool = False
    requests: list[Received] = field(default_factory=list)
    got: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, hold = receiver._record(self.path, headers, body)
                if hold:
                    receiver._release.wait()
                    return
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port_wanted), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bool]:
        with self._lock:
            index = len(self.requests)
            self.requests.append(Received(path, headers, body))
            self.got.set()
        hold = self.hold_first and index == 0
        return self.answers[min(index, len(self.answers) - 1)], hold

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
