"""`manage.py refresh_tokens` on many due credentials: wall time as a ratio to the ideal.

N credentials are due; a fake token server answers every request after DELAY seconds; the command
runs with --concurrency C. The ideal is N x DELAY / C (every worker always busy waiting on the
network, zero overhead of our own). Aim: a ratio of 1.5 or below.

The token server runs in its own process by default, as the real one is remote: in this process
it would compete with the command for the GIL. --server-in-process measures that case too.

Run: .venv/bin/python bench/refresh_tokens_bench.py [--credentials N] [--concurrency C]
     [--delay SECONDS] [--server-in-process] [--keep-alive] [--profile FILE]
     BENCH_DATABASE_URL=postgres://... picks PostgreSQL (the database must exist and be empty).
"""

import argparse
import io
import json
import multiprocessing
import os
import sys
import time
from datetime import timedelta
from multiprocessing.connection import Connection

from _setup import ROOT, bench_credentials_create, django_setup


def _serve(conn: Connection, delay: float, keep_alive: bool) -> None:
    """Child process: a FakeTokenServer that knows the tokens the parent sends."""
    sys.path.insert(0, str(ROOT))
    # A child process of its own: the project is on its path only from the line above.
    from tests.fakes.token_server import FakeTokenServer

    with FakeTokenServer(delay_seconds=delay, keep_alive=keep_alive) as server:
        tokens = conn.recv()
        for token in tokens:
            server.issue(token)
        conn.send(server.url)
        conn.recv()  # "stop"
        conn.send(
            {
                "requests": server.request_count,
                "refreshes": server.refresh_count,
                "cpu": time.process_time(),
            }
        )


class _ServerProcess:
    def __init__(self, delay: float, tokens: list[str], keep_alive: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, delay, keep_alive), daemon=True)
        self.process.start()
        self.conn.send(tokens)
        self.url: str = self.conn.recv()

    def stats(self) -> dict[str, float]:
        self.conn.send("stop")
        stats = self.conn.recv()
        self.process.join(timeout=10)
        return stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--credentials", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--server-in-process", action="store_true")
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="the token server keeps connections open (HTTP/1.1), as a real endpoint does; "
        "by default it closes each one after its answer (HTTP/1.0)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the command into FILE")
    args = parser.parse_args()

    django_setup()
    sys.path.insert(0, str(ROOT))
    # After django_setup() and with the project on the path (the two lines above).
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from oauth_tokens.models import OAuthCredential
    from tests.fakes.token_server import FakeTokenServer, _new_token

    n = args.credentials
    tokens = [_new_token("sk-ant-ort01-") for _ in range(n)]
    in_process = None
    if args.server_in_process:
        in_process = FakeTokenServer(delay_seconds=args.delay, keep_alive=args.keep_alive)
        in_process.start()
        for token in tokens:
            in_process.issue(token)
        url = in_process.url
    else:
        server = _ServerProcess(args.delay, tokens, args.keep_alive)
        url = server.url
    settings.CLAUDE_OAUTH_TOKEN_URL = url
    settings.CLAUDE_OAUTH_TIMEOUT = 10.0

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    bench_credentials_create(
        start=0,
        stop=n,
        extra=lambda i, user, now: {
            "refresh_token": tokens[i],
            # All due: expired a while ago up to just inside the buffer.
            "expires_at": now + timedelta(seconds=(i % 600) - 300),
            "scopes": ["user:inference"],
        },
    )
    setup_seconds = time.perf_counter() - started

    out = io.StringIO()
    command = ["refresh_tokens", "--concurrency", str(args.concurrency), "--json"]
    profiler = None
    if args.profile:
        import cProfile  # only when asked for: it is not free to import

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu_started, times_started = time.perf_counter(), time.process_time(), os.times()
    try:
        call_command(*command, stdout=out, stderr=io.StringIO())
    finally:
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        user = os.times().user - times_started.user
        system = os.times().system - times_started.system
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    summary = json.loads(out.getvalue())
    stats = (
        {"requests": in_process.request_count, "refreshes": in_process.refresh_count}
        if in_process is not None
        else server.stats()
    )
    if in_process is not None:
        in_process.close()
    refreshed_rows = OAuthCredential.objects.filter(refresh_count=1).count()

    ideal = n * args.delay / args.concurrency
    print(f"database: {connection.vendor}; setup of {n} credentials: {setup_seconds:.1f} s")
    print(
        f"token server: {'in this process' if in_process else 'own process'}, "
        f"{'keep-alive (HTTP/1.1)' if args.keep_alive else 'a connection per request (HTTP/1.0)'}, "
        f"{args.delay * 1000:.0f} ms per answer; --concurrency {args.concurrency}"
    )
    print(
        f"refreshed {summary['refreshed']}, skipped {summary['skipped']}, "
        f"failed {summary['failed']}; token requests {stats['requests']}; "
        f"rows saved with a new token {refreshed_rows}"
    )
    print(f"wall time: {wall:.2f} s; ideal {n} x {args.delay:g} s / {args.concurrency} = ", end="")
    print(f"{ideal:.2f} s")
    print(f"ratio: {wall / ideal:.2f} (aim: 1.5 or below)")
    # Python runs one thread at a time (the GIL): this process's CPU time is a floor on its wall
    # time, however many threads wait on the network.
    print(
        f"CPU of this process during the run: {cpu:.2f} s = {cpu / n * 1000:.2f} ms per refresh; "
        f"as a ratio to the ideal: {cpu / ideal:.2f} (user {user / n * 1000:.2f} ms, "
        f"system {system / n * 1000:.2f} ms)"
    )
    print(
        f"slowest save of a rotated token: {summary['slowest_save_seconds'] * 1000:.0f} ms, "
        f"{summary['saves_over_bound']} of {n} over the 200 ms bound; "
        f"token server CPU: {stats.get('cpu', 0):.2f} s (own process, from its start); "
        f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    assert summary["refreshed"] == n, summary
    assert summary["failed"] == 0, summary
    assert stats["requests"] == n, "one request per credential, no more"
    assert refreshed_rows == n


if __name__ == "__main__":
    main()
