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


wsgi_app = "config.wsgi:application"
workers = workers_for(os.cpu_count(), env.str("WEB_WORKERS", default=""))
bind = f"{env.str('HOST', default='127.0.0.1')}:{env.int('PORT', default=8000)}"
# Task pages poll every 2 s and admin pages can be slow on a big table: generous, not endless.
timeout = 60
graceful_timeout = 20
accesslog = "-"
# gunicorn's control socket (`gunicornc`) is not used; one in $HOME would be shared by every
# instance this user runs (tests start several).
control_socket_disable = True
