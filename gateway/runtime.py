"""The per-task gateway: one Unix socket, served from its own thread and event loop (uvloop),
that is the container's only way out.

On the socket (one HTTP/1.1 connection may carry many requests, framed by gateway/http1.py):

* ``GET /_runner/messages`` is the agent asking for further user messages (gateway/messages.py),
  when the gateway was given a message box;
* other origin-form requests (``POST /v1/messages``) are the model route (gateway/model_route.py):
  placeholder checked, real credential added, answer streamed back;
* ``CONNECT host:port`` and absolute-form ``http://`` requests are egress (gateway/tunnel.py),
  decided by the egress rules (common.netpolicy, plus gateway/egress.py's model-API host).

The socket lives in a folder bind-mounted into this task's container only, and is removed on
stop(), so a connection on it can only ever act for this task. What one task's container can
cost the worker is bounded by its ``GatewayLimits``: connections served at once (more wait in
the socket's backlog, unaccepted), body bytes held at once, and how long a head or a body may
keep the gateway waiting. Each gateway has its own thread, loop and limits, so one task's
container cannot take them from another's.

    gateway = TaskGateway(socket_path=..., auth=UpstreamAuth("oauth"), provider=...,
                          placeholder=placeholder_new(), on_log=task_log.append)
    gateway.start()      # the socket exists (mode 0666) on return
    ...                  # run the container
    usage = gateway.stop()

``on_log`` is called from the gateway's thread, one line per refusal or notable event (made
safe to log: no control characters); it must be quick and thread-safe (never a database write
on the caller's connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from django.conf import settings

from common.netpolicy import EgressPolicy, Resolver

from .auth import PLACEHOLDER_PREFIX, CredentialProvider, UpstreamAuth, placeholder_new
from .body import ByteBudget
from .egress import egress_policy_from_settings
from .http1 import MAX_HEAD_BYTES, GatewayLimits, HttpConnection, HttpError, Request, log_safe
from .listener import Listener, upstream_socket
from .loop import GatewayLoop
from .messages import MESSAGES_PATH, MessageBox, MessageRoute
from .model_route import ALLOWED_CALLS, ModelRoute, RouteCredential, path_query
from .tunnel import Egress, system_resolve
from .usage import GatewayUsage, UsageMeter

__all__ = [
    "ALLOWED_CALLS",
    "CredentialProvider",
    "GatewayLimits",
    "GatewaySetup",
    "GatewayUsage",
    "MessageBox",
    "TaskGateway",
    "UpstreamAuth",
    "placeholder_new",
]

logger = logging.getLogger("gateway")

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux (104 on macOS)
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 15.0
_BACKLOG = 128
_FULL_NOTE_SECONDS = 60.0
_LOG_LINE_MAX = 1000


@dataclass(frozen=True)
class GatewaySetup:
    """Where a gateway sends what it is asked for, and what it may cost. A field left None
    comes from the settings (ANTHROPIC_API_URL, AGENT_EGRESS_ALLOW, AGENT_GATEWAY_*), except
    ``messages``; the resolver (host, port) -> addresses defaults to the system's (tests
    inject one)."""

    api_url: str | None = None
    egress: EgressPolicy | None = None
    resolver: Resolver | None = None
    limits: GatewayLimits | None = None
    # The only uid (and gid) that may connect to the socket; None: any local user may.
    socket_owner: int | None = None
    # The task's messages for its agent (GET /_runner/messages); None: that path is refused.
    messages: MessageBox | None = None


def gateway_limits_from_settings() -> GatewayLimits:
    return GatewayLimits(
        max_connections=settings.AGENT_GATEWAY_MAX_CONNECTIONS,
        buffer_bytes=settings.AGENT_GATEWAY_BUFFER_MB * 1024 * 1024,
        read_timeout=float(settings.AGENT_GATEWAY_READ_TIMEOUT),
    )


def _api_url_from_settings() -> str:
    return str(settings.ANTHROPIC_API_URL)


class TaskGateway:
    def __init__(
        self,
        *,
        socket_path: Path,
        auth: UpstreamAuth,
        provider: CredentialProvider,
        placeholder: str,
        on_log: Callable[[str], None],
        setup: GatewaySetup | None = None,
    ) -> None:
        if not placeholder.startswith(PLACEHOLDER_PREFIX) or len(placeholder) < 40:
            raise ValueError("placeholder must come from placeholder_new()")
        self.socket_path = Path(socket_path)
        if len(os.fsencode(self.socket_path)) > _SOCKET_PATH_MAX:
            raise ValueError(
                f"gateway socket path is too long for a Unix socket ({self.socket_path}); "
                "use a shorter AGENT_GATEWAY_SOCKET_ROOT"
            )
        setup = setup or GatewaySetup()
        self.limits = setup.limits or gateway_limits_from_settings()
        self._socket_owner = setup.socket_owner
        self._on_log = on_log
        self._meter = UsageMeter()
        self.budget = ByteBudget(self.limits.buffer_bytes)
        self._session: aiohttp.ClientSession | None = None
        self._model = ModelRoute(
            api_url=setup.api_url or _api_url_from_settings(),
            credential=RouteCredential(auth=auth, provider=provider, placeholder=placeholder),
            on_log=self._log,
            meter=self._meter,
            session=self._client_session,
            budget=self.budget,
        )
        self._egress = Egress(
            policy=setup.egress if setup.egress is not None else egress_policy_from_settings(),
            resolver=setup.resolver or system_resolve,
            on_log=self._log,
        )
        self._messages = (
            MessageRoute(box=setup.messages, placeholder=placeholder, on_log=self._log)
            if setup.messages is not None
            else None
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._full_noted = -_FULL_NOTE_SECONDS
        self._stopped = False

    # --- lifecycle (caller's thread) -------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a gateway starts once")
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.socket_path.is_socket():
            self.socket_path.unlink()  # a stale socket from a crashed run of this task
        self._thread = threading.Thread(
            target=self._run, name=f"gateway-{self.socket_path.parent.name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("the gateway did not start in time")
        if self._start_error is not None:
            self._thread.join(_STOP_TIMEOUT)
            raise RuntimeError(f"the gateway could not start: {self._start_error}")

    def stop(self) -> GatewayUsage:
        """Close the socket (and every open connection), remove the socket file; the usage."""
        if not self._stopped:
            self._stopped = True
            loop, stopping = self._loop, self._stopping
            if loop is not None and stopping is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop already ended
                    loop.call_soon_threadsafe(stopping.set)
            if self._thread is not None:
                self._thread.join(_STOP_TIMEOUT)
                if self._thread.is_alive():
                    logger.warning("Gateway thread %s did not stop in time", self._thread.name)
            with contextlib.suppress(FileNotFoundError):
                if self.socket_path.is_socket():
                    self.socket_path.unlink()
        return self.usage

    @property
    def usage(self) -> GatewayUsage:
        return self._meter.snapshot()

    # --- the gateway's thread --------------------------------------------------------------

    def _run(self) -> None:
        # uvloop: the relay's work per streamed event and per request is libuv's in C, about
        # half of what asyncio's Python loop and transports cost (bench/gateway_cpu_bench.py).
        loop = GatewayLoop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            if not self._ready.is_set():
                self._start_error = exc
                self._ready.set()
            else:
                logger.exception("Gateway loop failed")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _client_session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    def _listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.socket_path))
            if self._socket_owner is None:
                # The container's user must connect; the folder is this task's alone.
                os.chmod(self.socket_path, 0o666)  # noqa: S103
            else:
                os.chmod(self.socket_path, 0o600)
                os.chown(self.socket_path, self._socket_owner, self._socket_owner)
            listener.listen(_BACKLOG)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        return listener

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        self._session = aiohttp.ClientSession(
            # sock_read bounds the wait for an answer's head; its body has the model route's
            # own watch (gateway/model_route.py), with the same bound.
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=30, sock_read=self.limits.api_read_timeout
            ),
            connector=aiohttp.TCPConnector(limit=64, socket_factory=upstream_socket),
            trust_env=False,  # never through a proxy from the environment
            # No cookies of the gateway's own: the API's Set-Cookie goes to the client as it
            # came, and the client's Cookie header is what goes back (nor a jar to consult).
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        try:
            listener = Listener(
                sock=self._listen(),
                limit=self.limits.max_connections,
                read_limit=MAX_HEAD_BYTES,
                serve=self._on_connection,
                on_full=self._note_full,
            )
            listener.start()
            self._ready.set()
            await self._stopping.wait()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # first, so no new connection can start
            listener.close()
            for task in list(listener.tasks):
                task.cancel()
            await asyncio.gather(*listener.tasks, return_exceptions=True)
        finally:
            await self._session.close()

    def _note_full(self) -> None:
        now = time.monotonic()
        if now - self._full_noted >= _FULL_NOTE_SECONDS:
            self._full_noted = now
            self._log(
                f"{self.limits.max_connections} connections open, the limit: "
                "further connections wait for one to end"
            )

    def _log(self, line: str) -> None:
        line = log_safe(line, _LOG_LINE_MAX)
        logger.info("Gateway %s: %s", self.socket_path.parent.name, line)
        try:
            self._on_log(line)
        except Exception:
            logger.exception("Gateway on_log failed")

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._serve_connection(HttpConnection(reader, writer, self.limits))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("Gateway connection failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_connection(self, conn: HttpConnection) -> None:
        while True:
            try:
                request = await conn.request_next()
                if request is None:
                    return
                if not await self._route(request, conn) or not conn.body_done:
                    return
            except HttpError as exc:
                self._log(f"request refused: {exc.status} {log_safe(exc.message)}")
                await conn.answer(exc.status, exc.message, close=True)
                return

    async def _route(self, request: Request, conn: HttpConnection) -> bool:
        """Serve one request; True when the connection may carry another."""
        if request.method == "CONNECT":
            await self._egress.connect(request, conn)
            return False
        if request.target.startswith("/"):
            path, query = path_query(request.target)
            if path == MESSAGES_PATH and self._messages is not None:
                return await self._messages.handle(request, query, conn)
            return await self._model.handle(request, conn)
        if request.target.lower().startswith("http://"):
            await self._egress.plain(request, conn)
            return False
        self._log(f"egress refused: {log_safe(request.target)} (only http:// or CONNECT)")
        await conn.answer(403, "use CONNECT for https", close=True)
        return False
