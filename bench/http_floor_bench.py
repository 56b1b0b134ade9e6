"""The floor under bench/refresh_tokens_bench.py: token requests alone, no database, no Django.

N requests to the fake token server in its own process answering after DELAY s, C at a time,
twice in the same run:
- baseline: token_refresh_request (requests), one thread per concurrent request (the old batch);
- new: token_refresh_request_async (aiohttp), one event loop, one session (today's batch).
Both drive the same rules (oauth_tokens/token_client/rules.py). Prints wall time as a ratio to
the ideal N x DELAY / C and the CPU per request of this process: no refresh command built on a
client can beat its client's ratio on the same machine.
Run: .venv/bin/python bench/http_floor_bench.py [N] [C] [DELAY] [--keep-alive]
     (--keep-alive: the server keeps connections open, HTTP/1.1, as a real endpoint does)
"""

import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

from _setup import ROOT

sys.path.insert(0, str(ROOT))


def _serve(conn: Connection, delay: float, n: int, keep_alive: bool) -> None:
    # Runs in a child process of its own: the fake server is loaded there only.
    from tests.fakes.token_server import FakeTokenServer

    with FakeTokenServer(delay_seconds=delay, keep_alive=keep_alive) as server:
        conn.send(([server.issue() for _ in range(2 * n)], server.url))
        conn.recv()
        conn.send(server.refresh_count)


def _measure(run: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    keep_alive = "--keep-alive" in sys.argv
    argv = [arg for arg in sys.argv[1:] if arg != "--keep-alive"]
    n = int(argv[0]) if len(argv) > 0 else 2000
    concurrency = int(argv[1]) if len(argv) > 1 else 64
    delay = float(argv[2]) if len(argv) > 2 else 0.05
    # Not in the server's child process, which starts before this line.
    from oauth_tokens.token_client import (
        RefreshConfig,
        token_refresh_request,
        token_refresh_request_async,
        token_session_new,
    )

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, delay, n, keep_alive))
    server.start()
    tokens, url = parent.recv()
    config = RefreshConfig(token_url=url)
    baseline_tokens, new_tokens = tokens[:n], tokens[n:]

    def baseline() -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            list(
                pool.map(
                    lambda t: token_refresh_request(refresh_token=t, config=config), baseline_tokens
                )
            )

    async def new_async() -> None:
        async with token_session_new(concurrency=concurrency) as session:
            slots = asyncio.Semaphore(concurrency)

            async def one(token: str) -> None:
                async with slots:
                    await token_refresh_request_async(
                        refresh_token=token, config=config, session=session
                    )

            await asyncio.gather(*(one(t) for t in new_tokens))

    load = os.getloadavg()[0]
    results = {
        "baseline (requests, threads)": _measure(baseline),
        "new (aiohttp, one event loop)": _measure(lambda: asyncio.run(new_async())),
    }
    parent.send("stop")
    refreshed = parent.recv()
    server.join()
    assert refreshed == 2 * n, f"the server granted {refreshed} of {2 * n}"
    ideal = n * delay / concurrency
    print(
        f"{n} token requests each, {concurrency} at a time, server answers after {delay:g} s, "
        f"{'keep-alive (HTTP/1.1)' if keep_alive else 'a connection per request (HTTP/1.0)'}"
    )
    print(f"load average (1 min) before {load:.2f}, after {os.getloadavg()[0]:.2f}")
    for name, (cpu, wall) in results.items():
        print(
            f"{name}: wall {wall:.2f} s; ideal {ideal:.2f} s; ratio {wall / ideal:.2f}; "
            f"CPU per request {cpu / n * 1e3:.2f} ms"
        )
    (base_cpu, base_wall), (new_cpu, new_wall) = results.values()
    print(f"new / baseline: wall {new_wall / base_wall:.2f}, CPU {new_cpu / base_cpu:.2f}")


if __name__ == "__main__":
    main()
