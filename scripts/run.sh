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

# Tasks need a Docker engine and the agent image. Use the machine's engine if one answers;
# else, as root, start the project's own (it has no bridge network, so agents use the host's).
docker_ok() { $py -c 'import docker; docker.from_env().ping()' >/dev/null 2>&1; }
if ! docker_ok && [ "$(id -u)" = 0 ] && scripts/docker-engine.sh start >/dev/null; then
  eval "$(scripts/docker-engine.sh env)"
  export AGENT_NETWORK_MODE=${AGENT_NETWORK_MODE:-host}
fi
if docker_ok; then
  image=$(DJANGO_SETTINGS_MODULE=config.settings.base $py -c 'import django; django.setup(); from django.conf import settings; print(settings.AGENT_IMAGE)' 2>/dev/null || echo claude-runner-agent:2.1.332)
  if ! $py -c "import docker, sys; docker.from_env().images.get(sys.argv[1])" "$image" >/dev/null 2>&1; then
    echo "Building the agent image $image offline (about a minute the first time)..."
    scripts/build-agent-images.sh cli || echo "Could not build $image: tasks will fail until it exists."
  fi
else
  echo "No Docker engine: pages work, tasks fail until one runs (as root: scripts/docker-engine.sh start)."
fi

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
