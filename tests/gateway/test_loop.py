"""The gateway's event loop connects to an address given as numbers at once, without a trip
through getaddrinfo (libuv's resolver threads), and says plainly when the connection fails."""

import asyncio
import errno
import socket

import pytest

from gateway.loop import GatewayLoop


class _NoResolver(GatewayLoop):
    """Fails any lookup, so a connect that needed one shows."""

    async def getaddrinfo(self, host, port, **kwargs):
        raise AssertionError(f"getaddrinfo({host!r}, {port!r}) was asked")


async def _connect(host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _connect_many(host: str, port: int, count: int) -> list[socket.socket]:
    return list(await asyncio.gather(*[_connect(host, port) for _ in range(count)]))


def _listening(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(16)
    return server


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_numeric_address_connects_without_a_lookup(host):
    try:
        server = _listening(host)
    except OSError:
        pytest.skip(f"no {host} on this machine")
    loop = _NoResolver()
    try:
        with server:
            port = server.getsockname()[1]
            many = loop.run_until_complete(_connect_many(host, port, 16))
            for sock in many:
                assert sock.getpeername()[:2] == server.getsockname()[:2]
                sock.close()
    finally:
        loop.close()


def test_a_refused_connection_is_an_error_naming_the_address():
    with _listening("127.0.0.1") as server:
        port = server.getsockname()[1]
    loop = _NoResolver()  # the port is closed now: nothing listens there
    try:
        with pytest.raises(
            OSError, match=rf"Connect call failed \('127\.0\.0\.1', {port}\)"
        ) as caught:
            loop.run_until_complete(_connect("127.0.0.1", port))
    finally:
        loop.close()
    assert caught.value.errno == errno.ECONNREFUSED


def test_a_host_name_still_goes_through_the_lookup():
    loop = _NoResolver()
    try:
        with pytest.raises(AssertionError, match="getaddrinfo"):
            loop.run_until_complete(_connect("localhost", 9))
    finally:
        loop.close()
