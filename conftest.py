import os
from collections.abc import Generator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings

from tests import db_template, post_migrate_rows

pytest_plugins = ["tests.fakes.token_server", "tests.fakes.docker_env", "tests.fakes.hosting_world"]

# Property tests (tests/fuzz) stay bounded: "ci" is the default; HYPOTHESIS_PROFILE=dev is
# quicker, =deep searches longer. No deadline: a loaded CI machine must not turn into failures.
# Examples the database remembers live in .hypothesis/ (git-ignored); a failure found becomes
# an explicit @example in the test.
for name, examples in (("ci", 200), ("dev", 25), ("deep", 5000)):
    settings.register_profile(
        name,
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow share one xdist group: with --dist loadgroup they run one after another
    on one worker, beside the rest of the suite."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("serial"))


def _sqlite_test_database() -> Path | None:
    database = django_settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return None
    return Path(database["TEST"]["NAME"])


@dataclass
class _Template:
    path: Path
    worker_db: Path
    copied: bool
    lock: ExitStack


@pytest.fixture(scope="session")
def _db_template(
    request: pytest.FixtureRequest, django_db_modify_db_settings: None
) -> Generator[_Template | None]:
    """This worker's database copied from the migrated template, or (no template yet) the
    template's lock held until this worker has built it; None where no template applies
    (PostgreSQL, --reuse-db, --create-db, --no-migrations)."""
    worker_db = _sqlite_test_database()
    option = request.config.getvalue
    if worker_db is None or option("reuse_db") or option("create_db") or option("nomigrations"):
        yield None
        return
    path = db_template.template_path()
    with ExitStack() as lock:
        lock.enter_context(db_template.template_lock(path))
        copied = path.exists()
        if copied:
            db_template.database_copy(source=path, target=worker_db)
            lock.close()  # the others need not wait on this worker
        yield _Template(path=path, worker_db=worker_db, copied=copied, lock=lock)


@pytest.fixture(scope="session")
def django_db_keepdb(request: pytest.FixtureRequest, _db_template: _Template | None) -> bool:
    """Django keeps, and only checks the migrations of, a database copied from the template."""
    if _db_template is not None:
        return _db_template.copied
    return bool(request.config.getvalue("reuse_db"))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, _db_template: _Template | None) -> Generator[None]:
    template = _db_template
    if template is not None and not template.copied:
        db_template.database_copy(source=template.worker_db, target=template.path)
        db_template.templates_stale_remove(keep=template.path)
        template.lock.close()
    undo = post_migrate_rows.post_migrate_rows_install()
    yield
    undo()
    if template is not None and template.copied:
        # Kept for Django (keepdb) but this worker's alone: gone with the run.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{template.worker_db}{suffix}").unlink(missing_ok=True)
