"""gunicorn's configuration for `make run` (scripts/run.sh): `gunicorn -c config/gunicorn.py`.

Reads WEB_WORKERS, HOST and PORT from the environment or `.env`, like the Django settings.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
MAX_AUTO_WORKERS = 8  # more rarely helps one machine and costs memory per process

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)


def workers_for(cores: int | None, setting: str = "") -> int:
    """WEB_WORKERS if set, else gunicorn's usual 2 x cores + 1, capped."""
    if setting.strip():
        value = int(setting)
        if value < 1:
            raise ValueError(f"WEB_WORKERS must be 1 or more, not {value}")
        return value
    return min(2 * (cores or 1) + 1, MAX_AUTO_WORKERS)


def app_for(worker_class: str) -> str:
    """The application a worker class serves: ASGI for gunicorn's asgi worker, else WSGI."""
    if worker_class not in ("sync", "asgi"):
        raise ValueError(f"WEB_WORKER_CLASS must be sync or asgi, not {worker_class!r}")
    return "config.asgi:application" if worker_class == "asgi" else "config.wsgi:application"


# asgi: a waiting API client (GET /api/tasks/ID?wait=30) holds a coroutine instead of a whole
# worker process; sync: every request holds its process until it is answered.
worker_class = env.str("WEB_WORKER_CLASS", default="sync")
wsgi_app = app_for(worker_class)
workers = workers_for(os.cpu_count(), env.str("WEB_WORKERS", default=""))
bind = f"{env.str('HOST', default='127.0.0.1')}:{env.int('PORT', default=8000)}"
# Task pages poll every 2 s and admin pages can be slow on a big table: generous, not endless.
timeout = 60
graceful_timeout = 20
accesslog = "-"
# gunicorn's control socket (`gunicornc`) is not used; one in $HOME would be shared by every
# instance this user runs (tests start several).
control_socket_disable = True
