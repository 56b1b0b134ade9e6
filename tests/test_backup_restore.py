"""README "Backup and restore": an online SQLite backup restores every credential with the same
keys, and with another key reading one fails loudly."""

import json
import sqlite3
import textwrap

import pytest
from cryptography.fernet import Fernet

from tests.deploy.helpers import ROOT, TEST_FERNET_KEY, manage, production_env

pytestmark = pytest.mark.deploy

SECRETS = {
    "access": "sk-ant-oat01-backup-access-token-value",
    "refresh": "sk-ant-ort01-backup-refresh-token-value",
    "api_key": "sk-ant-api03-backup-api-key-value",
    "env": {"HTTPS_PROXY": "http://user:backup-proxy-password@127.0.0.1:3128"},
}

WRITE = textwrap.dedent(f"""
    from django.contrib.auth import get_user_model
    from accounts.models import UserPreferences
    from oauth_tokens.models import OAuthCredential
    user = get_user_model().objects.create_user("carol", password="pw-carol-123")
    OAuthCredential.objects.create(owner=user, kind="refreshable", source="user",
        access_token={SECRETS["access"]!r}, refresh_token={SECRETS["refresh"]!r})
    UserPreferences.objects.create(user=user, api_key={SECRETS["api_key"]!r},
        api_key_last4="alue", agent_env={SECRETS["env"]!r})
""")

READ = textwrap.dedent("""
    import json
    from accounts.models import UserPreferences
    from oauth_tokens.models import OAuthCredential
    credential = OAuthCredential.objects.get(owner__username="carol")
    preferences = UserPreferences.objects.get(user__username="carol")
    print(json.dumps({"access": credential.access_token, "refresh": credential.refresh_token,
                      "api_key": preferences.api_key, "env": preferences.agent_env}))
""")


def test_an_online_sqlite_backup_restores_every_credential_only_with_its_keys(tmp_path):
    live = tmp_path / "db.sqlite3"
    env = production_env(tmp_path)
    assert manage(env, "migrate", "--noinput").returncode == 0
    written = manage(env, "shell", "-v", "0", "-c", WRITE)
    assert written.returncode == 0, written.stderr

    # Nothing readable in the files themselves.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite3*"))
    assert b"backup-access-token" not in raw
    assert b"backup-api-key" not in raw

    # The online backup API, as the README shows, while another connection holds the database.
    holder = sqlite3.connect(live)
    holder.execute("PRAGMA journal_mode=WAL")
    backup = tmp_path / "backup.sqlite3"
    with sqlite3.connect(backup) as target:
        sqlite3.connect(live).backup(target)
    holder.close()

    # Restore into a fresh place and read it back with the same keys.
    restored = tmp_path / "restored" / "db.sqlite3"
    restored.parent.mkdir()
    with sqlite3.connect(restored) as target:
        sqlite3.connect(backup).backup(target)
    restored_env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{restored}")
    read = manage(restored_env, "shell", "-v", "0", "-c", READ)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout) == SECRETS

    # The old key after a new one (rotation) still reads it.
    rotated = {
        **restored_env,
        "FIELD_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},{TEST_FERNET_KEY}",
    }
    assert json.loads(manage(rotated, "shell", "-v", "0", "-c", READ).stdout) == SECRETS

    # Any other key: a loud DecryptionError, never garbage or the ciphertext.
    other = {**restored_env, "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    failed = manage(other, "shell", "-v", "0", "-c", READ)
    assert failed.returncode != 0
    assert "common.encryption.DecryptionError" in failed.stderr
    assert "none of the keys in FIELD_ENCRYPTION_KEYS can read it" in failed.stderr
    assert "backup-access-token" not in failed.stdout + failed.stderr


def test_the_readme_says_how_to_back_up_and_that_keys_are_needed():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Backup and restore\n", 1)[1].split("\n## ", 1)[0]
    for needed in (".backup", ".backup(", "pg_dump", "pg_restore", "FIELD_ENCRYPTION_KEYS"):
        assert needed in section, needed
    assert "useless without `FIELD_ENCRYPTION_KEYS`" in section
    assert "apart from the backups" in section
