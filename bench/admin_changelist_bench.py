"""The credentials admin with 10,000 credentials as a ratio to the same pages with 100.

Times the changelist (first page, and filtered by current status and expiry window) and the
token health dashboard, and counts their queries, which must not grow with the credentials.
Run: .venv/bin/python bench/admin_changelist_bench.py [SMALL] [LARGE]
     BENCH_DATABASE_URL=postgres://... picks PostgreSQL (the database must exist and be empty).
"""

import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from _setup import ROOT, bench_credentials_create, django_setup

django_setup()
sys.path.insert(0, str(ROOT))

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from oauth_tokens.models import CredentialStatus  # noqa: E402

ROUNDS = 15


def credentials_add(start: int, stop: int) -> None:
    """Credentials spread over every status and the next 9 days, as in a real deployment."""
    statuses = list(CredentialStatus.values)
    bench_credentials_create(
        start=start,
        stop=stop,
        extra=lambda i, user, now: {
            "expires_at": now + timedelta(minutes=(i * 37) % (9 * 24 * 60) - 60),
            "status": statuses[i % len(statuses)],
            "consecutive_failures": i % 3,
            "last_refresh_error": "OAuth token endpoint failed: HTTP 503" if i % 3 else "",
        },
    )


def measure(client: Client, url: str) -> tuple[float, int]:
    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    # An execute wrapper, not CaptureQueriesContext: each request start clears queries_log.
    with connection.execute_wrapper(count):
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        client.get(url)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), len(queries)


def main() -> None:
    small = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    large = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    setup_test_environment()  # lets the test client in (ALLOWED_HOSTS)
    admin = get_user_model().objects.create_superuser("bench-admin", "a@example.com", "pw")
    client = Client()
    client.force_login(admin)
    changelist = reverse("admin:oauth_tokens_oauthcredential_changelist")
    pages = {
        "changelist": changelist,
        "changelist, filtered": f"{changelist}?status=expired&expires=7d",
        "dashboard": reverse("admin:oauth_tokens_oauthcredential_dashboard"),
    }

    credentials_add(0, small)
    at_small = {name: measure(client, url) for name, url in pages.items()}
    credentials_add(small, large)
    at_large = {name: measure(client, url) for name, url in pages.items()}

    print(f"database: {connection.vendor}; median of {ROUNDS} requests each")
    for name in pages:
        (t_small, q_small), (t_large, q_large) = at_small[name], at_large[name]
        print(
            f"{name:22s} {small:>6} creds: {t_small * 1000:7.1f} ms, {q_small} queries | "
            f"{large:>6} creds: {t_large * 1000:7.1f} ms, {q_large} queries | "
            f"ratio {t_large / t_small:.2f}"
        )
        assert q_small == q_large, "the number of queries must not grow with the credentials"


if __name__ == "__main__":
    main()
