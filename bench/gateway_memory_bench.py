"""What one task's abusive container costs the worker through its gateway, and another task.

Two gateways in this process (a worker running two tasks), A and B, each with its own API
stand-in in its own process (tests/gateway/sink_api.py: reads bodies, keeps none). Then, from
other processes:
  prober   - small model requests through B one after another, timing each;
  attacker - against A: HUGE connections each sending a body of BODY_MB (all of it, at full
             speed) and SLOW connections each sending a request head a line at a time.
Prints this process's resident memory (sampled every 10 ms) before and at its peak during the
attack, with the ratio, B's latency before and during the attack, and the most request-body
bytes A held at once. Only figures within one run compare: other work on the machine moves
every one of them (the load average is printed).
Run: .venv/bin/python bench/gateway_memory_bench.py [HUGE] [BODY_MB] [SLOW]   (defaults 16 63 64)
"""

import logging
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from _setup import ROOT, FixedProvider, django_setup

sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from gateway.runtime import TaskGateway

REAL_TOKEN = "sk-ant-oat01-bench-real-token"
PROBES = 20
MB = 1_000_000
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _serve_sink(conn: Connection) -> None:
    # The fake API lives in the tests: imported in the child process that serves it only.
    from tests.gateway.sink_api import SinkAPI

    with SinkAPI() as sink:
        conn.send(sink.port)
        conn.recv()
        conn.send((sink.received, len(sink.bodies)))


def _head(placeholder: str, length: int, close: bool = True) -> bytes:
    return (
        f"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {placeholder}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()


def _connected(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(path)
    return sock


def _probe(conn: Connection, path: str, placeholder: str) -> None:
    """Times small requests through B until told to stop; one list of seconds per phase."""
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    while conn.recv() == "go":
        took = []
        for _ in range(PROBES):
            started = time.perf_counter()
            with _connected(path, 60) as sock:
                sock.sendall(_head(placeholder, len(body)) + body)
                answer = b""
                while data := sock.recv(65536):
                    answer += data
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
            took.append(time.perf_counter() - started)
            time.sleep(0.05)
        conn.send(took)


def _attack(
    conn: Connection, path: str, placeholder: str, huge: int, body_mb: int, slow: int
) -> None:
    stop = threading.Event()
    sent = [0] * huge

    def huge_body(n: int) -> None:
        piece = b"x" * (256 * 1024)
        size = body_mb * MB
        try:
            with _connected(path, 120) as sock:
                sock.sendall(_head(placeholder, size))
                while sent[n] < size:
                    chunk = piece[: size - sent[n]]
                    sock.sendall(chunk)
                    sent[n] += len(chunk)
                sock.recv(65536)
        except OSError:
            pass

    def slow_head() -> None:
        try:
            with _connected(path, 120) as sock:
                sock.sendall(b"POST /v1/messages HTTP/1.1\r\n")
                while not stop.wait(1.0):
                    sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            pass

    threads = [threading.Thread(target=huge_body, args=(n,), daemon=True) for n in range(huge)]
    threads += [threading.Thread(target=slow_head, daemon=True) for _ in range(slow)]
    for thread in threads:
        thread.start()
    for thread in threads[:huge]:
        thread.join(600)
    stop.set()
    conn.send(sum(sent))


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stopped = threading.Event()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE

    def run(self) -> None:
        while not self.stopped.wait(0.01):
            self.peak = max(self.peak, self.now())

    def reset(self) -> None:
        self.peak = self.now()


def _gateway(folder: Path, name: str, api_port: int) -> tuple["TaskGateway", str]:
    # After django.setup() in main(): the gateway reads the settings.
    from common.netpolicy import EgressPolicy
    from gateway.runtime import GatewaySetup, TaskGateway, UpstreamAuth, placeholder_new

    placeholder = placeholder_new()
    gateway = TaskGateway(
        socket_path=folder / name / "gateway.sock",
        auth=UpstreamAuth("oauth"),
        provider=FixedProvider(REAL_TOKEN),
        placeholder=placeholder,
        on_log=lambda line: None,
        setup=GatewaySetup(api_url=f"http://127.0.0.1:{api_port}", egress=EgressPolicy(rules=())),
    )
    gateway.start()
    return gateway, placeholder


def _sink() -> tuple[Connection, int]:
    """An API stand-in in its own process: (its pipe, its port)."""
    parent, child = multiprocessing.Pipe()
    multiprocessing.Process(target=_serve_sink, args=(child,), daemon=True).start()
    return parent, parent.recv()


def _ms(took: list[float]) -> str:
    return f"{statistics.median(took) * 1000:.1f} / {max(took) * 1000:.1f} ms"


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    logging.getLogger("gateway").setLevel(logging.WARNING)  # one line per refused slow head
    huge = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    body_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 63
    slow = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    django_setup()
    print(f"{os.cpu_count()} CPUs; load average (1/5/15 min) at start: {_load()}")
    folder = Path(tempfile.mkdtemp(prefix="gwm-", dir="/tmp"))
    to_sink_a, port_a = _sink()
    to_sink_b, port_b = _sink()
    gateway_a, placeholder_a = _gateway(folder, "a", port_a)
    gateway_b, placeholder_b = _gateway(folder, "b", port_b)
    sampler = RssSampler()
    sampler.start()
    to_prober, prober_end = multiprocessing.Pipe()
    path_b = str(gateway_b.socket_path)
    prober = multiprocessing.Process(
        target=_probe, args=(prober_end, path_b, placeholder_b), daemon=True
    )
    prober.start()
    try:
        to_prober.send("go")
        before_took = to_prober.recv()
        rss_before = sampler.peak
        sampler.reset()
        to_attacker, attacker_end = multiprocessing.Pipe()
        path_a = str(gateway_a.socket_path)
        attacker = multiprocessing.Process(
            target=_attack,
            args=(attacker_end, path_a, placeholder_a, huge, body_mb, slow),
            daemon=True,
        )
        started = time.monotonic()
        attacker.start()
        during_took: list[float] = []
        while not to_attacker.poll():
            to_prober.send("go")
            during_took += to_prober.recv()
        sent = to_attacker.recv()
        seconds = time.monotonic() - started
        rss_peak = sampler.peak
        to_prober.send("stop")
    finally:
        for gateway in (gateway_a, gateway_b):
            gateway.stop()
        to_sink_a.send("stop")
        received, bodies = to_sink_a.recv()
        to_sink_b.send("stop")
        to_sink_b.recv()
        sampler.stopped.set()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"attack on task A: {huge} connections x {body_mb} MB bodies, {slow} slow heads; "
        f"{sent / MB:.0f} MB sent in {seconds:.1f} s, {received / MB:.0f} MB and {bodies} "
        "whole bodies reached A's API"
    )
    print(f"A's limits: {gateway_a.limits}")
    print(f"worker RSS before the attack: {rss_before / MB:.1f} MB")
    print(
        f"worker RSS at its peak during the attack: {rss_peak / MB:.1f} MB "
        f"(+{(rss_peak - rss_before) / MB:.1f} MB, x{rss_peak / rss_before:.2f})"
    )
    print(f"A's request-body bytes held at most: {gateway_a.budget.peak / MB:.2f} MB")
    print(
        f"task B, median / max of {len(before_took)} requests before: {_ms(before_took)}; "
        f"of {len(during_took)} during the attack: {_ms(during_took)} "
        f"(median x{statistics.median(during_took) / statistics.median(before_took):.2f})"
    )
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
