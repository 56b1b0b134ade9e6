"""Where the gateway's time to the first streamed event goes, stage by stage.

One client (its own process, as the CLI runs in a container) makes requests one at a time, each
on a fresh connection, a pause apart, alternately straight to the fake Anthropic API (its own
process: the baseline, in the same run) and through a real TaskGateway on its Unix socket. The
client stamps when it starts, when its connection is open, the first event and the end; the
gateway's upstream client (aiohttp, the same library in every checkout) stamps the stages of its
request through aiohttp's public tracing hooks. Both read CLOCK_MONOTONIC (time.perf_counter on
Linux), which every process shares, so the stamps line up. Printed: the median of each stage,
the gateway's TTFB overhead against direct, and the time after the first event.

The stages before "upstream request starts" are the gateway's own (accept, framing the head and
the body, the credential, the upstream headers); the API's share is "API answers"; the relay's is
"first event reaches the client".
Run: .venv/bin/python bench/gateway_stages_bench.py [--root CHECKOUT] [REQUESTS] [PAUSE_MS]
     (defaults 300 5). --root measures another checkout's gateway with this file's fake API
     and client: run it alternately with and without, and compare the stages.
"""

import asyncio
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _setup import (
    BENCH_API_TOKEN,
    django_setup,
    fake_api_serve,
    gateway_of_checkout,
    root_and_args,
    streamed_message_request,
)

WARM_UP = 20  # requests of each path left out of the figures
TRACED = (
    "request_start",
    "connection_create_start",
    "connection_create_end",
    "request_headers_sent",
    "request_end",
)
STAMPS: dict[str, list[float]] = {name: [] for name in TRACED}


def _client(conn: Connection, api_port: int, socket_path: str, auth: str, count: int) -> None:
    """(start, open, first event, end) of each request, direct and through the gateway."""

    async def one(direct: bool, request: bytes) -> tuple[float, float, float, float]:
        started = time.perf_counter()
        if direct:
            reader, writer = await asyncio.open_connection("127.0.0.1", api_port)
        else:
            reader, writer = await asyncio.open_unix_connection(socket_path)
        opened = time.perf_counter()
        writer.write(request)
        await reader.readuntil(b"event:")
        first = time.perf_counter()
        await reader.read()  # both close after the answer (Connection: close)
        ended = time.perf_counter()
        writer.close()
        return started, opened, first, ended

    async def run() -> dict[str, list[tuple[float, float, float, float]]]:
        got: dict[str, list[tuple[float, float, float, float]]] = {"direct": [], "gateway": []}
        requests = {
            "direct": streamed_message_request(BENCH_API_TOKEN),
            "gateway": streamed_message_request(auth),
        }
        pause = conn.recv()
        for _ in range(count + WARM_UP):
            for path in ("direct", "gateway"):
                got[path].append(await one(path == "direct", requests[path]))
                await asyncio.sleep(pause)
        return got

    conn.send(asyncio.run(run()))


def _trace_every_session() -> None:
    """Every aiohttp ClientSession made from now on stamps its requests' stages."""
    # aiohttp is the checkout's dependency: loaded once Django (and the path) are set up.
    import aiohttp

    def stamper(name: str) -> Any:
        async def stamp(_session: object, _context: SimpleNamespace, _params: object) -> None:
            STAMPS[name].append(time.perf_counter())

        return stamp

    trace = aiohttp.TraceConfig()
    for name in TRACED:
        getattr(trace, f"on_{name}").append(stamper(name))
    made = aiohttp.ClientSession.__init__

    def with_trace(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        kwargs["trace_configs"] = [*(kwargs.get("trace_configs") or []), trace]
        made(self, *args, **kwargs)

    aiohttp.ClientSession.__init__ = with_trace  # type: ignore[method-assign]


def gaps(earlier: list[float], later: list[float]) -> list[float]:
    """The time between each request's two stamps."""
    return [b - a for a, b in zip(earlier, later, strict=True)]


def median_us(values: list[float]) -> float:
    return statistics.median(values) * 1e6


def main() -> None:
    root, args = root_and_args(sys.argv[1:])
    count = int(args[0]) if args else 300
    pause = float(args[1]) / 1000 if len(args) > 1 else 0.005
    django_setup(root=root)
    _trace_every_session()
    # The checkout's gateway, now first on the path.
    import gateway

    api_end, api_child = multiprocessing.Pipe()
    api = multiprocessing.Process(target=fake_api_serve, args=(api_child, 5, 0.002), daemon=True)
    api.start()
    api_port = api_end.recv()
    folder = Path(tempfile.mkdtemp(prefix="gws-", dir="/tmp"))
    task_gateway, placeholder = gateway_of_checkout(api_port=api_port, folder=folder)
    task_gateway.start()
    to_client, client_end = multiprocessing.Pipe()
    args_ = (client_end, api_port, str(task_gateway.socket_path), placeholder, count)
    client = multiprocessing.Process(target=_client, args=args_, daemon=True)
    try:
        client.start()
        to_client.send(pause)
        got = to_client.recv()
        client.join(10)
    finally:
        task_gateway.stop()
        api_end.send("stop")
        api.join(5)
        shutil.rmtree(folder, ignore_errors=True)
    assert all(len(STAMPS[name]) == count + WARM_UP for name in TRACED), {
        name: len(v) for name, v in STAMPS.items()
    }
    direct, through = got["direct"][WARM_UP:], got["gateway"][WARM_UP:]
    stamp = {name: STAMPS[name][WARM_UP:] for name in TRACED}
    opened = [o for _, o, _, _ in through]
    first = [f for _, _, f, _ in through]
    stages = [
        ("client's connection opens", gaps([s for s, _, _, _ in through], opened)),
        ("gateway: accept, frame, body, credential", gaps(opened, stamp["request_start"])),
        (
            "upstream request starts -> connecting",
            gaps(stamp["request_start"], stamp["connection_create_start"]),
        ),
        (
            "upstream connect",
            gaps(stamp["connection_create_start"], stamp["connection_create_end"]),
        ),
        ("request head sent", gaps(stamp["connection_create_end"], stamp["request_headers_sent"])),
        ("API answers (its head)", gaps(stamp["request_headers_sent"], stamp["request_end"])),
        ("first event reaches the client", gaps(stamp["request_end"], first)),
    ]
    print(f"gateway of {Path(gateway.__file__).parent.parent}")
    print(f"{count} requests each way, {pause * 1000:g} ms apart; medians in us")
    for name, values in stages:
        print(f"  {name:<42} {median_us(values):8.1f}")
    ttfb = median_us([f - s for s, _, f, _ in through])
    base = median_us([f - s for s, _, f, _ in direct])
    after = median_us([e - f for _, _, f, e in through])
    base_after = median_us([e - f for _, _, f, e in direct])
    print(f"  {'TTFB through the gateway':<42} {ttfb:8.1f}  (direct {base:.1f})")
    print(
        f"TTFB overhead: {ttfb - base:+.1f} us; after the first event: {after - base_after:+.1f} us"
    )


if __name__ == "__main__":
    main()
