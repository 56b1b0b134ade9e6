"""What the per-task gateway adds to a streamed model answer.

The fake Anthropic API (its own process) streams an answer of N events. Time to first event and
total time, measured by one asyncio client, for the same requests made
  direct   - straight to the fake API over TCP,
  gateway  - through a real TaskGateway on its Unix socket (placeholder check, credential swap,
             streamed relay, usage counting),
  socat    - through socat TCP -> the gateway socket, as inside a container (if socat exists),
at 1 and 16 concurrent streams, rounds interleaved, in the same run. Prints the median TTFB
overhead in ms and the median total-time ratio against direct, and the gateway thread's CPU per
MB streamed. Goals (issue 11): TTFB overhead <= 5 ms at the median, total ratio <= 1.10.
The client runs in its own process (as the CLI runs in a container), so the gateway's thread
shares its process only with what a task worker runs. DELAY_MS paces the fake API's events
(0: the whole answer at once, the worst case for the gateway's share of the time).
Run: .venv/bin/python bench/gateway_bench.py [N_EVENTS] [ROUNDS] [DELAY_MS]
"""

import asyncio
import json
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path

from _setup import ROOT, django_setup

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

sys.path.insert(0, str(ROOT))

REAL_TOKEN = "sk-ant-oat01-bench-real-token"


def _serve_api(conn: Connection, events: int, delay: float) -> None:
    from tests.fakes.anthropic_api import FakeAnthropicAPI

    with FakeAnthropicAPI(valid_credentials={REAL_TOKEN}) as api:
        api.text_deltas = events
        api.event_delay_seconds = delay
        api.final_text = "".join(f"word{n:05d} " * 8 for n in range(events))  # ~80 B per event
        conn.send(api.port)
        conn.recv()


class Provider:
    def current(self) -> str:
        return REAL_TOKEN

    def refresh_after_401(self, rejected: str) -> str | None:
        return None


async def one_stream(open_conn: Opener, request: bytes) -> tuple[float, float, int]:
    """(ttfb s, total s, body bytes) for one streamed request."""
    started = time.perf_counter()
    reader, writer = await open_conn()
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n", 1)[0], head[:200]
    first = await reader.readuntil(b"event:")
    ttfb = time.perf_counter() - started
    rest = await reader.read()  # both paths close after the answer (Connection: close)
    total = time.perf_counter() - started
    writer.close()
    body = first + rest
    assert b"message_stop" in body
    return ttfb, total, len(body)


async def run_round(
    open_conn: Opener, request: bytes, concurrency: int
) -> list[tuple[float, float, int]]:
    return await asyncio.gather(*(one_stream(open_conn, request) for _ in range(concurrency)))


def request_bytes(auth: str) -> bytes:
    body = json.dumps(
        {
            "model": "claude-fake-1",
            "max_tokens": 1000,
            "stream": True,
            "messages": [{"role": "user", "content": "stream please"}],
        }
    ).encode()
    return (
        f"POST /v1/messages?beta=true HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {auth}\r\nanthropic-beta: oauth-2025-04-20\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def _opener(kind: str, where: str | int) -> Opener:
    if kind == "unix":
        return lambda: asyncio.open_unix_connection(str(where))
    return lambda: asyncio.open_connection("127.0.0.1", int(where))


def _client(conn: Connection, modes: dict[str, tuple[str, str | int, str]], rounds: int) -> None:
    """The measuring client, in its own process; the parent samples the gateway's CPU around
    each round it runs."""

    async def measure() -> None:
        for concurrency in (1, 16):
            n_rounds = rounds if concurrency == 1 else max(3, rounds // 4)
            plan = [(None, modes)] + [(n, modes) for n in range(n_rounds)]  # first: warm-up
            for n, _ in plan:
                for mode, (kind, where, auth) in modes.items():
                    conn.send((mode, concurrency if n is not None else 0))
                    conn.recv()
                    got = await run_round(_opener(kind, where), request_bytes(auth), concurrency)
                    conn.send(got)

    asyncio.run(measure())
    conn.send("done")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    django_setup()
    from gateway.egress import EgressPolicy
    from gateway.runtime import TaskGateway, UpstreamAuth, placeholder_new

    delay = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve_api, args=(child, events, delay), daemon=True)
    server.start()
    api_port = parent.recv()
    folder = Path(tempfile.mkdtemp(prefix="gwb-", dir="/tmp"))
    placeholder = placeholder_new()
    gateway = TaskGateway(
        socket_path=folder / "gateway.sock",
        auth=UpstreamAuth("oauth"),
        provider=Provider(),
        placeholder=placeholder,
        on_log=print,
        api_url=f"http://127.0.0.1:{api_port}",
        egress=EgressPolicy(rules=()),
    )
    gateway.start()
    gw_thread = next(t for t in threading.enumerate() if t.name.startswith("gateway-"))
    assert gw_thread.ident is not None
    gw_clock = time.pthread_getcpuclockid(gw_thread.ident)
    relay = None
    modes: dict[str, tuple[str, str | int, str]] = {
        "direct": ("tcp", api_port, REAL_TOKEN),
        "gateway": ("unix", str(gateway.socket_path), placeholder),
    }
    if shutil.which("socat"):
        relay_port = free_port()
        relay = subprocess.Popen(
            [
                "socat",
                f"TCP-LISTEN:{relay_port},bind=127.0.0.1,fork,reuseaddr,backlog=128",
                f"UNIX-CONNECT:{gateway.socket_path}",
            ]
        )
        time.sleep(0.3)
        modes["socat"] = ("tcp", relay_port, placeholder)
    else:
        print("socat not installed: the relay path is skipped")

    results: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    gw_cpu = 0.0
    gw_bytes = 0
    to_client, client_end = multiprocessing.Pipe()
    client = multiprocessing.Process(target=_client, args=(client_end, modes, rounds), daemon=True)
    client.start()
    try:
        while (message := to_client.recv()) != "done":
            mode, concurrency = message
            cpu_before = time.clock_gettime(gw_clock)
            to_client.send("go")
            got = to_client.recv()
            if mode != "direct":
                gw_cpu += time.clock_gettime(gw_clock) - cpu_before
                gw_bytes += sum(size for _, _, size in got)
            if got and concurrency:
                results.setdefault((mode, concurrency), []).extend(got)
        client.join(10)
    finally:
        usage = gateway.stop()
        if relay is not None:
            relay.terminate()
            relay.wait()
        parent.send("stop")
        server.join(5)
        shutil.rmtree(folder, ignore_errors=True)

    per_stream = statistics.median(size for _, _, size in results[("direct", 1)])
    print(
        f"{events} events per stream, {per_stream / 1024:.1f} KiB per stream; "
        f"{rounds} rounds at 1 stream, {max(3, rounds // 4)} rounds at 16"
    )
    print(
        f"{'path':<8} {'streams':>7} {'TTFB ms':>9} {'total ms':>9} {'TTFB +ms':>9} {'total x':>8}"
    )
    verdict = True
    for concurrency in (1, 16):
        base = results[("direct", concurrency)]
        base_ttfb = statistics.median(t for t, _, _ in base)
        base_total = statistics.median(t for _, t, _ in base)
        for mode in modes:
            got = results[(mode, concurrency)]
            ttfb = statistics.median(t for t, _, _ in got)
            total = statistics.median(t for _, t, _ in got)
            over, ratio = (ttfb - base_ttfb) * 1000, total / base_total
            if mode != "direct":
                verdict = verdict and over <= 5 and ratio <= 1.10
            print(
                f"{mode:<8} {concurrency:>7} {ttfb * 1000:>9.2f} {total * 1000:>9.2f} "
                f"{over:>+9.2f} {ratio:>8.3f}"
            )
    mb = gw_bytes / 1e6
    print(
        f"gateway CPU: {gw_cpu * 1000:.0f} ms for {mb:.1f} MB streamed = "
        f"{gw_cpu * 1000 / mb:.1f} ms CPU per MB"
    )
    print(f"gateway counted {usage.requests} requests, {usage.output_tokens} output tokens")
    print("goals (TTFB overhead <= 5 ms, total ratio <= 1.10):", "met" if verdict else "NOT met")


if __name__ == "__main__":
    main()
