"""Cross-cutting actions: key rotation for encrypted columns, and a field-precise model update."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet
from django.apps import apps
from django.db import models, transaction
from django.db.models.functions import Cast

from .encryption import DecryptionError, ciphertext_is_current, multifernet
from .fields import encrypted_fields


@dataclass(frozen=True)
class RotationReport:
    model_label: str
    rows_seen: int
    rows_rotated: int


def encryption_keys_rotate(
    *, batch_size: int = 500, progress: Callable[[RotationReport], None] | None = None
) -> list[RotationReport]:
    """Re-encrypt every encrypted column with the first key, one batch per transaction.

    Works on the raw ciphertext (MultiFernet.rotate), so values are never decrypted into model
    instances and rows written meanwhile by other code are not overwritten with stale data.
    """
    fernet = multifernet()
    reports: list[RotationReport] = []
    for model in apps.get_models():
        fields = encrypted_fields(model)
        if not fields:
            continue
        report = _model_keys_rotate(model, fields, fernet=fernet, batch_size=batch_size)
        reports.append(report)
        if progress:
            progress(report)
    return reports


def _model_keys_rotate(
    model: type[models.Model],
    fields: list[models.Field],
    *,
    fernet: MultiFernet,
    batch_size: int,
) -> RotationReport:
    """One model's encrypted columns, re-encrypted batch by batch in primary key order."""
    seen = rotated = 0
    raw_names = {f.attname: f"_raw_{f.attname}" for f in fields}
    queryset = model._default_manager.order_by("pk").annotate(
        **{raw: Cast(name, output_field=models.TextField()) for name, raw in raw_names.items()}
    )
    last_pk: Any = None
    while True:
        page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
        rows = list(page.values_list("pk", *raw_names.values())[:batch_size])
        if not rows:
            break
        with transaction.atomic():
            for pk, *raw_values in rows:
                changes = _row_rotated_values(
                    model, pk, dict(zip(raw_names, raw_values, strict=True)), fernet=fernet
                )
                if changes:
                    model._default_manager.filter(pk=pk).update(**changes)
                    rotated += 1
        seen += len(rows)
        last_pk = rows[-1][0]
    return RotationReport(model._meta.label, seen, rotated)


def _row_rotated_values(
    model: type[models.Model], pk: Any, raw_values: dict[str, str | None], *, fernet: MultiFernet
) -> dict[str, models.Value]:
    """The columns of one row whose ciphertext is not under the first key, re-encrypted."""
    changes = {}
    for name, raw in raw_values.items():
        if not raw or ciphertext_is_current(ciphertext=raw):
            continue
        try:
            fresh = fernet.rotate(raw.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise DecryptionError(
                f"Cannot rotate {model._meta.label}.{name} of row {pk}: no key "
                "in FIELD_ENCRYPTION_KEYS can read it."
            ) from exc
        # An expression skips get_prep_value, which would encrypt twice.
        changes[name] = models.Value(fresh, output_field=models.TextField())
    return changes


def model_update(
    *, instance: models.Model, fields: Iterable[str], data: dict[str, Any]
) -> tuple[models.Model, bool]:
    """Set only the named fields that changed and save just those columns.

    Saving with update_fields means a concurrent writer's other columns are never overwritten
    by this instance's stale copy.
    """
    changed = [f for f in fields if f in data and getattr(instance, f) != data[f]]
    for name in changed:
        setattr(instance, name, data[name])
    if changed:
        auto_now = [f.name for f in instance._meta.concrete_fields if getattr(f, "auto_now", False)]
        instance.save(update_fields=[*changed, *auto_now])
    return instance, bool(changed)
