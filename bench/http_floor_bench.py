"""The floor under bench/refresh_tokens_bench.py: token requests alone, no database, no Django.

N requests through oauth_tokens.token_client (requests), C threads, to the fake token server
in its own process answering after DELAY s. Prints wall time as a ratio to the ideal
N x DELAY / C and the CPU per request: no refresh command built on this client and these
threads can beat this ratio on the same machine.
Run: .venv/bin/python bench/http_floor_bench.py [N] [C] [DELAY]
"""

import multiprocessing
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

from _setup import ROOT

sys.path.insert(0, str(ROOT))


def _serve(conn: Connection, delay: float, n: int) -> None:
    from tests.fakes.token_server import FakeTokenServer

    with FakeTokenServer(delay_seconds=delay) as server:
        conn.send(([server.issue() for _ in range(n)], server.url))
        conn.recv()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    from oauth_tokens.token_client import RefreshConfig, token_refresh_request

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, delay, n))
    server.start()
    tokens, url = parent.recv()
    config = RefreshConfig(token_url=url)
    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda t: token_refresh_request(refresh_token=t, config=config), tokens))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    parent.send("stop")
    server.join()
    ideal = n * delay / threads
    print(f"{n} token requests, {threads} threads, server answers after {delay:g} s")
    print(f"wall {wall:.2f} s; ideal {ideal:.2f} s; ratio {wall / ideal:.2f}")
    print(f"CPU per request in this process: {cpu / n * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
