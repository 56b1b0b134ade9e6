"""Field encryption on cryptography's MultiFernet: the first key encrypts, every key decrypts."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


class DecryptionError(Exception):
    """A stored value that no configured key can read. Never fall back to the ciphertext."""


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key "
            '(.venv/bin/python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def encryption_keys() -> tuple[str, ...]:
    return tuple(key.strip() for key in settings.FIELD_ENCRYPTION_KEYS if key.strip())


def multifernet() -> MultiFernet:
    return _multifernet(encryption_keys())


def text_encrypt(*, plaintext: str) -> str:
    return multifernet().encrypt(plaintext.encode()).decode("ascii")


def text_decrypt(*, ciphertext: str, label: str = "an encrypted value") -> str:
    try:
        return multifernet().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise DecryptionError(
            f"Cannot decrypt {label}: none of the keys in FIELD_ENCRYPTION_KEYS can read it. "
            "Was a key removed before `manage.py rotate_encryption_keys` ran?"
        ) from exc


def ciphertext_is_current(*, ciphertext: str) -> bool:
    """True when the first (current) key can read the value, so rotation may skip it."""
    keys = encryption_keys()
    if not keys:
        return False
    try:
        Fernet(keys[0]).decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return False
    return True


def _clear_cache(*, setting: str, **_: object) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _multifernet.cache_clear()


def connect_signals() -> None:
    setting_changed.connect(_clear_cache, dispatch_uid="common.encryption.clear_cache")
