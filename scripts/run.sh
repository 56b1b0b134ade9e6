#!/usr/bin/env bash
# `make run`: set up and run the app on SQLite: web server + task worker; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh requirements.txt
py=.venv/bin/python

if [ ! -f .env ]; then
  # Fresh secrets for this machine only; .env is git-ignored.
  {
    echo "# Written by make run on $(date -u +%FT%TZ). See .env.example for every variable."
    echo "SECRET_KEY=$($py -c 'import secrets; print(secrets.token_urlsafe(50))')"
    echo "FIELD_ENCRYPTION_KEYS=$($py -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
    echo "DJANGO_DEBUG=false"
    echo "DATABASE_URL=sqlite:///db.sqlite3"
  } > .env
  chmod 600 .env
  echo "Wrote .env with fresh secrets."
fi

$py manage.py migrate --noinput
$py manage.py collectstatic --noinput -v0
$py manage.py admin_bootstrap

host=${HOST:-127.0.0.1}
port=${PORT:-8000}
pids=()
stop() {
  trap - EXIT INT TERM
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM
$py manage.py runserver --noreload "$host:$port" & pids+=($!)
$py manage.py run_worker & pids+=($!)
echo "App on http://$host:$port/ (worker running). Ctrl-C stops both."
# Stop everything as soon as either process ends.
wait -n "${pids[@]}"
