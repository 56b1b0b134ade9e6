#!/usr/bin/env bash
# `make run`: set up and run the app on SQLite: gunicorn (static files through whitenoise) + the
# task worker; Ctrl-C stops both. `make dev` (scripts/dev.sh) shares the setup below.
# Sourcing this file only defines the functions (tests call them in a temporary folder).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=$root/.venv/bin/python

# .env holds SECRET_KEY and FIELD_ENCRYPTION_KEYS: this user's alone (0600), from the first byte.
# (In the current folder: main runs from the repository root.)
env_file_ensure() {
  if [ ! -f .env ]; then
    (
      umask 077
      # Fresh secrets for this machine only; .env is git-ignored.
      {
        echo "# Written by make run on $(date -u +%FT%TZ). See .env.example for every variable."
        echo "SECRET_KEY=$($py -c 'import secrets; print(secrets.token_urlsafe(50))')"
        echo "FIELD_ENCRYPTION_KEYS=$($py -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        echo "DJANGO_DEBUG=false"
        echo "DATABASE_URL=sqlite:///db.sqlite3"
      } > .env
    )
    echo "Wrote .env with fresh secrets."
  fi
  chmod 600 .env
}

# The SQLite database file (empty on PostgreSQL), as the settings resolve DATABASE_URL.
sqlite_database_path() {
  PYTHONPATH=$root DJANGO_SETTINGS_MODULE=config.settings.base $py -c '
import django; django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(db["NAME"] if db["ENGINE"] == "django.db.backends.sqlite3" else "")'
}

# The database holds session keys and encrypted tokens: owner-only, like .env. A new SQLite file
# (and its -wal/-shm, which SQLite creates with the database's mode) is born 0600 under umask 077;
# one left by an older version is made 0600 before and after.
database_migrate_private() {
  local db
  db=$(sqlite_database_path)
  sqlite_files_private "$db"
  (umask 077 && $py "$root/manage.py" migrate --noinput)
  sqlite_files_private "$db"
}

sqlite_files_private() {
  local f
  [ -n "$1" ] || return 0
  for f in "$1" "$1-wal" "$1-shm" "$1-journal"; do
    if [ -e "$f" ]; then chmod 600 "$f"; fi
  done
}

# Everything before serving: venv, .env, database, static files, admin account, agent image.
app_setup() {
  scripts/venv.sh requirements.txt
  env_file_ensure
  database_migrate_private
  $py manage.py collectstatic --noinput -v0
  $py manage.py admin_bootstrap

  # Tasks need a Docker engine and the agent image. Use the machine's engine if one answers;
  # else, as root, start the project's own. Agents get no network either way: the task's
  # gateway (a socket mounted into its container) is their only way out (README, "Security
  # model"), so the worker must run on the engine's host, as it does here.
  docker_ok() { $py -c 'import docker; docker.from_env().ping()' >/dev/null 2>&1; }
  if ! docker_ok && [ "$(id -u)" = 0 ] && scripts/docker-engine.sh start >/dev/null; then
    eval "$(scripts/docker-engine.sh env)"
  fi
  if docker_ok; then
    local image
    image=$(DJANGO_SETTINGS_MODULE=config.settings.base $py -c 'import django; django.setup(); from django.conf import settings; print(settings.AGENT_IMAGE)' 2>/dev/null || echo claude-runner-agent:2.1.332)
    if ! $py -c "import docker, sys; docker.from_env().images.get(sys.argv[1])" "$image" >/dev/null 2>&1; then
      echo "Building the agent image $image offline (about a minute the first time)..."
      scripts/build-agent-images.sh cli || echo "Could not build $image: tasks will fail until it exists."
    fi
  else
    echo "No Docker engine: pages work, tasks fail until one runs (as root: scripts/docker-engine.sh start)."
  fi
}

# Runs the given web server command and the task worker; stops both when either ends.
serve_with_worker() {
  pids=()
  stop() {
    trap - EXIT INT TERM
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  }
  trap stop EXIT INT TERM
  "$@" & pids+=($!)
  $py manage.py run_worker & pids+=($!)
  # Stop everything as soon as either process ends.
  wait -n "${pids[@]}"
}

main() {
  cd "$root"
  app_setup
  local bind workers
  read -r bind workers < <($py -c 'import runpy; c = runpy.run_path("config/gunicorn.py"); print(c["bind"], c["workers"])')
  echo "App on http://$bind/ (gunicorn, $workers workers; task worker running). Ctrl-C stops both."
  serve_with_worker $py -m gunicorn -c config/gunicorn.py
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
