from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.encryption import DecryptionError
from common.services import RotationReport, encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column with the first key of FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then drop the old keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        def show(report: RotationReport) -> None:
            self.stdout.write(
                f"{report.model_label}: {report.rows_rotated} of {report.rows_seen} rows "
                "re-encrypted"
            )

        try:
            reports = encryption_keys_rotate(batch_size=batch_size, progress=show)
        except DecryptionError as exc:
            raise CommandError(str(exc)) from exc
        total = sum(r.rows_rotated for r in reports)
        self.stdout.write(
            self.style.SUCCESS(f"Done: {total} rows re-encrypted with the first key.")
        )
