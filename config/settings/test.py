"""Fast, isolated settings for the test suite (DATABASE_URL still picks SQLite or PostgreSQL)."""

import hashlib
import os
import tempfile

# Tell base.py these are test settings (also in worker processes started by tests).
os.environ["DJANGO_TESTING"] = "1"

from .base import *  # noqa: F403
from .base import BASE_DIR, DATABASES

# Per checkout and test run: the key names the installation that owns containers, so two
# checkouts (or two runs in one checkout) testing on one engine never clean up each other's
# containers. Worker processes a test starts inherit the run's id through the environment. Each
# pytest-xdist worker is an installation of its own: it inherits the run's id from the process
# that started it, and one worker's recovery sweep must never take another's containers.
_TEST_RUN = os.environ.setdefault("CLAUDE_RUNNER_TEST_RUN", str(os.getpid()))
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_CHECKOUT = hashlib.sha256(f"{BASE_DIR}:{_TEST_RUN}:{_XDIST_WORKER}".encode()).hexdigest()[:32]
SECRET_KEY = f"test-secret-key-not-for-production-{_CHECKOUT}"
# Two fixed test keys: the first encrypts, both decrypt.
FIELD_ENCRYPTION_KEYS = [
    "0Ti0e5cTsHfCx2hKWRwcQtEbULg8bxxdlgH_cd7tiak=",
    "R0ZcYkGJ6j-Wz2R4QYjSQZpjbCxbsvVXVN8HMNTaiAg=",
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests run tasks inline; worker processes started by a test set TEST_REAL_TASKS=1 and keep
# the backend that TASKS_ENGINE picks (database or celery).
if not os.environ.get("TEST_REAL_TASKS"):
    TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
# Never reach the real endpoint from a test: tests point this at a loopback fake.
CLAUDE_OAUTH_TOKEN_URL = os.environ.get("TEST_TOKEN_URL", "http://127.0.0.1:9/v1/oauth/token")
ANTHROPIC_API_KEY = ""
CLAUDE_USE_OAUTH = False
CLAUDE_ACCESS_TOKEN = ""
CLAUDE_REFRESH_TOKEN = ""
CLAUDE_EXPIRES_AT = ""
# One test database per test run (pid), so parallel runs on one machine never share one.
_RUN = os.getpid()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so threads and processes share one database in locking tests.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"claude-runner-test-{_RUN}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_RUN}"}
# Never reach GitHub from a test: tests point this at the loopback fake (tests/fakes/github_api.py).
GITHUB_API_URL = os.environ.get("TEST_GITHUB_API_URL", "http://127.0.0.1:9")
# Celery tests of several checkouts (or runs) may share one Redis database: each run's jobs go to
# a queue of its own, which only its own workers (started with these settings) consume.
CELERY_TASK_DEFAULT_QUEUE = f"celery-{_CHECKOUT}"
# Every test client builds the middleware anew, and whitenoise would list and stat every static
# file each time (about 30 ms, some 15% of the suite's CPU): look a file up when it is asked for,
# as DEBUG does. tests/deploy checks the production way (the list built once, at start).
WHITENOISE_AUTOREFRESH = True
