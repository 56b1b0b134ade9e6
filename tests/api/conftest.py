import pytest
from django.core.cache import cache

from api.models import TokenScope
from api.services import api_token_create
from hosting.models import GitHubConnection

# Real runs in containers (test_github_mentions_e2e.py) use the tasks' Docker settings.
from tests.tasks.conftest import agent_settings, gateway_socket_root  # noqa: F401


@pytest.fixture
def make_token(db):
    def make(owner, *, scope: str = TokenScope.TASKS, days: int | None = 90, name: str = "ci"):
        return api_token_create(owner=owner, name=name, scope=scope, expires_in_days=days)

    return make


@pytest.fixture
def bearer(user, make_token) -> dict[str, str]:
    """Headers of the user's read + tasks token."""
    return {"Authorization": f"Bearer {make_token(user).secret}"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with no request counted against any token."""
    cache.clear()


def github_connect(user, settings) -> None:
    """A pull request is possible: a saved token, and REPO on that GitHub."""
    settings.GITHUB_API_URL = "https://api.github.com"
    GitHubConnection.objects.create(owner=user, token="github_pat_x", login="o")
