"""Shared start-up for benchmarks: Django on a throwaway database (or DATABASE_URL if given)."""

import inspect
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The real credential the gateway benches' fake API accepts (and the gateway puts in).
BENCH_API_TOKEN = "sk-ant-oat01-bench-real-token"


def docker_host_default() -> None:
    """DOCKER_HOST for the project's own engine (scripts/docker-engine.sh), unless one is set."""
    if "DOCKER_HOST" not in os.environ:
        out = subprocess.run(
            [str(ROOT / "scripts/docker-engine.sh"), "env"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        os.environ["DOCKER_HOST"] = out.split("=", 1)[1].strip()


def root_and_args(args: list[str]) -> tuple[Path, list[str]]:
    """The checkout a bench measures (``--root CHECKOUT`` first, else this one) and the rest of
    its arguments."""
    if args[:1] == ["--root"]:
        return Path(args[1]).resolve(), args[2:]
    return ROOT, args


def django_setup(*, root: Path = ROOT) -> None:
    """Django of the checkout at ``root`` (this one unless a bench compares another)."""
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    if "BENCH_DATABASE_URL" in os.environ:
        os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    else:
        path = Path(tempfile.mkdtemp(prefix="bench-")) / "bench.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    # Only once the settings module and the database above are chosen.
    import django

    django.setup()
    # Commands load the apps: after django.setup().
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_credentials_create(
    *, start: int, stop: int, extra: Callable[[int, Any, datetime], dict[str, Any]]
) -> list[Any]:
    """Users bench{start..stop-1}, each with a refreshable OAuth credential; `extra(i, user,
    now)` gives the fields that differ between benchmarks (expiry, status, refresh token...)."""
    # Models load only after django_setup(), which each benchmark calls first.
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from oauth_tokens.models import OAuthCredential

    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"bench{i:06d}") for i in range(start, stop)], batch_size=2000
    )
    now = timezone.now()
    return OAuthCredential.objects.bulk_create(
        [
            OAuthCredential(
                owner=user,
                kind="refreshable",
                source="user",
                access_token="sk-ant-oat01-bench-access",
                **{"refresh_token": "sk-ant-ort01-bench-refresh", **extra(i, user, now)},
            )
            for i, user in enumerate(users, start=start)
        ],
        batch_size=2000,
    )


class FixedProvider:
    """The gateway's credential provider with one fixed token and no refresh: the benches
    measure the relay, not refreshing."""

    def __init__(self, token: str) -> None:
        self.token = token

    def cached(self) -> str | None:
        return self.token

    def current(self) -> str:
        return self.token

    def refresh_after_401(self, rejected: str) -> str | None:
        return None


def gateway_of_checkout(*, api_port: int, folder: Path) -> tuple[Any, str]:
    """(a TaskGateway, its placeholder) of the checkout Django was set up from, built with its
    constructor as that commit has it, relaying to the fake API on ``api_port``."""
    # After django_setup(): the checkout is chosen by then, and the gateway reads its settings.
    from gateway import runtime

    try:
        # The same reason: the checkout's own rules.
        from common.netpolicy import EgressPolicy
    except ImportError:
        # An older checkout, whose rules lived in the gateway.
        from gateway.egress import EgressPolicy

    placeholder = runtime.placeholder_new()
    kwargs: dict[str, Any] = {
        "socket_path": folder / "gateway.sock",
        "auth": runtime.UpstreamAuth("oauth"),
        "provider": FixedProvider(BENCH_API_TOKEN),
        "placeholder": placeholder,
        "on_log": print,
    }
    api_url, egress = f"http://127.0.0.1:{api_port}", EgressPolicy(rules=())
    if "setup" in inspect.signature(runtime.TaskGateway).parameters:
        kwargs["setup"] = runtime.GatewaySetup(api_url=api_url, egress=egress)
    else:
        kwargs.update(api_url=api_url, egress=egress)
    return runtime.TaskGateway(**kwargs), placeholder


def fake_api_serve(conn: Any, events: int, delay: float) -> None:
    """The gateway benches' fake Anthropic API, in a child process of its own (so it never
    shares the measured one): answers of ``events`` text events ``delay`` s apart (about 80 B
    each); sends its port on ``conn``, serves until ``conn`` says stop."""
    # Always this checkout's fake API, also when a bench measures another checkout's gateway.
    sys.path.insert(0, str(ROOT))
    # Loaded in the child only: the measured process never imports the fake.
    from tests.fakes.anthropic_api import FakeAnthropicAPI

    with FakeAnthropicAPI(valid_credentials={BENCH_API_TOKEN}) as api:
        api.text_deltas = events
        api.event_delay_seconds = delay
        api.final_text = "".join(f"word{n:05d} " * 8 for n in range(events))
        conn.send(api.port)
        conn.recv()


def streamed_message_body() -> bytes:
    """The JSON body of a small streamed /v1/messages request."""
    return json.dumps(
        {
            "model": "claude-fake-1",
            "max_tokens": 1000,
            "stream": True,
            "messages": [{"role": "user", "content": "stream please"}],
        }
    ).encode()


def streamed_message_request(auth: str) -> bytes:
    """A small streamed /v1/messages request with ``auth`` as its bearer credential, on a
    connection that closes after the answer."""
    body = streamed_message_body()
    return (
        f"POST /v1/messages?beta=true HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {auth}\r\nanthropic-beta: oauth-2025-04-20\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
