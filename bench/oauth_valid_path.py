"""Valid-token path (no refresh due): time per call as a ratio to one plain primary-key read.

Also checks the path makes no network call and at most two queries.
Run: .venv/bin/python bench/oauth_valid_path.py [N]
"""

import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from _setup import ROOT, django_setup

django_setup()
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from oauth_tokens.models import OAuthCredential  # noqa: E402
from oauth_tokens.services import credential_ensure_fresh  # noqa: E402
from tests.fakes.token_server import FakeTokenServer  # noqa: E402


def timed(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with FakeTokenServer() as server:
        settings.CLAUDE_OAUTH_TOKEN_URL = server.url
        user = get_user_model().objects.create_user("bench")
        credential = OAuthCredential.objects.create(
            owner=user,
            kind="refreshable",
            source="user",
            access_token="sk-ant-oat01-bench-access",
            refresh_token=server.issue(),
            expires_at=timezone.now() + timedelta(hours=8),
            scopes=["user:inference"],
        )
        pk = credential.pk
        with CaptureQueriesContext(connection) as queries:
            result = credential_ensure_fresh(credential_id=pk)
        assert result.ok
        assert not result.refreshed
        assert server.request_count == 0, "the valid path must not call the token endpoint"
        assert len(queries) <= 2, f"{len(queries)} queries"

        plain = timed(lambda: OAuthCredential.objects.get(pk=pk), n)
        valid = timed(lambda: credential_ensure_fresh(credential_id=pk), n)
        assert server.request_count == 0
    print(f"database: {connection.vendor}; calls: {n} x 5 rounds (median)")
    print(f"queries on the valid path: {len(queries)}; token endpoint requests: 0")
    print(f"plain pk read:        {plain * 1e6:8.1f} us/call (baseline)")
    print(f"valid-token path:     {valid * 1e6:8.1f} us/call")
    print(f"ratio: {valid / plain:.2f}x the plain read")


if __name__ == "__main__":
    main()
