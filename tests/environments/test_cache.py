"""The environment cache on its own: keys (whose, which version), eviction by age and by size
(least recently used first), reset."""

from datetime import timedelta

import pytest
from django.utils import timezone

from environments.cache import (
    SnapshotKey,
    snapshot_find,
    snapshot_owner_id,
    snapshot_store,
    snapshots_evict,
)
from environments.models import Environment, EnvironmentSnapshot
from environments.services import environment_cache_reset

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_settings(settings, tmp_path):
    settings.AGENT_ENV_CACHE_DIR = str(tmp_path / "cache")
    settings.AGENT_ENV_CACHE_HOURS = 12
    settings.AGENT_ENV_CACHE_MAX_GB = 1
    return settings


def _store(tmp_path, environment, repo: str, size: int, owner_id=None) -> EnvironmentSnapshot:
    source = tmp_path / f"{repo.rsplit('/', 1)[-1]}.tar"
    source.write_bytes(b"x" * size)
    key = SnapshotKey(environment, owner_id, "img", repo, "main")
    return snapshot_store(key=key, commit="c0ffee", source=source)


def test_found_by_its_whole_key_only(cache_settings, tmp_path, user, other_user):
    environment = Environment.objects.create(owner=user, name="e", image="img")
    _store(tmp_path, environment, "https://github.com/a/one", 10, owner_id=user.pk)
    key = SnapshotKey(environment, user.pk, "img", "https://github.com/a/one", "main")
    assert snapshot_find(key=key) is not None
    for other in (
        SnapshotKey(environment, other_user.pk, "img", "https://github.com/a/one", "main"),
        SnapshotKey(environment, user.pk, "img2", "https://github.com/a/one", "main"),
        SnapshotKey(environment, user.pk, "img", "https://github.com/a/two", "main"),
        SnapshotKey(environment, user.pk, "img", "https://github.com/a/one", "dev"),
    ):
        assert snapshot_find(key=other) is None
    environment.version += 1
    environment.save()
    assert snapshot_find(key=key) is None  # the key names the version


def test_shared_only_without_secrets(user):
    plain = Environment(owner=user, name="p", image="i", shared=True)
    secret = Environment(owner=user, name="s", image="i", shared=True, setup_secrets={"T": "v"})
    mine = Environment(owner=user, name="m", image="i")
    assert snapshot_owner_id(environment=plain, task_owner_id=7) is None
    assert snapshot_owner_id(environment=secret, task_owner_id=7) == 7
    assert snapshot_owner_id(environment=mine, task_owner_id=7) == 7


def test_evicted_after_the_hours_unused(cache_settings, tmp_path, user):
    environment = Environment.objects.create(owner=user, name="e", image="img")
    old = _store(tmp_path, environment, "https://github.com/a/old", 10)
    fresh = _store(tmp_path, environment, "https://github.com/a/fresh", 10)
    EnvironmentSnapshot.objects.filter(pk=old.pk).update(
        last_used_at=timezone.now() - timedelta(hours=13)
    )
    assert snapshots_evict() == 1
    assert list(EnvironmentSnapshot.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not (tmp_path / "cache" / f"{old.key}.tar").exists()


def test_evicted_least_recently_used_first_beyond_the_size(cache_settings, tmp_path, user):
    cache_settings.AGENT_ENV_CACHE_MAX_GB = 250 / 1024**3  # 250 bytes
    environment = Environment.objects.create(owner=user, name="e", image="img")
    first = _store(tmp_path, environment, "https://github.com/a/first", 100)
    second = _store(tmp_path, environment, "https://github.com/a/second", 100)
    # The first is used again: the second is now the least recently used.
    EnvironmentSnapshot.objects.filter(pk=second.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=5)
    )
    third = _store(tmp_path, environment, "https://github.com/a/third", 100)
    left = set(EnvironmentSnapshot.objects.values_list("pk", flat=True))
    assert left == {first.pk, third.pk}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [f"{first.key}.tar", f"{third.key}.tar"]
    )


def test_a_snapshot_bigger_than_the_whole_cache_is_not_kept(cache_settings, tmp_path, user):
    cache_settings.AGENT_ENV_CACHE_MAX_GB = 50 / 1024**3
    environment = Environment.objects.create(owner=user, name="e", image="img")
    _store(tmp_path, environment, "https://github.com/a/big", 100)
    assert not EnvironmentSnapshot.objects.exists()


def test_reset_removes_every_snapshot_of_the_environment(cache_settings, tmp_path, user):
    environment = Environment.objects.create(owner=user, name="e", image="img")
    other = Environment.objects.create(owner=user, name="o", image="img")
    _store(tmp_path, environment, "https://github.com/a/one", 10)
    _store(tmp_path, other, "https://github.com/a/two", 10)
    assert environment_cache_reset(environment=environment) == 1
    assert list(EnvironmentSnapshot.objects.values_list("environment", flat=True)) == [other.pk]
