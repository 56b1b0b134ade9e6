"""The per-task gateway: one Unix socket, served from its own thread and asyncio loop, that is the
container's only way out.

On the socket (one HTTP/1.1 connection may carry many requests):

* origin-form requests (``POST /v1/messages``) are the model route (gateway/model_route.py):
  placeholder checked, real credential added, answer streamed back;
* ``CONNECT host:port`` and absolute-form ``http://`` requests are egress (gateway/tunnel.py),
  decided by gateway/egress.py.

The socket lives in a folder bind-mounted into this task's container only, and is removed on
stop(), so a connection on it can only ever act for this task.

    gateway = TaskGateway(socket_path=..., auth=UpstreamAuth("oauth"), provider=...,
                          placeholder=placeholder_new(), on_log=task_log.append)
    gateway.start()      # the socket exists (mode 0666) on return
    ...                  # run the container
    usage = gateway.stop()

``on_log`` is called from the gateway's thread, one line per refusal or notable event; it must
be quick and thread-safe (never a database write on the caller's connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import aiohttp

from .auth import PLACEHOLDER_PREFIX, CredentialProvider, UpstreamAuth, placeholder_new
from .egress import EgressPolicy, Resolver, egress_policy_from_settings
from .http1 import MAX_HEAD_BYTES, HttpError, answer, request_head_read
from .model_route import ALLOWED_CALLS, ModelRoute
from .tunnel import Egress, system_resolve
from .usage import GatewayUsage, UsageMeter

__all__ = [
    "ALLOWED_CALLS",
    "CredentialProvider",
    "GatewayUsage",
    "TaskGateway",
    "UpstreamAuth",
    "placeholder_new",
]

logger = logging.getLogger("gateway")

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux (104 on macOS)
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 15.0


class TaskGateway:
    def __init__(
        self,
        *,
        socket_path: Path,
        auth: UpstreamAuth,
        provider: CredentialProvider,
        placeholder: str,
        on_log: Callable[[str], None],
        api_url: str | None = None,
        egress: EgressPolicy | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        """api_url / egress default to the settings (ANTHROPIC_API_URL, AGENT_EGRESS_ALLOW);
        resolver (host, port) -> addresses defaults to the system's (tests inject one)."""
        if not placeholder.startswith(PLACEHOLDER_PREFIX) or len(placeholder) < 40:
            raise ValueError("placeholder must come from placeholder_new()")
        self.socket_path = Path(socket_path)
        if len(os.fsencode(self.socket_path)) > _SOCKET_PATH_MAX:
            raise ValueError(
                f"gateway socket path is too long for a Unix socket ({self.socket_path}); "
                "use a shorter AGENT_GATEWAY_SOCKET_ROOT"
            )
        if api_url is None:
            from django.conf import settings

            api_url = settings.ANTHROPIC_API_URL
        self._on_log = on_log
        self._meter = UsageMeter()
        self._session: aiohttp.ClientSession | None = None
        self._model = ModelRoute(
            api_url=api_url,
            auth=auth,
            provider=provider,
            placeholder=placeholder,
            on_log=self._log,
            meter=self._meter,
            session=self._client_session,
        )
        self._egress = Egress(
            policy=egress if egress is not None else egress_policy_from_settings(),
            resolver=resolver or system_resolve,
            on_log=self._log,
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()
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
        loop = asyncio.new_event_loop()
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

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600),
            connector=aiohttp.TCPConnector(limit=64),
            trust_env=False,  # never through a proxy from the environment
        )
        try:
            server = await asyncio.start_unix_server(
                self._on_connection, path=str(self.socket_path), limit=MAX_HEAD_BYTES
            )
            # uid 1000 in the container must connect; the folder is this task's alone.
            os.chmod(self.socket_path, 0o666)  # noqa: S103
            self._ready.set()
            await self._stopping.wait()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # first, so no new connection can start
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()
        finally:
            await self._session.close()

    def _log(self, line: str) -> None:
        logger.info("Gateway %s: %s", self.socket_path.parent.name, line)
        try:
            self._on_log(line)
        except Exception:
            logger.exception("Gateway on_log failed")

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("Gateway connection failed")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                request = await request_head_read(reader)
            except HttpError as exc:
                await answer(writer, exc.status, exc.message, close=True)
                return
            if request is None:
                return
            if request.method == "CONNECT":
                await self._egress.connect(request, reader, writer)
                return
            if request.target.startswith("/"):
                if not await self._model.handle(request, reader, writer):
                    return
                continue
            if request.target.lower().startswith("http://"):
                await self._egress.plain(request, reader, writer)
                return
            self._log(f"egress refused: {request.target[:200]} (only http:// or CONNECT)")
            await answer(writer, 403, "use CONNECT for https", close=True)
            return
