#!/usr/bin/env bash
# `make test`: the whole suite. DATABASE_URL picks the database (default SQLite).
# Sourcing this file only defines the functions (tests call them).
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMIUM_INSTALL="apt-get install -y --no-install-recommends chromium"

# The browser tests drive Debian's Chromium. Missing: as root, install it the way the Docker tests
# install docker.io (apt); otherwise say in one line how, so a skipped browser test is no surprise.
chromium_ensure() {
  [ -x "$CHROMIUM" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Chromium for the browser tests ($CHROMIUM_INSTALL)" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      && DEBIAN_FRONTEND=noninteractive $CHROMIUM_INSTALL -qq >/dev/null && [ -x "$CHROMIUM" ]; then
      return 0
    fi
    echo "test: could not install Chromium; browser tests will be skipped." >&2
    return 0
  fi
  echo "test: Chromium is missing, browser tests will be skipped; install it as root: $CHROMIUM_INSTALL" >&2
}

main() {
  cd "$(dirname "$0")/.."
  scripts/venv.sh requirements-dev.txt
  chromium_ensure
  mkdir -p test-output
  # Bytecode caches on: every worker otherwise compiles the app and re-rewrites the asserts
  # of every test module (about 6 s of CPU per worker per run); __pycache__ is git-ignored.
  unset PYTHONDONTWRITEBYTECODE
  set +e
  # Processes in parallel (pytest-xdist): most of a test's time is waiting on a container, a
  # browser or a server, so more workers than cores pays. TEST_WORKERS=0 runs in this process.
  .venv/bin/pytest -n "${TEST_WORKERS:-4}" --dist loadgroup "$@"
  status=$?
  set -e
  # pytest's 5 means "no tests collected": an empty run is a failure here, say it plainly.
  if [ "$status" -eq 5 ]; then echo "No tests were collected." >&2; fi
  exit "$status"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
