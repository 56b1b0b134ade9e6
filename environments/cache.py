"""The environment cache: what a successful setup left in the container's home, kept as one tar
file per (environment version, image, repository, base branch, whose) under
AGENT_ENV_CACHE_DIR, for AGENT_ENV_CACHE_HOURS after its last use, within AGENT_ENV_CACHE_MAX_GB
(least recently used first out). Only the setup phase writes a snapshot; a task's agent gets a
copy put into its own container, so nothing it does reaches a later task."""

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from .models import Environment, EnvironmentSnapshot

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    root = Path(settings.AGENT_ENV_CACHE_DIR)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def snapshot_owner_id(*, environment: Environment, task_owner_id: int) -> int | None:
    """Whose a snapshot is: nobody's (every user's) for an admin's shared environment without
    setup secrets; otherwise the task owner's alone, so a secret setup saw never reaches
    another user."""
    if environment.shared and not environment.has_setup_secrets:
        return None
    return task_owner_id


@dataclass(frozen=True)
class SnapshotKey:
    """What a snapshot is of: one version of an environment, on one image, for one repository
    and base branch, and whose (owner_id None: every user's)."""

    environment: Environment
    owner_id: int | None
    image: str
    repo_url: str
    base_branch: str

    @property
    def digest(self) -> str:
        parts = [
            str(self.environment.pk),
            str(self.environment.version),
            self.image,
            self.repo_url,
            self.base_branch,
            str(self.owner_id or ""),
        ]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def snapshot_find(*, key: SnapshotKey) -> EnvironmentSnapshot | None:
    """The live snapshot for this key, marked used now; None when there is none (expired ones
    are removed first)."""
    snapshots_evict()
    found = EnvironmentSnapshot.objects.filter(key=key.digest).first()
    if found is None:
        return None
    if not Path(found.path).is_file():
        found.delete()
        return None
    found.last_used_at = timezone.now()
    found.save(update_fields=["last_used_at"])
    return found


def snapshot_store(*, key: SnapshotKey, commit: str, source: Path) -> EnvironmentSnapshot:
    """Copy ``source`` (a tar the setup phase produced) into the cache under its key, replacing
    what was there; then keep the cache within its size."""
    digest = key.digest
    target = cache_dir() / f"{digest}.tar"
    staged = cache_dir() / f".{digest}.{os.getpid()}.tmp"
    shutil.copyfile(source, staged)
    staged.chmod(0o600)
    os.replace(staged, target)
    values = {
        "environment": key.environment,
        "owner_id": key.owner_id,
        "version": key.environment.version,
        "image": key.image,
        "repo_url": key.repo_url,
        "base_branch": key.base_branch,
        "commit": commit,
        "path": str(target),
        "size_bytes": target.stat().st_size,
        "last_used_at": timezone.now(),
    }
    try:
        with transaction.atomic():
            snapshot, _ = EnvironmentSnapshot.objects.update_or_create(key=digest, defaults=values)
    except IntegrityError:  # another task stored the same key just now: the same setup's result
        snapshot = EnvironmentSnapshot.objects.get(key=digest)
    snapshots_evict(keep=snapshot.pk)
    return snapshot


def _remove(snapshots: list[EnvironmentSnapshot]) -> int:
    for snapshot in snapshots:
        Path(snapshot.path).unlink(missing_ok=True)
        snapshot.delete()
    return len(snapshots)


def snapshots_remove(*, environment_id: int, older: bool = False) -> int:
    """Every snapshot of an environment (older=True: those of its earlier versions only)."""
    found = EnvironmentSnapshot.objects.filter(environment_id=environment_id)
    if older:
        current = Environment.objects.filter(pk=environment_id).values_list("version", flat=True)
        found = found.exclude(version__in=current)
    return _remove(list(found))


def snapshots_evict(*, now: datetime | None = None, keep: int | None = None) -> int:
    """Remove snapshots unused for AGENT_ENV_CACHE_HOURS, then the least recently used until
    the rest fit in AGENT_ENV_CACHE_MAX_GB (``keep``, the one just made, goes last). How many
    went."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.AGENT_ENV_CACHE_HOURS)
    removed = _remove(list(EnvironmentSnapshot.objects.filter(last_used_at__lt=cutoff)))
    limit = int(settings.AGENT_ENV_CACHE_MAX_GB * 1024**3)
    total = EnvironmentSnapshot.objects.aggregate(n=Sum("size_bytes"))["n"] or 0
    if total <= limit:
        return removed
    for snapshot in EnvironmentSnapshot.objects.order_by("last_used_at", "pk"):
        if total <= limit:
            break
        if snapshot.pk == keep:
            continue
        total -= snapshot.size_bytes
        removed += _remove([snapshot])
    if total > limit and keep is not None:
        logger.warning("A snapshot alone is over AGENT_ENV_CACHE_MAX_GB; it is not kept")
        removed += _remove(list(EnvironmentSnapshot.objects.filter(pk=keep)))
    return removed


def cache_size_for(*, environment: Environment) -> tuple[int, int]:
    """How many snapshots an environment has, and their bytes."""
    found = EnvironmentSnapshot.objects.filter(environment=environment)
    return found.count(), found.aggregate(n=Sum("size_bytes"))["n"] or 0
