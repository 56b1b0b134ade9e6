"""A git smart-HTTP server on 127.0.0.1, over TLS: the real `git http-backend` behind a small CGI
wrapper that checks a token with basic auth, like GitHub does for https clones and pushes.

    with FakeGitServer(tmp_path) as git:
        git.repository_create("acme/app", private=True, files={"README.md": "# App\\n"})
        git.grant("acme/app", token, push=True)
        git.protect("acme/app", "main")          # pushes to main refused (GH006, as GitHub)
        url = git.url("acme/app")                # https://127.0.0.1:<port>/acme/app.git
        git.ca_file                               # the self-signed certificate to trust

Public repositories are readable without a token; every push needs a token granted push.
A request without valid credentials gets 401 with a Basic challenge (git then asks its askpass
helper); a valid token without the right gets 403. Every request is recorded (method, path,
service, user name, whether a token was given and accepted), never the token itself.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from tests.fakes.loopback import STOP_POLL_SECONDS
from tests.fakes.tls import self_signed_certificate

GIT = ["git", "-c", "user.name=Fake Git Server", "-c", "user.email=fake@example.invalid"]


@dataclass
class GitRequest:
    method: str
    path: str
    service: str  # upload-pack (read) or receive-pack (push)
    user: str  # the basic-auth user name ("" without credentials)
    token_given: bool
    status: int = 0
    authorization_headers: int = 0  # how many Authorization headers came (never their value)


@dataclass
class _Repository:
    private: bool
    readers: set[str] = field(default_factory=set)
    pushers: set[str] = field(default_factory=set)
    protected: set[str] = field(default_factory=set)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection; the body ends at close

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeGitServer


class FakeGitServer:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="fake-git-")) / "repositories"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._repositories: dict[str, _Repository] = {}
        self._tokens: dict[str, str] = {}  # token -> user name it belongs to
        self._requests: list[GitRequest] = []
        self._httpd: _Server | None = None
        self.cert_file, key_file = self_signed_certificate(("127.0.0.1",))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.cert_file, key_file)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._httpd.socket = self._context.wrap_socket(self._httpd.socket, server_side=True)
        threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            name="fake-git",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return int(self._httpd.server_address[1])

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.cert_file

    def url(self, full_name: str) -> str:
        return f"https://127.0.0.1:{self.port}/{full_name}.git"

    # --- repositories ------------------------------------------------------------------------

    def bare_path(self, full_name: str) -> Path:
        return self.root / f"{full_name}.git"

    def repository_create(
        self,
        full_name: str,
        *,
        private: bool = True,
        files: dict[str, str] | None = None,
        branches: tuple[str, ...] = (),
    ) -> Path:
        """A bare repository with one commit on main (and the given extra branches)."""
        work = Path(tempfile.mkdtemp(prefix="fake-git-src-"))
        for name, text in (files or {"README.md": f"# {full_name}\n"}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        subprocess.run([*GIT, "init", "-q", "-b", "main", str(work)], check=True)
        subprocess.run([*GIT, "-C", str(work), "add", "-A"], check=True)
        subprocess.run([*GIT, "-C", str(work), "commit", "-q", "-m", "initial"], check=True)
        for branch in branches:
            subprocess.run([*GIT, "-C", str(work), "branch", branch], check=True)
        bare = self.bare_path(full_name)
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
        # As GitHub: a commit can be fetched by its id.
        subprocess.run(
            ["git", "-C", str(bare), "config", "uploadpack.allowAnySHA1InWant", "true"], check=True
        )
        with self._lock:
            self._repositories[full_name] = _Repository(private=private)
        self._hook_write(full_name)
        return bare

    def grant(self, full_name: str, token: str, *, push: bool = True, user: str = "octo") -> None:
        with self._lock:
            repo = self._repositories[full_name]
            self._tokens[token] = user
            repo.readers.add(token)
            if push:
                repo.pushers.add(token)

    def protect(self, full_name: str, branch: str) -> None:
        with self._lock:
            self._repositories[full_name].protected.add(f"refs/heads/{branch}")
        self._hook_write(full_name)

    def _hook_write(self, full_name: str) -> None:
        protected = " ".join(sorted(self._repositories[full_name].protected))
        hook = self.bare_path(full_name) / "hooks" / "pre-receive"
        hook.write_text(
            "#!/bin/sh\n"
            "while read old new ref; do\n"
            f'  case " {protected} " in *" $ref "*)\n'
            '    echo "error: GH006: Protected branch update failed for $ref." >&2; exit 1;;\n'
            "  esac\n"
            "done\n"
        )
        hook.chmod(0o755)

    def branch_head(self, full_name: str, branch: str) -> str | None:
        done = subprocess.run(
            ["git", "-C", str(self.bare_path(full_name)), "rev-parse", "--verify", "-q",
             f"refs/heads/{branch}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return done.stdout.strip() or None

    def log(self, full_name: str, branch: str) -> list[str]:
        """Subjects of the branch's commits, newest first."""
        done = subprocess.run(
            ["git", "-C", str(self.bare_path(full_name)), "log", "--format=%s", branch],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.splitlines()

    @property
    def requests(self) -> list[GitRequest]:
        with self._lock:
            return list(self._requests)

    # --- serving -----------------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parts.query
        service = (
            "receive-pack"
            if "git-receive-pack" in path or "service=git-receive-pack" in query
            else "upload-pack"
        )
        full_name = path.split(".git/", 1)[0].strip("/") if ".git/" in path else ""
        user, token = self._credentials(h)
        record = GitRequest(
            h.command,
            path,
            service,
            user,
            bool(token),
            authorization_headers=len(h.headers.get_all("Authorization") or []),
        )
        with self._lock:
            self._requests.append(record)
            repo = self._repositories.get(full_name)
            may_read = repo is not None and (not repo.private or token in repo.readers)
            may_push = repo is not None and token in repo.pushers
            known_token = token in self._tokens
        body = self._body(h)
        if repo is None:
            return self._plain(h, record, 404, "Repository not found.")
        if service == "receive-pack" and not may_push:
            if not known_token:
                return self._challenge(h, record)
            return self._plain(
                h, record, 403, f"Permission to {full_name}.git denied to {self._tokens[token]}."
            )
        if not may_read:
            return (
                self._challenge(h, record)
                if not known_token
                else self._plain(h, record, 404, "Repository not found.")
            )
        self._cgi(h, record, path, query, body, remote_user=self._tokens.get(token, ""))
        return None

    @staticmethod
    def _credentials(h: _Handler) -> tuple[str, str]:
        header = h.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return "", ""
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return "", ""
        return user, password

    @staticmethod
    def _body(h: _Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    h.rfile.readline()
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            return b"".join(chunks)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _challenge(self, h: _Handler, record: GitRequest) -> None:
        record.status = 401
        h.send_response(401)
        h.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
        self._body_send(h, b"Authentication required.\n")

    def _plain(self, h: _Handler, record: GitRequest, status: int, text: str) -> None:
        record.status = status
        h.send_response(status)
        self._body_send(h, text.encode() + b"\n")

    def _cgi(
        self, h: _Handler, record: GitRequest, path: str, query: str, body: bytes, remote_user: str
    ) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": h.command,
            "CONTENT_TYPE": h.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": remote_user,
            "GIT_PROTOCOL": h.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": h.headers.get("Content-Encoding", ""),
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.root),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, content = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, content = done.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        record.status = status
        h.send_response(status)
        for name, value in headers:
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(content)))
        h.end_headers()
        h.wfile.write(content)

    @staticmethod
    def _body_send(h: _Handler, data: bytes) -> None:
        # A length, so the client never depends on how TLS is closed (GnuTLS minds).
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
