"""A git server on 127.0.0.1: `git http-backend` (smart HTTP, read only) behind a threaded HTTP
server, for clones that must go over the network (e.g. through a task's gateway).

    with GitHttpServer(root=tmp_path) as git:     # root holds bare repositories
        url = git.url_for("repo.git")             # http://127.0.0.1:<port>/repo.git
        git.requests                              # [("GET", "/repo.git/info/refs?service=...")]
"""

from __future__ import annotations

import os
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.loopback import LoopbackServer


class GitHttpServer(LoopbackServer[tuple[str, str]]):
    name = "fake-git-http"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)

    def url_for(self, repo: str) -> str:
        return f"{self.url}/{repo}"


class _Handler(BaseHTTPRequestHandler):
    owner: GitHttpServer
    protocol_version = "HTTP/1.0"  # one answer per connection, its end marked by the close

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        self.owner._record((self.command, self.path))
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = done.stdout.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle


GitHttpServer.handler = _Handler
