#!/usr/bin/env bash
# `make dev`: the same setup as `make run`, then Django's runserver (auto-reload, DJANGO_DEBUG=true)
# and the task worker. For development only: production is `make run` (gunicorn).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/run.sh
app_setup
export DJANGO_DEBUG=true
host=${HOST:-127.0.0.1}
port=${PORT:-8000}
echo "Development server on http://$host:$port/ (debug on; task worker running). Ctrl-C stops both."
serve_with_worker $py manage.py runserver "$host:$port"
