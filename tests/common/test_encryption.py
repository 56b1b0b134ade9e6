import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.models import UserPreferences
from common.encryption import DecryptionError

SECRET = "sk-ant-api03-plaintext-that-must-never-hit-the-disk"

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def raw_column(pk: int, column: str) -> str:
    table = UserPreferences._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_raw_column_never_holds_the_plaintext(user):
    prefs = UserPreferences.objects.create(
        user=user, api_key=SECRET, agent_env={"GITHUB_TOKEN": "ghp_plainvalue123456"}
    )
    assert SECRET not in raw_column(prefs.pk, "api_key")
    assert "ghp_plainvalue123456" not in raw_column(prefs.pk, "agent_env")
    assert "GITHUB_TOKEN" not in raw_column(prefs.pk, "agent_env")

    fresh = UserPreferences.objects.get(pk=prefs.pk)
    assert fresh.api_key == SECRET
    assert fresh.agent_env == {"GITHUB_TOKEN": "ghp_plainvalue123456"}


@pytest.mark.django_db
def test_same_value_encrypts_differently_each_time(user, other_user):
    a = UserPreferences.objects.create(user=user, api_key=SECRET)
    b = UserPreferences.objects.create(user=other_user, api_key=SECRET)
    assert raw_column(a.pk, "api_key") != raw_column(b.pk, "api_key")


@pytest.mark.django_db
def test_rotation_from_a_to_b_keeps_every_value_readable(user, other_user, settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    first = UserPreferences.objects.create(user=user, api_key=SECRET, agent_env={"A": "1"})
    second = UserPreferences.objects.create(user=other_user, api_key="sk-ant-api03-second")
    before = raw_column(first.pk, "api_key")

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    # New key first, old key still readable before rotation.
    assert UserPreferences.objects.get(pk=first.pk).api_key == SECRET
    call_command("rotate_encryption_keys", batch_size=1, stdout=(out := _Out()))
    assert "accounts.UserPreferences: 2 of 2 rows re-encrypted" in out.text
    assert raw_column(first.pk, "api_key") != before

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    assert UserPreferences.objects.get(pk=first.pk).api_key == SECRET
    assert UserPreferences.objects.get(pk=first.pk).agent_env == {"A": "1"}
    assert UserPreferences.objects.get(pk=second.pk).api_key == "sk-ant-api03-second"

    # A second run has nothing left to do.
    call_command("rotate_encryption_keys", stdout=(out := _Out()))
    assert "0 of 2 rows re-encrypted" in out.text


@pytest.mark.django_db
def test_wrong_key_fails_loudly_and_never_returns_ciphertext(user, settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    prefs = UserPreferences.objects.create(user=user, api_key=SECRET)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(
        DecryptionError, match=r"accounts.UserPreferences.api_key.*FIELD_ENCRYPTION"
    ):
        UserPreferences.objects.get(pk=prefs.pk)


@pytest.mark.django_db
def test_rotation_with_an_unknown_key_stops_with_a_clear_error(user, settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    UserPreferences.objects.create(user=user, api_key=SECRET)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(CommandError, match="no key"):
        call_command("rotate_encryption_keys", stdout=_Out())


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass
