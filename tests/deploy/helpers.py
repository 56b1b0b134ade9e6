"""Run manage.py in a fresh process with production-like settings (config.settings.base)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_FERNET_KEY = "0Ti0e5cTsHfCx2hKWRwcQtEbULg8bxxdlgH_cd7tiak="
ALL_CLEAR = "System check identified no issues (0 silenced).\n"
_OURS = ("DJANGO", "SECRET", "FIELD_ENCRYPTION", "DATABASE_URL", "TASKS_ENGINE", "LOGIN_", "TEST_")


def production_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The process environment minus this run's settings, plus real-looking secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_DEBUG": "false",
            "SECRET_KEY": "k7Qv-production-like-secret-key-with-enough-entropy-9f2Lx0aZ",
            "FIELD_ENCRYPTION_KEYS": TEST_FERNET_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **values,
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def readme_production_values() -> dict[str, str]:
    """The VAR=value lines of the README's "Production" section (its ```ini block)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```ini\n(.*?)```", section, re.S)
    assert block, "README's Production section has no ```ini block of settings"
    values = dict(
        line.split("=", 1) for line in block[1].splitlines() if line and not line.startswith("#")
    )
    assert values, "README's Production block lists no settings"
    return values
