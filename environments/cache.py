"""The environment cache: what a successful setup left in the container's home, kept as one tar
file per (environment version, image, repository, base branch, whose) under
AGENT_ENV_CACHE_DIR, for AGENT_ENV_CACHE_HOURS after its last use, within AGENT_ENV_CACHE_MAX_GB
(least recently used first out). Only the setup phase writes a snapshot; a task's agent gets a
copy put into its own container, so nothing it does reaches a later task."""

import hashlib
import logging
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
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


def snapshot_key(
    *, environment: Environment, owner_id: int | None, repo_url: str, base_branch: str
) -> str:
    parts = [
        str(environment.pk),
        str(environment.version),
        environment.image,
        repo_url,
        base_branch,
        str(owner_id or ""),
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def snapshot_find(
    *, environment: Environment, owner_id: int | None, repo_url: str, base_branch: str
) -> EnvironmentSnapshot | None:
    """The live snapshot for this key, marked used now; None when there is none (expired ones
    are removed first)."""
    snapshots_evict()
    key = snapshot_key(
        environment=environment, owner_id=owner_id, repo_url=repo_url, base_branch=base_branch
    )
    found = EnvironmentSnapshot.objects.filter(key=key).first()
    if found is None:
        return None
    if not Path(found.path).is_file():
        found.delete()
        return None
    found.last_used_at = timezone.now()
    found.save(update_fields=["last_used_at"])
    return found


def snapshot_store(
    *,
    environment: Environment,
    owner_id: int | None,
    repo_url: str,
    base_branch: str,
    commit: str,
    source: Path,
) -> EnvironmentSnapshot:
    """Move ``source`` (a tar the setup phase produced) into the cache under its key, replacing
    what was there; then keep the cache within its size."""
    key = snapshot_key(
        environment=environment, owner_id=owner_id, repo_url=repo_url, base_branch=base_branch
    )
    target = cache_dir() / f"{key}.tar"
    staged = cache_dir() / f".{key}.{os.getpid()}.tmp"
    shutil.move(source, staged)
    staged.chmod(0o600)
    os.replace(staged, target)
    now = timezone.now()
    with transaction.atomic():
        EnvironmentSnapshot.objects.filter(key=key).delete()
        snapshot = EnvironmentSnapshot.objects.create(
            key=key,
            environment=environment,
            owner_id=owner_id,
            version=environment.version,
            image=environment.image,
            repo_url=repo_url,
            base_branch=base_branch,
            commit=commit,
            path=str(target),
            size_bytes=target.stat().st_size,
            last_used_at=now,
        )
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
