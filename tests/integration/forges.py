"""Stand-ins at the forge seam, over real HTTP on ephemeral ports:

* ``GitHttpServer`` serves bare repositories by smart HTTP through ``git http-backend``
  (CGI, run per request) behind HTTP basic authentication, and counts the pushes it took;
* ``FakeForge`` answers the few pull-request endpoints of one forge shape (GitHub, Gitea,
  GitLab) and Gitea's labels (listed page by page, created on request), checks that
  forge's auth header, keeps the pulls it opened, and can be told to answer the next
  requests with a given status (401, 403, 422, 429...).

Both record every request (method, path, headers, body) so a test can look for a token in
what reached them, and both take an ``on_push`` / ``on_create`` callback run after the
answer was sent (a test kills the delivering process there).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Answer = tuple[int, dict[str, str], Any]
"""A scripted answer: status, headers, JSON body."""


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class GitHttpServer:
    """Smart-HTTP git for the bare repositories under ``root`` (``/<name>.git``)."""

    root: Path
    username: str
    password: str
    url: str = ""
    pushes: int = 0
    requests: list[Recorded] = field(default_factory=list)
    on_push: Callable[[], None] | None = None

    def repo_url(self, name: str) -> str:
        return f"{self.url}/{name}.git"


class _Recording(BaseHTTPRequestHandler):
    """Quiet; GET and POST read the body, record the request in ``self.log`` and go to
    ``_answer``."""

    log: list[Recorded]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.log.append(Recorded(self.command, self.path, dict(self.headers), body))
        self._answer(body)

    def _answer(self, body: bytes) -> None:
        raise NotImplementedError


def _git_handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Recording):
        log = server.requests

        def _answer(self, body: bytes) -> None:
            expected = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._cgi(body)
            if self.command == "POST" and self.path.endswith("/git-receive-pack"):
                server.pushes += 1
                if server.on_push is not None:
                    server.on_push()

        def _cgi(self, body: bytes) -> None:
            parts = urlsplit(self.path)
            env = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": server.username,
                "REMOTE_ADDR": "127.0.0.1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": unquote(parts.path),
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            out = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            ).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = out.partition(b"\n\n")
            status, headers = 200, []
            for line in head.decode(errors="replace").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

    return Handler


@contextmanager
def git_http_server(root: Path, username: str, password: str) -> Iterator[GitHttpServer]:
    """A ``GitHttpServer`` for the bare repositories under ``root``, on a free port."""
    served = GitHttpServer(root, username, password)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _git_handler(served))
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class FakeForge:
    """One forge shape's pull-request endpoints (see the module doc)."""

    shape: str
    token: str
    repository: str
    url: str = ""
    pulls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    """Scripted answers for the next requests, taken first (before the auth check)."""
    labels: dict[str, int] = field(default_factory=lambda: {"shipyard": 7})
    """The repository's labels, name -> id (Gitea lists them page by page, ``page``/``limit``)."""
    label_refusal: int | None = None
    """When set, a Gitea label creation is answered with this status (403, 404)."""
    on_create: Callable[[], None] | None = None

    @property
    def api_url(self) -> str:
        return self.url + {"github": "", "gitea": "/api/v1", "gitlab": "/api/v4"}[self.shape]

    @property
    def creates(self) -> int:
        return sum(1 for r in self.requests if r.method == "POST" and r.path.split("?")[0]
                   .endswith(("/pulls", "/merge_requests")))  # fmt: skip

    def authorized(self, headers: dict[str, str]) -> bool:
        given = {
            "github": headers.get("Authorization"),
            "gitea": headers.get("Authorization"),
            "gitlab": headers.get("PRIVATE-TOKEN"),
        }[self.shape]
        expected = {"github": f"Bearer {self.token}", "gitea": f"token {self.token}"}
        return given == expected.get(self.shape, self.token)

    def add_open(self, branch: str) -> dict[str, Any]:
        """A pull request from ``branch`` that is already open on the forge."""
        return self._new(branch, "main", "opened before", False)

    def _new(self, head: str, base: str, title: str, draft: bool) -> dict[str, Any]:
        number = len(self.pulls) + 1
        web = f"{self.url}/{self.repository}/pull/{number}"
        pull: dict[str, Any] = {"number": number, "title": title, "draft": draft, "body": ""}
        if self.shape == "gitlab":
            pull.update(iid=number, web_url=web, source_branch=head, target_branch=base,
                        state="opened")  # fmt: skip
        else:
            pull.update(html_url=web, head={"ref": head}, base={"ref": base}, state="open")
        self.pulls.append(pull)
        return pull


def _forge_handler(forge: FakeForge) -> type[BaseHTTPRequestHandler]:
    class Handler(_Recording):
        log = forge.requests

        def _answer(self, body: bytes) -> None:
            if forge.answers:
                self._send(*forge.answers.pop(0))
                return
            if not forge.authorized(dict(self.headers)):
                self._send(401, {}, {"message": "Bad credentials"})
                return
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            answer, created = _route(forge, self.command, parts.path, query, body)
            self._send(*answer)
            if created and forge.on_create is not None:
                forge.on_create()

        def _send(self, status: int, headers: dict[str, str], data: Any) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

    return Handler


def _route(
    forge: FakeForge, method: str, path: str, query: dict[str, str], body: bytes
) -> tuple[Answer, bool]:
    prefix = {"github": "", "gitea": "/api/v1", "gitlab": "/api/v4"}[forge.shape]
    path = unquote(path.removeprefix(prefix))
    data = json.loads(body) if body else {}
    if forge.shape == "gitlab":
        base = f"/projects/{forge.repository}/merge_requests"
        if path != base:
            return (404, {}, {"message": "404 Not found"}), False
        if method == "GET":
            found = [p for p in forge.pulls if p["source_branch"] == query.get("source_branch")]
            return (200, {}, [p for p in found if p["state"] == "opened"]), False
        if any(p["source_branch"] == data["source_branch"] for p in forge.pulls):
            msg = ["Another open merge request already exists for this source branch: !1"]
            return (409, {}, {"message": msg}), False
        pull = forge._new(data["source_branch"], data["target_branch"], data["title"], False)
        pull["body"] = data.get("description", "")
        pull["labels"] = data.get("labels", "")
        return (201, {}, pull), True
    repo = f"/repos/{forge.repository}"
    if path == f"{repo}/labels" and forge.shape == "gitea":
        return _gitea_labels(forge, method, query, data), False
    if path.startswith(f"{repo}/issues/") and path.endswith("/labels"):
        number = int(path.split("/")[-2])
        forge.pulls[number - 1]["labels"] = data.get("labels", [])
        return (200, {}, []), False
    if path != f"{repo}/pulls":
        return (404, {}, {"message": "Not Found"}), False
    if method == "GET" and forge.shape == "gitea":  # no head filter: the caller pages
        return (200, {}, _page(forge.pulls, query)), False
    if method == "GET":
        head = query.get("head", "").split(":")[-1]
        return (200, {}, [p for p in forge.pulls if p["head"]["ref"] == head]), False
    if any(p["head"]["ref"] == data["head"] for p in forge.pulls):
        what = (
            "A pull request already exists"
            if forge.shape == "github"
            else "pull request already exists"
        )
        return (422, {}, {"message": "Validation Failed", "errors": [{"message": what}]}), False
    pull = forge._new(data["head"], data["base"], data["title"], bool(data.get("draft")))
    pull["body"] = data.get("body", "")
    pull["labels"] = data.get("labels", [])
    return (201, {}, pull), True


def _page(items: list[Any], query: dict[str, str]) -> list[Any]:
    """Gitea's paging: ``page`` (from 1) of ``limit`` items, at most 50 (its default cap)."""
    limit = min(int(query.get("limit", 50)), 50)
    start = (int(query.get("page", 1)) - 1) * limit
    return items[start : start + limit]


def _gitea_labels(forge: FakeForge, method: str, query: dict[str, str], data: Any) -> Answer:
    """List a page of the repository's labels, or create one (a name and a color)."""
    if method == "GET":
        return 200, {}, _page([{"id": i, "name": n} for n, i in forge.labels.items()], query)
    if forge.label_refusal is not None:
        return forge.label_refusal, {}, {"message": "token does not have write:issue"}
    if not data.get("name") or not str(data.get("color", "")).lstrip("#"):
        return 422, {}, {"message": "name and color are required"}
    if data["name"] in forge.labels:
        return 409, {}, {"message": "label already exists"}
    forge.labels[data["name"]] = max(forge.labels.values(), default=0) + 1
    return 201, {}, {"id": forge.labels[data["name"]], "name": data["name"], "color": data["color"]}


@contextmanager
def fake_forge(shape: str, token: str, repository: str = "acme/widgets") -> Iterator[FakeForge]:
    """A ``FakeForge`` of ``shape`` on a free port."""
    forge = FakeForge(shape, token, repository)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _forge_handler(forge))
    forge.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        httpd.shutdown()
        httpd.server_close()


def bare_repo(root: Path, name: str, source: Path) -> Path:
    """A bare clone of ``source`` at ``root/<name>.git`` (its default branch ``main``)."""
    path = root / f"{name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(path)], check=True)
    return path


def protect(bare: Path, message: str = "GH006: Protected branch update failed") -> None:
    """Make ``bare`` refuse every push the way a forge's branch protection does."""
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho 'remote: error: {message}' >&2\nexit 1\n")
    hook.chmod(0o755)
