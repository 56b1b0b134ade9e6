"""What the per-task gateway adds to a streamed model answer.

The fake Anthropic API (its own process) streams an answer of N events. Time to first event and
total time, measured by one asyncio client, for the same requests made
  direct   - straight to the fake API over TCP (the baseline, in the same run),
  gateway  - through a real TaskGateway on its Unix socket (placeholder check, credential swap,
             streamed relay, usage counting),
  socat    - through socat TCP -> the gateway socket with the options the container's
             entrypoint uses (read from agent/agent-entrypoint.sh), if socat exists,
at 1 and 16 concurrent streams, rounds interleaved. Two cases, each with its own verdict:
  burst  - N_EVENTS events written at once (a ~40 KiB answer of a few ms: the gateway's share
           of the time is as large as it gets);
  paced  - PACED_EVENTS events DELAY_MS apart, like a model producing tokens.
Prints the median TTFB overhead in ms, the median total-time ratio against direct and the
median time added after the first event (the relay of the rest and the end of the answer), the
gateway thread's CPU per MB streamed, and the load average (other work on the machine moves
every figure; only ratios within one run compare). Goals: TTFB overhead <= 5 ms at
the median, total ratio <= 1.10.
The client runs in its own process (as the CLI runs in a container), so the gateway's thread
shares its process only with what a task worker runs.
Run: .venv/bin/python bench/gateway_bench.py [--root CHECKOUT] [N_EVENTS] [ROUNDS] [DELAY_MS]
     [PACED_EVENTS] (defaults 200 20 2 50). --root measures the gateway of another checkout of
     this project (an older commit) with this file's fake API, client and relay: the fairest
     before-and-after, run alternately with and without it.
"""

import asyncio
import multiprocessing
import os
import re
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

from _setup import (
    BENCH_API_TOKEN,
    ROOT,
    django_setup,
    fake_api_serve,
    gateway_of_checkout,
    root_and_args,
    streamed_message_request,
)

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
Results = dict[tuple[str, int], list[tuple[float, float, int]]]

sys.path.insert(0, str(ROOT))

TTFB_GOAL_MS = 5.0
RATIO_GOAL = 1.10


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


def _opener(kind: str, where: str | int) -> Opener:
    if kind == "unix":
        return lambda: asyncio.open_unix_connection(str(where))
    return lambda: asyncio.open_connection("127.0.0.1", int(where))


def _rounds_at(concurrency: int, rounds: int) -> int:
    return rounds if concurrency == 1 else max(3, rounds // 4)


def _client(conn: Connection, modes: dict[str, tuple[str, str | int, str]], rounds: int) -> None:
    """The measuring client, in its own process; the parent samples the gateway's CPU around
    each round it runs."""

    async def measure() -> None:
        for concurrency in (1, 16):
            plan = [None, *range(_rounds_at(concurrency, rounds))]  # first: warm-up
            for n in plan:
                for mode, (kind, where, auth) in modes.items():
                    conn.send((mode, concurrency if n is not None else 0))
                    conn.recv()
                    got = await run_round(
                        _opener(kind, where), streamed_message_request(auth), concurrency
                    )
                    conn.send(got)

    asyncio.run(measure())
    conn.send("done")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entrypoint_relay() -> tuple[list[str], str]:
    """socat's global options and its TCP-LISTEN options as agent/agent-entrypoint.sh runs it,
    so the bench measures the relay containers really use."""
    script = (ROOT / "agent" / "agent-entrypoint.sh").read_text()
    found = re.search(r'^\s*socat\b([^"\n]*)"TCP-LISTEN:\$GATEWAY_PORT,([^"]*)"', script, re.M)
    if found is None:
        raise SystemExit("no socat TCP-LISTEN line found in agent/agent-entrypoint.sh")
    return found.group(1).split(), found.group(2)


def measure_case(events: int, rounds: int, delay: float) -> tuple[Results, float, float, list[str]]:
    """One case end to end: its own fake API, gateway and relay. (results, gateway CPU s,
    MB through the gateway, the modes in order)."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=fake_api_serve, args=(child, events, delay), daemon=True
    )
    server.start()
    api_port = parent.recv()
    folder = Path(tempfile.mkdtemp(prefix="gwb-", dir="/tmp"))
    gateway, placeholder = gateway_of_checkout(api_port=api_port, folder=folder)
    gateway.start()
    gw_thread = next(
        t for t in threading.enumerate() if t.name == f"gateway-{gateway.socket_path.parent.name}"
    )
    assert gw_thread.ident is not None
    gw_clock = time.pthread_getcpuclockid(gw_thread.ident)
    relay = None
    modes: dict[str, tuple[str, str | int, str]] = {
        "direct": ("tcp", api_port, BENCH_API_TOKEN),
        "gateway": ("unix", str(gateway.socket_path), placeholder),
    }
    if shutil.which("socat"):
        relay_port = free_port()
        global_options, listen_options = entrypoint_relay()
        relay = subprocess.Popen(
            [
                "socat",
                *global_options,
                f"TCP-LISTEN:{relay_port},{listen_options}",
                f"UNIX-CONNECT:{gateway.socket_path}",
            ]
        )
        time.sleep(0.3)
        modes["socat"] = ("tcp", relay_port, placeholder)

    results: Results = {}
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
    expected = sum(len(results[(m, c)]) for m in modes if m != "direct" for c in (1, 16))
    assert usage.requests >= expected, usage
    assert usage.output_tokens > 0, usage
    return results, gw_cpu, gw_bytes / 1e6, list(modes)


def report(
    title: str, events: int, rounds: int, measured: tuple[Results, float, float, list[str]]
) -> bool:
    results, gw_cpu, mb, modes = measured
    per_stream = statistics.median(size for _, _, size in results[("direct", 1)])
    print(
        f"\n{title}: {events} events, {per_stream / 1024:.1f} KiB per stream; "
        f"{rounds} rounds at 1 stream, {_rounds_at(16, rounds)} at 16"
    )
    print(
        f"{'path':<8} {'streams':>7} {'TTFB ms':>9} {'total ms':>9} {'TTFB +ms':>9} {'total x':>8}"
        f" {'after +ms':>9}"
    )
    verdict = True
    for concurrency in (1, 16):
        base = results[("direct", concurrency)]
        base_ttfb = statistics.median(t for t, _, _ in base)
        base_total = statistics.median(t for _, t, _ in base)
        base_after = statistics.median(t - f for f, t, _ in base)
        for mode in modes:
            got = results[(mode, concurrency)]
            ttfb = statistics.median(t for t, _, _ in got)
            total = statistics.median(t for _, t, _ in got)
            over, ratio = (ttfb - base_ttfb) * 1000, total / base_total
            after = (statistics.median(t - f for f, t, _ in got) - base_after) * 1000
            met = over <= TTFB_GOAL_MS and ratio <= RATIO_GOAL
            if mode != "direct":
                verdict = verdict and met
            mark = "" if mode == "direct" else ("  ok" if met else "  OVER")
            print(
                f"{mode:<8} {concurrency:>7} {ttfb * 1000:>9.2f} {total * 1000:>9.2f} "
                f"{over:>+9.2f} {ratio:>8.3f} {after:>+9.2f}{mark}"
            )
    print(
        f"gateway CPU: {gw_cpu * 1000:.0f} ms for {mb:.1f} MB streamed = "
        f"{gw_cpu * 1000 / mb:.1f} ms CPU per MB"
    )
    print(f"{title} goals (TTFB +{TTFB_GOAL_MS:g} ms, total x{RATIO_GOAL:.2f}):", end=" ")
    print("met" if verdict else "NOT met")
    return verdict


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    root, args = root_and_args(sys.argv[1:])
    events = int(args[0]) if len(args) > 0 else 200
    rounds = int(args[1]) if len(args) > 1 else 20
    delay_ms = float(args[2]) if len(args) > 2 else 2.0
    paced_events = int(args[3]) if len(args) > 3 else 50
    django_setup(root=root)
    import gateway  # the checkout's, now first on the path

    print(f"gateway of {Path(gateway.__file__).parent.parent}")
    print(f"{os.cpu_count()} CPUs; load average (1/5/15 min) at start: {_load()}")
    if not shutil.which("socat"):
        print("socat not installed: the relay path is skipped")
    else:
        global_options, listen_options = entrypoint_relay()
        relay = " ".join(["socat", *global_options, f"TCP-LISTEN:PORT,{listen_options}"])
        print(f"relay as in agent/agent-entrypoint.sh: {relay}")
    burst = report("burst", events, rounds, measure_case(events, rounds, 0.0))
    paced_rounds = max(5, rounds // 2)
    paced = report(
        f"paced ({delay_ms:g} ms between events)",
        paced_events,
        paced_rounds,
        measure_case(paced_events, paced_rounds, delay_ms / 1000),
    )
    print(f"\nload average at end: {_load()}")
    print(f"verdict: burst {'met' if burst else 'NOT met'}, paced {'met' if paced else 'NOT met'}")


if __name__ == "__main__":
    main()
