"""Transactional tests end with a flush of every table, and Django then emits post_migrate so
content types and permissions exist again: about 70 ms of ORM work per test, for the same rows
each time. On SQLite the rows are put back from a copy taken after the first real emission
instead, by plain inserts (about 3 ms). Anything other than the two tables being empty (say a
flush of some apps only) takes Django's own path."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.commands import flush
from django.db import connections

_EMIT = "emit_post_migrate_signal"  # flush's own name for it (not in the type stubs)
TABLES = (ContentType._meta.db_table, Permission._meta.db_table)  # permissions refer to types

Rows = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def _rows_read(database: str) -> Rows:
    rows: Rows = {}
    with connections[database].cursor() as cursor:
        for table in TABLES:
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names of our own tables)
            columns = [column[0] for column in cursor.description]
            rows[table] = (columns, cursor.fetchall())
    return rows


def _tables_empty(database: str) -> bool:
    with connections[database].cursor() as cursor:
        for table in TABLES:
            cursor.execute(f'SELECT 1 FROM "{table}" LIMIT 1')  # noqa: S608
            if cursor.fetchone() is not None:
                return False
    return True


def _rows_write(database: str, rows: Rows) -> None:
    with connections[database].cursor() as cursor:
        for table in TABLES:
            columns, values = rows[table]
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("%s" for _ in columns)
            cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)  # noqa: S608
    ContentType.objects.clear_cache()


def post_migrate_rows_install() -> Callable[[], None]:
    """Routes flush's post_migrate emission through the copy; returns the undo."""
    original = getattr(flush, _EMIT)
    copies: dict[str, Rows] = {}

    def emit(verbosity: int, interactive: bool, database: str, **kwargs: Any) -> None:
        sqlite = connections[database].vendor == "sqlite"
        if sqlite and database in copies and _tables_empty(database):
            _rows_write(database, copies[database])
            return
        original(verbosity, interactive, database, **kwargs)
        if sqlite:
            copies[database] = _rows_read(database)

    setattr(flush, _EMIT, emit)

    def undo() -> None:
        setattr(flush, _EMIT, original)

    return undo
