"""The gateway thread's CPU time per request, per streamed MB and per relayed event.

CPU time of the gateway's own thread (its pthread CPU clock) is what this measures, so other
work on the machine moves it less than wall-clock figures (on a busy machine still by 10-20%:
compare runs made one after the other, or count instructions, below). The fake Anthropic API
runs in a process of its own, the client in another (as the CLI runs in a container); the
gateway runs in this process, served from its own thread as a task worker runs it. Cases:
  request - tiny streamed answers (a few events), one at a time: the cost of a request (head
            framing, credential swap, the upstream request, the answer's head and end);
  bulk    - long answers written at once, one at a time: the cost of a streamed MB;
  paced   - answers of 50 text events 2 ms apart, 16 at once, like a model producing tokens:
            each event arrives, and is relayed, on its own.
Each case runs a warm-up batch, then REPEAT batches; the minimum and median are printed.
--count, --events, --delay-ms and --concurrency change the chosen case (--only).
--root CHECKOUT measures the gateway of another checkout of this project (an older commit),
with this file's fake API and client. --profile FILE keeps the gateway thread's cProfile stats.
Run: .venv/bin/python bench/gateway_cpu_bench.py [--root CHECKOUT] [--repeat 5]

Instructions instead of time (the same on a busy machine): the children are started fresh, so
under valgrind only this process is counted, and the gateway thread is its second:
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=cg.%p \\
      .venv/bin/python bench/gateway_cpu_bench.py --only request --count 50 --repeat 1
then again with --repeat 3: the difference of the two "summary:" lines of cg.<pid>-02,
divided by 100, is the instructions per request.
"""

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import shutil
import statistics
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _setup import ROOT, django_setup, fake_api_serve, gateway_of_checkout, streamed_message_body

# Children are started fresh (not forked): under valgrind only this process is measured.
SPAWN = multiprocessing.get_context("spawn")
PROFILE = ""  # --profile: the gateway thread's cProfile stats of the last case go there


def _request(auth: str) -> bytes:
    body = streamed_message_body()
    # About as many headers as the CLI sends through its SDK (x-stainless-*, anthropic-*),
    # so the head framed per request is of a realistic size.
    return (
        "POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1:4000\r\n"
        "Accept: application/json\r\nX-Stainless-Retry-Count: 0\r\nX-Stainless-Timeout: 600\r\n"
        "X-Stainless-Lang: js\r\nX-Stainless-Package-Version: 0.60.0\r\nX-Stainless-OS: Linux\r\n"
        "X-Stainless-Arch: x64\r\nX-Stainless-Runtime: node\r\n"
        "X-Stainless-Runtime-Version: v22.19.0\r\n"
        "anthropic-dangerous-direct-browser-access: true\r\n"
        f"anthropic-version: 2023-06-01\r\nAuthorization: Bearer {auth}\r\nx-app: cli\r\n"
        "User-Agent: claude-cli/2.1.332 (external, cli)\r\nContent-Type: application/json\r\n"
        "anthropic-beta: claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14\r\n"
        "x-stainless-helper-method: stream\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def _one(path: str, request: bytes) -> int:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(request)
    body = await reader.read(-1)  # the gateway closes after the answer (Connection: close)
    writer.close()
    assert b" 200 " in body[:20], body[:300]
    assert b"message_stop" in body, body[-300:]
    return len(body)


def _client(conn: Connection, path: str, auth: str) -> None:
    """Runs (count, concurrency) batches on request; answers the bytes received."""

    async def serve() -> None:
        request = _request(auth)
        while (order := conn.recv()) != "stop":
            count, concurrency = order
            got = 0
            for _ in range(count // concurrency):
                sizes = await asyncio.gather(*(_one(path, request) for _ in range(concurrency)))
                got += sum(sizes)
            conn.send(got)

    asyncio.run(serve())


def _gateway(api_port: int, folder: Path) -> tuple[Any, str]:
    """A TaskGateway of the checkout Django was set up from."""
    gateway, placeholder = gateway_of_checkout(api_port=api_port, folder=folder)
    if PROFILE:
        run = gateway._run

        def profiled() -> None:
            with cProfile.Profile() as profile:
                run()
            profile.dump_stats(PROFILE)

        gateway._run = profiled
    return gateway, placeholder


def _ticks(thread_id: int | None) -> tuple[int, int]:
    """A thread's user and kernel CPU time so far, in clock ticks."""
    fields = Path(f"/proc/self/task/{thread_id}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]), int(fields[12])


def measure(
    *, events: int, delay: float, count: int, concurrency: int, repeat: int
) -> list[tuple[float, int, float]]:
    """(gateway CPU seconds, bytes received, the kernel's share of that CPU) for each of
    ``repeat`` batches of ``count`` requests, after one warm-up batch."""
    api_end, api_child = multiprocessing.Pipe()
    api = SPAWN.Process(target=fake_api_serve, args=(api_child, events, delay), daemon=True)
    api.start()
    api_port = api_end.recv()
    folder = Path(tempfile.mkdtemp(prefix="gwc-", dir="/tmp"))
    gateway, placeholder = _gateway(api_port, folder)
    gateway.start()
    thread = next(t for t in threading.enumerate() if t.name.startswith("gateway-"))
    assert thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)
    to_client, client_end = multiprocessing.Pipe()
    client = SPAWN.Process(
        target=_client, args=(client_end, str(gateway.socket_path), placeholder), daemon=True
    )
    client.start()
    results = []
    try:
        to_client.send((max(concurrency, count // 5), concurrency))  # warm-up
        to_client.recv()
        for _ in range(repeat):
            before, ticks = time.clock_gettime(clock), _ticks(thread.native_id)
            to_client.send((count, concurrency))
            got = to_client.recv()
            user, kernel = (b - a for a, b in zip(ticks, _ticks(thread.native_id), strict=True))
            results.append((time.clock_gettime(clock) - before, got, kernel / (user + kernel or 1)))
        to_client.send("stop")
        client.join(10)
    finally:
        usage = gateway.stop()
        api_end.send("stop")
        api.join(5)
        shutil.rmtree(folder, ignore_errors=True)
    assert usage.output_tokens > 0, usage
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("request", "bulk", "paced"))
    parser.add_argument("--count", type=int, default=0, help="requests per batch")
    parser.add_argument("--events", type=int, default=0, help="text events per answer")
    parser.add_argument("--delay-ms", type=float, default=-1, help="between events")
    parser.add_argument("--concurrency", type=int, default=0, help="requests at once")
    parser.add_argument("--profile", default="", help="a file for the gateway's cProfile stats")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    root = args.root.resolve()
    django_setup(root=root)
    print(f"gateway of {root}; load average {os.getloadavg()[0]:.2f}")
    cases: dict[str, dict[str, Any]] = {
        "request": {"events": 2, "delay": 0.0, "count": 200, "concurrency": 1},
        "bulk": {"events": 4000, "delay": 0.0, "count": 20, "concurrency": 1},
        "paced": {"events": 50, "delay": 0.002, "count": 64, "concurrency": 16},
    }
    per_request = 0.0  # the request case's minimum, once it ran
    for name, case in cases.items():
        if args.only and name != args.only:
            continue
        for option in ("count", "events", "concurrency"):
            case[option] = getattr(args, option) or case[option]
        if args.delay_ms >= 0:
            case["delay"] = args.delay_ms / 1000
        runs = measure(repeat=args.repeat, **case)
        count = case["count"]
        per = sorted(cpu / count * 1000 for cpu, _, _ in runs)
        kernel = statistics.median(share for _, _, share in runs)
        line = (
            f"{name:<8} {count} x {runs[0][1] / count / 1024:.1f} KiB: CPU ms per request "
            f"min {per[0]:.3f} median {statistics.median(per):.3f} ({kernel:.0%} in the kernel)"
        )
        if name == "request":
            per_request = per[0]
        elif per_request and name == "bulk":
            mb = sorted((cpu * 1000 - per_request * count) / (got / 1e6) for cpu, got, _ in runs)
            line += f"; per MB beyond a request: min {mb[0]:.2f} median {statistics.median(mb):.2f}"
        elif per_request and name == "paced":
            events = case["events"] + 6  # message_start, ping, block start/stop, delta, stop
            extra = (per[0] - per_request) * 1000 / events
            line += f"; per event beyond a request: min {extra:.1f} us"
        print(line, flush=True)


if __name__ == "__main__":
    main()
