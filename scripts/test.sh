#!/usr/bin/env bash
# `make test`: the whole suite. DATABASE_URL picks the database (default SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh requirements-dev.txt
mkdir -p test-output
set +e
.venv/bin/pytest "$@"
status=$?
set -e
# pytest's 5 means "no tests collected": an empty run is a failure here, say it plainly.
if [ "$status" -eq 5 ]; then echo "No tests were collected." >&2; fi
exit "$status"
