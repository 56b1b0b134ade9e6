"""Settings for every environment, read from the process environment and an optional `.env`.

`.env.example` lists every variable with a one-line comment.
"""

import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from common import netpolicy as _netpolicy  # plain Python: parses AGENT_EGRESS_ALLOW below
from common.errors import InputError
from common.headers import header_value_problem

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# The process environment wins over `.env`, so CI and operators can override a local file.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

TESTING = env.bool("DJANGO_TESTING", default=False)  # set by config.settings.test

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys, newest first: the first encrypts, every one decrypts (rotation).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

_HOW_TO_MAKE_KEYS = (
    "Generate them with:\n"
    "  .venv/bin/python -c \"import secrets; print('SECRET_KEY=' + secrets.token_urlsafe(50))\"\n"
    '  .venv/bin/python -c "from cryptography.fernet import Fernet; '
    "print('FIELD_ENCRYPTION_KEYS=' + Fernet.generate_key().decode())\"\n"
    "and put them in the environment or in .env (`make run` writes a fresh .env for you)."
)
if not DEBUG and not TESTING:
    if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "SECRET_KEY is missing or too short; refusing to start without a real one.\n"
            + _HOW_TO_MAKE_KEYS
        )
    if not FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty; refusing to start because tokens could not be "
            "encrypted at rest.\n" + _HOW_TO_MAKE_KEYS
        )
if DEBUG and not SECRET_KEY:
    SECRET_KEY = "django-insecure-local-debug-only"  # DEBUG only, never production

# --- Applications -----------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "django_htmx",
    "django_tasks_db",
    "common",
    "accounts",
    "oauth_tokens",
    "gateway",
    "environments",
    "tasks",
    "hosting",
    "notifications",
    "usage",
    *("ninja", "api"),  # the JSON API (ninja: its docs page's templates and static files)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a logged-in user unless a view opts out with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.site",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # IMMEDIATE takes the write lock at BEGIN: the SQLite form of a row lock, which the
            # single-flight token refresh relies on. WAL lets readers go on meanwhile.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A web worker keeps its connection between requests: a new one reads the whole schema
    # first, which cost more than a task page's poll itself (bench/poll_load_bench.py).
    # `?conn_max_age=0` in DATABASE_URL opts out.
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
# Users are created by an admin or `createsuperuser`; open sign-up only when asked.
ACCOUNTS_ALLOW_SIGNUP = env.bool("ACCOUNTS_ALLOW_SIGNUP", default=False)

from .api import *  # noqa: E402, F403  (JSON API; from the environment .env was loaded into)
from .login import *  # noqa: E402, F403  (login throttling per username and address; the same)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- HTTPS (README "Production" lists the values for a deployment behind TLS) -----------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)


def _proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto: https` -> ("HTTP_X_FORWARDED_PROTO", "https")."""
    if not value.strip():
        return None
    name, sep, expected = value.partition(":")
    if not sep or not name.strip() or not expected.strip():
        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto: https', "
            f"not {value!r}."
        )
    return "HTTP_" + name.strip().upper().replace("-", "_"), expected.strip()


# Only behind a proxy that always sets (and never passes through) this header.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default=""))

# Content-Security-Policy (Django's own middleware): our files only, no inline style at all, and
# inline script only with the per-response nonce (`{% csp_nonce_attr %}` / `{{ csp_nonce }}`).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# --- I18N / static ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' folders too, so `make run` works without collectstatic.
WHITENOISE_USE_FINDERS = True

# --- Claude auth (docs/claude-cli-contract.md#environment-precedence) ---------------------------
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
CLAUDE_USE_OAUTH = env.bool("CLAUDE_USE_OAUTH", default=False)
CLAUDE_ACCESS_TOKEN = env.str("CLAUDE_ACCESS_TOKEN", default="")
CLAUDE_REFRESH_TOKEN = env.str("CLAUDE_REFRESH_TOKEN", default="")
CLAUDE_EXPIRES_AT = env.str("CLAUDE_EXPIRES_AT", default="")
ANTHROPIC_DEBUG = env.bool("ANTHROPIC_DEBUG", default=False)
# Only members of this group may use the global OAuth and ANTHROPIC_API_KEY; empty: everyone.
CLAUDE_GLOBAL_CREDENTIALS_GROUP = env.str("CLAUDE_GLOBAL_CREDENTIALS_GROUP", default="")

# The refresh endpoint is undocumented: every value is a setting (defaults as the CLI sends).
CLAUDE_OAUTH_TOKEN_URL = env.str(
    "CLAUDE_OAUTH_TOKEN_URL", default="https://platform.claude.com/v1/oauth/token"
)
CLAUDE_OAUTH_CLIENT_ID = env.str(
    "CLAUDE_OAUTH_CLIENT_ID", default="9d1c250a-e61b-44d9-88ed-5944d1962f5e"
)
CLAUDE_OAUTH_SCOPE = env.str(
    "CLAUDE_OAUTH_SCOPE",
    default="user:profile user:inference user:sessions:claude_code user:mcp_servers "
    "user:file_upload",
)
CLAUDE_OAUTH_TIMEOUT = env.float("CLAUDE_OAUTH_TIMEOUT", default=10.0)
# The User-Agent of refresh requests. The endpoint's edge refuses some prefixes before reading
# the token (docs/claude-cli-contract.md#token-endpoint-edge, with the date this default was last
# known to work): when refreshes fail with "the token endpoint refused this client", change it.
CLAUDE_OAUTH_USER_AGENT = env.str("CLAUDE_OAUTH_USER_AGENT", default="axios/1.7.9").strip()
if _problem := header_value_problem(CLAUDE_OAUTH_USER_AGENT):
    raise ImproperlyConfigured(
        f"CLAUDE_OAUTH_USER_AGENT cannot be sent as a User-Agent: {_problem}"
    )
CLAUDE_OAUTH_REFRESH_BUFFER = env.int("CLAUDE_OAUTH_REFRESH_BUFFER", default=300)
CLAUDE_OAUTH_MAX_ATTEMPTS = env.int("CLAUDE_OAUTH_MAX_ATTEMPTS", default=4)
CLAUDE_OAUTH_MAX_TOTAL_SECONDS = env.float("CLAUDE_OAUTH_MAX_TOTAL_SECONDS", default=30.0)
# "Refresh now" on the settings page: at most one refresh per credential in this many seconds.
CLAUDE_OAUTH_REFRESH_NOW_COOLDOWN = env.int("CLAUDE_OAUTH_REFRESH_NOW_COOLDOWN", default=30)

# --- Per-task model gateway and egress (gateway/) -------------------------------------------------
# Where the gateway sends the container's model requests, with the real credential added.
ANTHROPIC_API_URL = env.str("ANTHROPIC_API_URL", default="https://api.anthropic.com").rstrip("/")
if not ANTHROPIC_API_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        f"ANTHROPIC_API_URL must be an http(s) URL, not {ANTHROPIC_API_URL!r}"
    )
# Hosts a container may reach through the gateway's proxy (CONNECT / plain HTTP), comma
# separated: github.com (exactly), *.github.com (subdomains), host:port, * (any public host).
# Private, loopback, link-local, CGNAT, metadata and every other special-purpose address
# (common/netpolicy/addresses.py) is refused whatever this says.
AGENT_EGRESS_ALLOW = env.list("AGENT_EGRESS_ALLOW", default=list(_netpolicy.DEFAULT_EGRESS_ALLOW))
try:
    _netpolicy.egress_rules_parse(AGENT_EGRESS_ALLOW)
except InputError as _exc:
    raise ImproperlyConfigured(f"AGENT_EGRESS_ALLOW: {_exc}") from None
# Host folder holding one socket folder per running task (bind-mounted into that task only).
# Must be on the Docker engine's host; keep it short (a Unix socket path has ~100 characters).
AGENT_GATEWAY_SOCKET_ROOT = env.str("AGENT_GATEWAY_SOCKET_ROOT", default="") or str(
    Path(tempfile.gettempdir()) / "claude-runner-gw"
)
# Port the relay inside the container listens on (127.0.0.1:<port> -> the gateway socket).
AGENT_GATEWAY_PORT = env.int("AGENT_GATEWAY_PORT", default=8080)
# What one task's gateway may cost the worker, whatever its container sends: connections served
# at once (more wait their turn), MiB of request bodies held in memory at once (bodies stream;
# this holds small ones whole and copies kept to replay after a 401), and seconds a request head,
# or each next part of a body, may take to arrive.
AGENT_GATEWAY_MAX_CONNECTIONS = env.int("AGENT_GATEWAY_MAX_CONNECTIONS", default=32)
AGENT_GATEWAY_BUFFER_MB = env.int("AGENT_GATEWAY_BUFFER_MB", default=32)
AGENT_GATEWAY_READ_TIMEOUT = env.int("AGENT_GATEWAY_READ_TIMEOUT", default=30)
if min(AGENT_GATEWAY_MAX_CONNECTIONS, AGENT_GATEWAY_BUFFER_MB, AGENT_GATEWAY_READ_TIMEOUT) < 1:
    raise ImproperlyConfigured(
        "AGENT_GATEWAY_MAX_CONNECTIONS, AGENT_GATEWAY_BUFFER_MB and AGENT_GATEWAY_READ_TIMEOUT "
        "must each be 1 or more"
    )
# TESTS ONLY: host:port pairs on loopback a container may reach (refused outside test settings).
AGENT_EGRESS_TEST_ALLOW_LOOPBACK = env.list("AGENT_EGRESS_TEST_ALLOW_LOOPBACK", default=[])
if AGENT_EGRESS_TEST_ALLOW_LOOPBACK and not TESTING:
    raise ImproperlyConfigured(
        "AGENT_EGRESS_TEST_ALLOW_LOOPBACK is for the test suite only: it lets containers reach "
        "this machine's loopback. Remove it from the environment."
    )
try:
    _netpolicy.loopback_allowances_parse(AGENT_EGRESS_TEST_ALLOW_LOOPBACK)
except InputError as _exc:
    raise ImproperlyConfigured(f"AGENT_EGRESS_TEST_ALLOW_LOOPBACK: {_exc}") from None

# --- Background tasks (django.tasks) ------------------------------------------------------------
# "database" (django-tasks-db, `manage.py db_worker`) or "celery" (Celery on Redis).
TASKS_ENGINE = env.str("TASKS_ENGINE", default="database")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="redis://127.0.0.1:6379/1")
# django-tasks-celery reads a task's name, arguments and start/finish times from the result
# (its check django_tasks_celery.W002 asks for this).
CELERY_RESULT_EXTENDED = True
if TASKS_ENGINE == "celery":
    TASKS = {
        "default": {
            "BACKEND": "django_tasks_celery.CeleryBackend",
            "OPTIONS": {"CELERY_APP": "config.celery.app"},
        }
    }
elif TASKS_ENGINE == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
else:
    raise ImproperlyConfigured(f"TASKS_ENGINE must be 'database' or 'celery', not {TASKS_ENGINE!r}")

# --- Logging: one configuration; every handler redacts secrets ----------------------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "common.logging.SecretRedactingFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # ANTHROPIC_DEBUG turns on the detailed OAuth log (still redacted).
        "oauth_tokens": {"level": "DEBUG" if ANTHROPIC_DEBUG else LOG_LEVEL},
        # django-axes greets every process start at INFO (management commands included).
        "axes.apps": {"level": "WARNING"},
    },
}

# --- Agent containers ---------------------------------------------------------------------------
# The image that runs Claude Code (agent/README.md; scripts/build-agent-images.sh builds it).
AGENT_IMAGE = env.str("AGENT_IMAGE", default="claude-runner-agent:2.1.332")
AGENT_TIMEOUT_SECONDS = env.int("AGENT_TIMEOUT_SECONDS", default=30 * 60)
AGENT_MEMORY_LIMIT = env.str("AGENT_MEMORY_LIMIT", default="4g")
AGENT_CPUS = env.float("AGENT_CPUS", default=2.0)
# "none": the task's gateway socket is its only way out (model API and allowed hosts).
# UNSAFE escape hatch: any other Docker network lets the agent reach whatever that network
# reaches, bypassing the gateway's egress rules (README "Security model").
AGENT_NETWORK_MODE = env.str("AGENT_NETWORK_MODE", default="none")
# Most processes (and threads) one agent container may run.
AGENT_PIDS_LIMIT = env.int("AGENT_PIDS_LIMIT", default=512)
# Host uids (each also the gid) the agent containers run as, "first-last": each task gets its
# own, one no account on the host has, and only it may reach its gateway socket. Empty: the
# image's uid 1000 (only for engines that cannot map such uids, e.g. rootless Docker).
AGENT_UID_RANGE = env.str("AGENT_UID_RANGE", default="200000-265535")  # tasks.run.agent_user
# Task worker processes started by `manage.py run_worker` (tasks at once on one host).
AGENT_MAX_CONCURRENT_TASKS = env.int("AGENT_MAX_CONCURRENT_TASKS", default=2)
CELERY_WORKER_CONCURRENCY = AGENT_MAX_CONCURRENT_TASKS
# How often run_worker (and the Celery worker) look for tasks of a dead worker to take over;
# run_worker also does it the moment one of its workers dies.
AGENT_RECOVERY_SWEEP_SECONDS = env.int("AGENT_RECOVERY_SWEEP_SECONDS", default=30)
# With the Docker engine unreachable a task waits (queued) rather than fails: tried again after
# AGENT_ENGINE_RETRY_SECONDS, the delay doubling up to AGENT_ENGINE_RETRY_MAX_SECONDS, and
# failed once it has waited AGENT_ENGINE_MAX_WAIT seconds in all.
AGENT_ENGINE_MAX_WAIT = env.int("AGENT_ENGINE_MAX_WAIT", default=600)
AGENT_ENGINE_RETRY_SECONDS = env.int("AGENT_ENGINE_RETRY_SECONDS", default=5)
AGENT_ENGINE_RETRY_MAX_SECONDS = env.int("AGENT_ENGINE_RETRY_MAX_SECONDS", default=60)
# file:// repositories (bind-mounted read-only): for development and tests only.
AGENT_ALLOW_LOCAL_REPOS = env.bool("AGENT_ALLOW_LOCAL_REPOS", default=False)
# The only folder local repositories may come from (they are mounted into the container).
AGENT_LOCAL_REPOS_ROOT = env.str("AGENT_LOCAL_REPOS_ROOT", default="")
# Extra non-secret environment for every agent container, as JSON, e.g. {"NODE_ENV": "test"}.
# ANTHROPIC_BASE_URL and the *_PROXY variables are always the task's gateway (the entrypoint
# sets them last); the model API is ANTHROPIC_API_URL.
AGENT_EXTRA_ENV = env.json("AGENT_EXTRA_ENV", default={})
# Settings that are gone: turning one on must not silently do nothing.
for _removed in ("AGENT_PASS_TOKEN_ENV", "AGENT_ALLOW_TOKEN_ROTATION"):
    if env.bool(_removed, default=False):
        raise ImproperlyConfigured(
            f"{_removed} is gone: no real token enters a container any more (the task's gateway "
            "adds it on the way out and refreshes it). Remove it from the environment."
        )
AGENT_LOG_MAX_BYTES = env.int("AGENT_LOG_MAX_BYTES", default=256 * 1024)
AGENT_DIFF_MAX_BYTES = env.int("AGENT_DIFF_MAX_BYTES", default=2 * 1024 * 1024)
AGENT_PROMPT_MAX_CHARS = env.int("AGENT_PROMPT_MAX_CHARS", default=100_000)
# Usage limits (tasks/waits/usage_limit.py): a limited task waits for the reset and runs again by
# itself, for at most this many seconds of waiting in all (past it, it fails and says so).
AGENT_LIMIT_MAX_WAIT = env.int("AGENT_LIMIT_MAX_WAIT", default=24 * 3600)
# Up to this many seconds are added to a reset time, so waiting tasks do not all start at once.
AGENT_LIMIT_JITTER_SECONDS = env.int("AGENT_LIMIT_JITTER_SECONDS", default=120)
from .follow_ups import *  # noqa: E402, F403  (transcripts kept, messages to a running agent)

# --- Notifications (notifications/) -------------------------------------------------------------
from .notifications import *  # noqa: E402, F403 (in their own module, read here)

# Per-user limits, checked when a task is submitted (an admin can set other numbers for one
# user under User preferences): tasks running at once, and tasks waiting for a worker.
AGENT_MAX_RUNNING_TASKS_PER_USER = env.int("AGENT_MAX_RUNNING_TASKS_PER_USER", default=2)
AGENT_MAX_QUEUED_TASKS_PER_USER = env.int("AGENT_MAX_QUEUED_TASKS_PER_USER", default=5)

# --- Git hosting (hosting/): clone and push on the worker, pull requests -------------------------
# GitHub's REST API; for GitHub Enterprise Server https://<host>/api/v3 (repositories on <host>).
GITHUB_API_URL = env.str("GITHUB_API_URL", default="https://api.github.com").rstrip("/")
# Seconds for one GitHub API call.
GITHUB_API_TIMEOUT = env.float("GITHUB_API_TIMEOUT", default=15.0)
# The settings page's live check of a token: seconds per GitHub call (to connect, and to start
# answering), and checks per user per minute (one at a time).
GITHUB_CHECK_TIMEOUT = env.float("GITHUB_CHECK_TIMEOUT", default=5.0)
GITHUB_CHECKS_PER_MINUTE = env.int("GITHUB_CHECKS_PER_MINUTE", default=10)
# CA bundle for git over https and the GitHub API (a private CA): set, it alone is trusted;
# empty = the system's CAs.
HOSTING_CA_BUNDLE = env.str("HOSTING_CA_BUNDLE", default="")
# Longest a clone or a push on the worker may take, in seconds.
HOSTING_GIT_TIMEOUT_SECONDS = env.int("HOSTING_GIT_TIMEOUT_SECONDS", default=600)
# This server's public address, for the link to the task in a pull request's description.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Largest git bundle of a task's commits read back from the container, in bytes.
AGENT_BUNDLE_MAX_BYTES = env.int("AGENT_BUNDLE_MAX_BYTES", default=50 * 1024 * 1024)
# What a bundle may hold to be pushed (checked before git unpacks it): objects, bytes of one
# object once inflated (GitHub refuses files over 100 MiB), and of all of them.
HOSTING_BUNDLE_MAX_OBJECTS = env.int("HOSTING_BUNDLE_MAX_OBJECTS", default=100_000)
HOSTING_BUNDLE_MAX_OBJECT_BYTES = env.int("HOSTING_BUNDLE_MAX_OBJECT_BYTES", default=100 * 2**20)
HOSTING_BUNDLE_MAX_TOTAL_BYTES = env.int("HOSTING_BUNDLE_MAX_TOTAL_BYTES", default=512 * 2**20)
# Longest git may take to check and unpack a bundle on the worker, in seconds.
HOSTING_BUNDLE_TIMEOUT_SECONDS = env.float("HOSTING_BUNDLE_TIMEOUT_SECONDS", default=120.0)
from .environments import *  # noqa: E402, F403 (the settings of environments/, in their module)
