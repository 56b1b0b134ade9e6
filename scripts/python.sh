#!/usr/bin/env bash
# Prints a Python 3.12+ interpreter: python3.13/3.12 on PATH, else a pyenv install.
set -euo pipefail
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
for candidate in python3.13 python3.12 python3; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if ok "$path"; then echo "$path"; exit 0; fi
done
for path in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
  if [ -x "$path" ] && ok "$path"; then echo "$path"; exit 0; fi
done
echo "No Python 3.12 or newer found. Install python3.12 (or pyenv install 3.12) and try again." >&2
exit 1
