"""Model fields whose column holds only ciphertext.

Encryption is randomised, so these columns cannot be filtered on; keep anything an
operator must sort or filter on in plain columns beside them.
"""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from .encryption import text_decrypt, text_encrypt


class _EncryptedMixin:
    encrypted = True
    name: str

    def _label(self) -> str:
        model = getattr(self, "model", None)
        return f"{model._meta.label}.{self.name}" if model else self.name


class EncryptedTextField(_EncryptedMixin, models.TextField):
    """A text value encrypted at rest. The empty string is stored as is: it means "not set"."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return text_encrypt(plaintext=str(value))

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return text_decrypt(ciphertext=value, label=self._label())


class EncryptedJSONField(_EncryptedMixin, models.TextField):
    """A JSON value (dict, list, ...) encrypted at rest as one text column."""

    # For django-stubs: the attribute holds decoded JSON, not the column's text.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return text_encrypt(plaintext=json.dumps(value, cls=DjangoJSONEncoder))

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return json.loads(text_decrypt(ciphertext=value, label=self._label()))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj), cls=DjangoJSONEncoder)


def encrypted_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if getattr(f, "encrypted", False)]
