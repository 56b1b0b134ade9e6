"""Package registries on 127.0.0.1 for the toolchains of the agent images: a PyPI simple index
(PEP 503) and an npm registry, over TLS, behind a forwarding proxy like the task's gateway.

    wheel = python_wheel("greeting", "1.0", {"greeting/__init__.py": "..."})
    tarball = npm_tarball("left-pad", "1.3.0", {"index.js": "..."})
    with PackageRegistry([wheel, tarball]) as registry, TunnelProxy(registry.routes()) as proxy:
        env = {"HTTPS_PROXY": proxy.url, "PIP_INDEX_URL": registry.pip_index_url,
               "NPM_CONFIG_REGISTRY": registry.npm_url, ...}   # trust registry.ca_file
        registry.requests, proxy.requests  # what reached each

The registries answer under the names ``pypi.registry.test`` and ``npm.registry.test``, which
resolve nowhere: a client reaches them only through the proxy, which tunnels ``CONNECT`` for
those names to the registry's loopback port and refuses anything else with 403, as the gateway
refuses a host that is not allowed. Nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import select
import socket
import ssl
import tarfile
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import unquote

from tests.fakes.loopback import LoopbackServer
from tests.fakes.tls import self_signed_certificate

PYPI_HOST = "pypi.registry.test"
NPM_HOST = "npm.registry.test"


@dataclass(frozen=True)
class Package:
    kind: str  # "python" (a wheel) or "npm" (a tarball)
    name: str
    version: str
    filename: str
    data: bytes


def python_wheel(name: str, version: str, files: dict[str, str]) -> Package:
    """A pure-Python wheel (py3-none-any) holding ``files``, with its metadata and RECORD."""
    dist = f"{name.replace('-', '_')}-{version}"
    meta = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: claude-runner-tests\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, text in {**files, **meta}.items():
            data = text.encode()
            wheel.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist}.dist-info/RECORD,,")
        wheel.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return Package("python", name, version, f"{dist}-py3-none-any.whl", buffer.getvalue())


def npm_tarball(name: str, version: str, files: dict[str, str]) -> Package:
    """An npm package tarball (everything under ``package/``) with its package.json."""
    manifest = {"name": name, "version": version, "main": "index.js"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in {"package.json": json.dumps(manifest), **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return Package("npm", name, version, f"{name}-{version}.tgz", buffer.getvalue())


@dataclass(frozen=True)
class RegistryRequest:
    host: str
    method: str
    path: str
    status: int


class _RegistryHandler(BaseHTTPRequestHandler):
    owner: PackageRegistry
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        status, content_type, body = self.owner.answer(host, unquote(self.path.split("?")[0]))
        self.owner._record(RegistryRequest(host, self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class PackageRegistry(LoopbackServer[RegistryRequest]):
    """Both registries on one TLS port of 127.0.0.1, told apart by the Host header."""

    handler = _RegistryHandler
    name = "package-registry"

    def __init__(self, packages: list[Package]) -> None:
        super().__init__()
        self.packages = packages
        self.ca_file, key_file = self_signed_certificate((PYPI_HOST, NPM_HOST))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.ca_file, key_file)

    def start(self) -> Self:
        super().start()
        assert self._server is not None
        self._server.socket = self._context.wrap_socket(self._server.socket, server_side=True)
        return self

    pip_index_url = f"https://{PYPI_HOST}/simple/"
    npm_url = f"https://{NPM_HOST}/"

    def routes(self) -> dict[str, int]:
        """Where the proxy sends a CONNECT for each registry name."""
        return {f"{PYPI_HOST}:443": self.port, f"{NPM_HOST}:443": self.port}

    def answer(self, host: str, path: str) -> tuple[int, str, bytes]:
        if host == PYPI_HOST:
            return self._pypi(path)
        if host == NPM_HOST:
            return self._npm(path)
        return 404, "text/plain", b"unknown registry\n"

    def _pypi(self, path: str) -> tuple[int, str, bytes]:
        wheels = [p for p in self.packages if p.kind == "python"]
        for p in wheels:
            if path == f"/files/{p.filename}":
                return 200, "application/octet-stream", p.data
        project = path.removeprefix("/simple/").strip("/")
        links = [
            f'<a href="/files/{p.filename}#sha256={hashlib.sha256(p.data).hexdigest()}">'
            f"{html.escape(p.filename)}</a>"
            for p in wheels
            if _normalized(p.name) == _normalized(project)
        ]
        if not path.startswith("/simple/") or not links:
            return 404, "text/plain", b"no such project\n"
        page = "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        return 200, "text/html", page.encode()

    def _npm(self, path: str) -> tuple[int, str, bytes]:
        tarballs = [p for p in self.packages if p.kind == "npm"]
        for p in tarballs:
            if path == f"/{p.name}/-/{p.filename}":
                return 200, "application/octet-stream", p.data
        versions = {
            p.version: {
                "name": p.name,
                "version": p.version,
                "dist": {
                    "tarball": f"{self.npm_url}{p.name}/-/{p.filename}",
                    "shasum": hashlib.sha1(p.data).hexdigest(),  # noqa: S324 (npm's format)
                    "integrity": "sha512-"
                    + base64.b64encode(hashlib.sha512(p.data).digest()).decode(),
                },
            }
            for p in tarballs
            if path == f"/{p.name}"
        }
        if not versions:
            return 404, "application/json", b'{"error": "Not found"}'
        latest = max(versions, key=lambda v: tuple(int(n) for n in v.split(".")))
        document = {"name": path[1:], "dist-tags": {"latest": latest}, "versions": versions}
        return 200, "application/json", json.dumps(document).encode()


def _normalized(name: str) -> str:
    """PEP 503: runs of -, _ and . are one -, lower case."""
    out: list[str] = []
    for ch in name.lower():
        dash = ch in "-_."
        if not (dash and out and out[-1] == "-"):
            out.append("-" if dash else ch)
    return "".join(out)


@dataclass(frozen=True)
class TunnelRequest:
    method: str
    target: str
    status: int


class _TunnelHandler(BaseHTTPRequestHandler):
    owner: TunnelProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_CONNECT(self) -> None:
        port = self.owner.routes.get(self.path.lower())
        self.owner._record(TunnelRequest("CONNECT", self.path, 200 if port else 403))
        if port is None:
            self._refuse()
            return
        with socket.create_connection(("127.0.0.1", port), timeout=30) as upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            _pump(self.connection, upstream)
        self.close_connection = True

    def _refuse(self) -> None:
        body = b"test proxy: host not allowed\n"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _absolute_form(self) -> None:
        self.owner._record(TunnelRequest(self.command, self.path, 403))
        self._refuse()

    do_GET = do_POST = do_PUT = do_HEAD = _absolute_form


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways until one side closes."""
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 60)
        if not readable:
            return
        for s in readable:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


class TunnelProxy(LoopbackServer[TunnelRequest]):
    """An HTTP proxy on 127.0.0.1 that tunnels CONNECT host:port to the loopback port ``routes``
    names for it and refuses everything else (403)."""

    handler = _TunnelHandler
    name = "tunnel-proxy"

    def __init__(self, routes: dict[str, int]) -> None:
        super().__init__()
        self.routes = {target.lower(): port for target, port in routes.items()}

    def targets(self) -> list[str]:
        return [r.target for r in self.requests]


class PlainPackageRegistry(PackageRegistry):
    """Both registries over plain HTTP on one loopback port, told apart by the path (/simple/
    and /files/ are the PyPI index, anything else npm): what a task's gateway reaches with the
    test-only loopback allowance (AGENT_EGRESS_TEST_ALLOW_LOOPBACK), as clients in the
    container ask their proxy for ``http://127.0.0.1:<port>/...``."""

    name = "plain-package-registry"

    def start(self) -> Self:
        LoopbackServer.start(self)
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self.pip_index_url = f"{self.base_url}simple/"
        self.npm_url = self.base_url
        return self

    def answer(self, host: str, path: str) -> tuple[int, str, bytes]:
        if path.startswith("http://"):  # absolute-form, as a proxy may pass it on
            path = "/" + path.split("/", 3)[-1]
        if path.startswith(("/simple/", "/files/")):
            return self._pypi(path)
        return self._npm(path)
