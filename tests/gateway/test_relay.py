"""The socat relay the containers put in front of the gateway socket, run on the host with the
options agent/agent-entrypoint.sh and agent/setup-phase.sh give it (as they are in the
scripts), against a real gateway and the fake API."""

from __future__ import annotations

import itertools
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.gateway.test_model_route import BODY

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed here"),
]

AGENT = Path(__file__).resolve().parents[2] / "agent"
LATE = 0.030  # an event this late after the one before is a stall, not a 2 ms pace


def relay_options(script: str) -> str:
    found = re.search(r'socat "TCP-LISTEN:\$GATEWAY_PORT,([^"]*)"', (AGENT / script).read_text())
    assert found, f"no socat TCP-LISTEN line in agent/{script}"
    return found.group(1)


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def relay(start_gateway, free_port: int, request) -> Iterator[tuple[int, str]]:
    """(port, placeholder): socat on 127.0.0.1 with the options of ``request.param``'s script,
    relaying to a started gateway."""
    gateway, placeholder, _ = start_gateway()
    process = subprocess.Popen(
        [
            "socat",
            f"TCP-LISTEN:{free_port},{relay_options(request.param)}",
            f"UNIX-CONNECT:{gateway.socket_path}",
        ]
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", free_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.01)
    yield free_port, placeholder
    process.terminate()
    process.wait(10)


def _chunks_with_times(file: BinaryIO) -> list[float]:
    """Reads one chunked answer (its head, then its chunks); when each chunk arrived."""
    while file.readline() != b"\r\n":
        pass
    times = []
    while True:
        size = int(file.readline().strip(), 16)
        file.read(size + 2)
        times.append(time.monotonic())
        if size == 0:
            return times


@pytest.mark.parametrize("relay", ["agent-entrypoint.sh", "setup-phase.sh"], indirect=True)
def test_events_on_a_kept_alive_connection_are_not_held_back(
    relay: tuple[int, str], fake_api: FakeAnthropicAPI
) -> None:
    """After a few requests on one connection the CLI's TCP delays its ACKs; with Nagle on,
    socat then holds a small event back until that ACK comes (about 40 ms on Linux), once in
    about every stream. TCP_NODELAY (``nodelay``) lets each event go when it comes."""
    port, placeholder = relay
    fake_api.text_deltas = 30
    fake_api.event_delay_seconds = 0.002
    body = BODY.encode()
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {placeholder}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    stalls = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as stream:
        answers = stream.makefile("rb")
        for number in range(12):
            stream.sendall(request)
            times = _chunks_with_times(answers)
            if number >= 4:  # the connection has settled into delayed ACKs
                stalls += sum(b - a > LATE for a, b in itertools.pairwise(times))
    assert stalls <= 1, f"{stalls} events held back over {LATE * 1000:g} ms"
