"""The gateway's event loop: uvloop, with one change to how a socket connects.

uvloop's ``sock_connect`` asks getaddrinfo for every TCP address, even one given as numbers,
unless it knows the socket type, which it does not pass: each upstream connection then waits on
a hop to one of libuv's resolver threads and back (about 0.15 ms before its first byte, measured
by bench/gateway_bench.py at one stream). aiohttp hands it addresses it has resolved itself, and
the gateway's egress rules have checked: those connect at once, the way uvloop then would.
"""

import asyncio
import socket
from typing import Any

import uvloop

from common.netpolicy import ip_literal


class GatewayLoop(uvloop.Loop):
    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or ip_literal(address[0]) is None:
            await super().sock_connect(sock, address)
            return
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            pass
        else:
            return
        writable: asyncio.Future[None] = self.create_future()
        fd = sock.fileno()
        self.add_writer(fd, _settle, writable)
        try:
            await writable
        finally:
            self.remove_writer(fd)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, f"Connect call failed {address}")


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
