import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parent.parent


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "SECRET"))}
    clean.pop("FIELD_ENCRYPTION_KEYS", None)
    # Explicit values beat a developer's .env (the environment wins over the file).
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_DEBUG": "false", **env})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_check(SECRET_KEY="", FIELD_ENCRYPTION_KEYS="x", PYTHONPATH=str(ROOT))
    assert result.returncode != 0
    assert "SECRET_KEY is missing" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr


def test_production_refuses_to_start_without_an_encryption_key():
    result = run_check(SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEYS="", PYTHONPATH=str(ROOT))
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS is empty" in result.stderr
    assert "Fernet.generate_key" in result.stderr


def test_env_example_documents_every_variable_the_settings_read():
    sources = [p for p in (ROOT / "config/settings").glob("*.py") if p.name != "test.py"]
    base = "\n".join(p.read_text() for p in sources)
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', base)) - {"DJANGO_TESTING"}
    lines = (ROOT / ".env.example").read_text().splitlines()
    documented = {}
    for previous, line in zip(["", *lines], lines, strict=False):
        if m := re.match(r"([A-Z_]+)=", line):
            documented[m[1]] = previous.startswith("#")
    assert read <= set(documented), sorted(read - set(documented))
    assert all(documented[name] for name in read), "each variable needs a comment line above it"


def test_removed_token_settings_turned_on_are_refused_not_ignored():
    """AGENT_PASS_TOKEN_ENV and AGENT_ALLOW_TOKEN_ROTATION put real tokens into containers; the
    gateway replaced them. Someone who turns one on must hear it is gone."""
    keys = {"SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEYS": "x", "PYTHONPATH": str(ROOT)}
    for name in ("AGENT_PASS_TOKEN_ENV", "AGENT_ALLOW_TOKEN_ROTATION"):
        result = run_check(**keys, **{name: "true"})
        assert result.returncode != 0
        assert f"{name} is gone" in result.stderr
        assert run_check(**keys, **{name: "false"}).returncode == 0  # harmless leftovers pass
