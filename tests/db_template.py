"""A migrated SQLite test database kept as a template, so each pytest-xdist worker copies it
instead of walking every migration again (about 2 s of CPU per worker per run).

The template's name carries a hash of everything that decides its content: the project's
migration files, the pinned requirements (third-party migrations) and the installed apps. Any
change gives a new name, so a stale template is never used. A file lock lets one worker build
it while the others wait, then copy it."""

import fcntl
import hashlib
import os
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "claude-runner-test-template-"


def template_key() -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update("\n".join(settings.INSTALLED_APPS).encode())
    for path in [*sorted(ROOT.glob("*/migrations/*.py")), ROOT / "requirements.txt"]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def template_path() -> Path:
    return Path(tempfile.gettempdir()) / f"{PREFIX}{template_key()}.sqlite3"


@contextmanager
def template_lock(template: Path) -> Iterator[None]:
    with open(f"{template}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def database_copy(*, source: Path, target: Path) -> None:
    """Copies through SQLite's backup API (a consistent copy even of a file in use), into a
    temporary name renamed over the target, so a reader never sees half a database."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.replace(partial, target)


def templates_stale_remove(*, keep: Path) -> None:
    for path in keep.parent.glob(f"{PREFIX}*.sqlite3"):
        if path != keep:
            path.unlink(missing_ok=True)
            Path(f"{path}.lock").unlink(missing_ok=True)
