"""The migrated test database template: a changed migration or requirement gives a new
template, never a stale one; copies are whole databases."""

import sqlite3
from pathlib import Path

import pytest

from tests import db_template


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "app" / "migrations").mkdir(parents=True)
    (tmp_path / "app" / "migrations" / "0001_initial.py").write_text("operations = []\n")
    (tmp_path / "requirements.txt").write_text("Django==6.1\n")
    monkeypatch.setattr(db_template, "ROOT", tmp_path)
    return tmp_path


def test_the_key_changes_with_a_migration_or_a_requirement(project: Path) -> None:
    first = db_template.template_key()
    assert db_template.template_key() == first
    (project / "app" / "migrations" / "0002_more.py").write_text("operations = [1]\n")
    second = db_template.template_key()
    assert second != first
    (project / "requirements.txt").write_text("Django==6.2\n")
    assert db_template.template_key() not in (first, second)


def test_a_copy_holds_every_row_and_replaces_the_target(tmp_path: Path) -> None:
    source, target = tmp_path / "source.sqlite3", tmp_path / "target.sqlite3"
    with sqlite3.connect(source) as db:
        db.execute("create table t (n integer)")
        db.executemany("insert into t values (?)", [(n,) for n in range(1000)])
    target.write_bytes(b"not a database")
    db_template.database_copy(source=source, target=target)
    with sqlite3.connect(target) as db:
        assert db.execute("select count(*), sum(n) from t").fetchone() == (1000, 499500)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_only_the_current_template_is_kept(tmp_path: Path) -> None:
    old = tmp_path / f"{db_template.PREFIX}old.sqlite3"
    keep = tmp_path / f"{db_template.PREFIX}new.sqlite3"
    for path in (old, keep, Path(f"{old}.lock")):
        path.write_bytes(b"")
    db_template.templates_stale_remove(keep=keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == [keep.name]
