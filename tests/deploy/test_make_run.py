"""`make run` (scripts/run.sh): private .env and database files, gunicorn sized to the machine,
static files through whitenoise."""

import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .helpers import ROOT, manage, production_env

pytestmark = pytest.mark.deploy

RUN_SH = ROOT / "scripts" / "run.sh"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_sh(function_call: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    # A permissive umask, as on most machines: the script must not depend on the caller's.
    script = f"umask 022; source {RUN_SH}; {function_call}"
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_a_new_database_and_env_file_are_private(tmp_path):
    env = production_env(tmp_path)
    result = run_sh("env_file_ensure; database_migrate_private", tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / ".env") == 0o600
    assert mode(tmp_path / "db.sqlite3") == 0o600
    # The app's processes run with the caller's umask: SQLite gives the -wal/-shm files it
    # creates later the database's own mode, so they are private too.
    connection = sqlite3.connect(tmp_path / "db.sqlite3")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE probe (x)")
    for suffix in ("-wal", "-shm"):
        assert mode(tmp_path / f"db.sqlite3{suffix}") == 0o600, suffix
    connection.close()


def test_files_left_world_readable_by_an_older_version_are_made_private(tmp_path):
    env = production_env(tmp_path)
    manage(env, "migrate", "--noinput")
    files = [tmp_path / name for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", ".env")]
    for path in files:
        path.touch()
        path.chmod(0o644)
    env_before = (tmp_path / ".env").read_text()
    result = run_sh("env_file_ensure; database_migrate_private", tmp_path, env)
    assert result.returncode == 0, result.stderr
    for path in files:
        if path.exists():  # SQLite may remove an empty -wal/-shm on close
            assert mode(path) == 0o600, path.name
    assert (tmp_path / ".env").read_text() == env_before  # an existing .env is kept


def test_postgresql_has_no_file_to_protect(tmp_path):
    env = production_env(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused")
    result = run_sh("sqlite_database_path", tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_gunicorn_workers_follow_the_machine_capped_and_settable():
    sys.path.insert(0, str(ROOT))
    from config.gunicorn import MAX_AUTO_WORKERS, workers_for

    assert workers_for(1) == 3
    assert workers_for(2) == 5
    assert workers_for(64) == MAX_AUTO_WORKERS
    assert workers_for(None) == 3
    assert workers_for(64, "12") == 12
    with pytest.raises(ValueError, match="WEB_WORKERS must be 1 or more"):
        workers_for(2, "0")


def test_gunicorn_serves_asgi_only_with_its_asgi_worker():
    sys.path.insert(0, str(ROOT))
    from config.gunicorn import app_for

    assert app_for("sync") == "config.wsgi:application"
    assert app_for("asgi") == "config.asgi:application"
    with pytest.raises(ValueError, match="WEB_WORKER_CLASS must be sync or asgi"):
        app_for("gevent")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        return response.status, dict(response.headers), response.read()


def test_gunicorn_serves_pages_and_whitenoise_the_static_files(tmp_path):
    port = free_port()
    env = production_env(tmp_path, HOST="127.0.0.1", PORT=str(port), WEB_WORKERS="1")
    assert manage(env, "migrate", "--noinput").returncode == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, body = get(f"{base}/accounts/login/")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    pytest.fail(f"gunicorn did not answer:\n{server.communicate()[0]}")
                time.sleep(0.2)
        assert status == 200
        assert b"Log in" in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "gunicorn" in headers.get("Server", "")
        status, headers, body = get(f"{base}/static/css/app.css")
        assert status == 200
        assert b".htmx-indicator" in body
        assert headers["Content-Type"].startswith("text/css")
        status, _, _ = get(f"{base}/static/admin/css/base.css")  # an app's static file too
        assert status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
