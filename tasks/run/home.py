"""A container's home as a tar file on the worker, and back: what the setup phase made is kept
(as the task's starting point, and as a cached snapshot), and put into the agent's container
before it starts. The tar holds the home's own paths (work/..., .cache/...), never the runner's
inputs (task/) or outputs (out/)."""

import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import requests
from docker.models.containers import Container

from .archives import ChunkReader
from .containers import AGENT_UID, HOME, ContainerError, container_id_of

# Runner-written inputs (setup secrets among them) and outputs: never kept.
LEFT_OUT = frozenset({"task", "out"})


class HomeError(ContainerError):
    """The home could not be read out of, or put into, a container."""


def _inside(name: str) -> str | None:
    """``agent/work/x`` -> ``work/x``; None for the home itself and what is left out."""
    first, _, rest = name.partition("/")
    if not rest or first != HOME.rsplit("/", 1)[-1]:
        return None
    top = rest.split("/", 1)[0]
    return None if top in LEFT_OUT else rest


def home_save(*, container: Container, dest: Path, max_bytes: int, uid: int) -> int:
    """The container's home (less task/ and out/) into the tar file dest, streamed; its size.
    What the task's uid owns is kept as the image's agent user's (a later task has another
    uid). Refused (HomeError) past max_bytes of file content: a setup cannot fill the worker's
    disk."""
    # The archive as a plain streamed response, closed whatever happens: a home refused
    # midway must not leave the engine writing into an unread socket (the container could
    # not be removed meanwhile).
    api = container.client.api  # type: ignore[union-attr]
    # The SDK's own URL builder (the API version in the path); its get_archive hides the response.
    url = api._url("/containers/{0}/archive", container_id_of(container))  # type: ignore[union-attr]
    try:
        response = api.get(url, params={"path": HOME}, stream=True, timeout=120)
    except requests.RequestException as exc:
        raise HomeError(f"Could not read the environment out of its container: {exc}") from exc
    try:
        if response.status_code != 200:
            raise HomeError(f"Docker did not hand over the home ({response.status_code}).")
        _home_copy(response.iter_content(64 * 1024), dest, max_bytes, uid)
    except requests.RequestException as exc:
        raise HomeError(f"Could not read the environment out of its container: {exc}") from exc
    finally:
        response.close()
    return dest.stat().st_size


def _home_copy(chunks: Iterator[bytes], dest: Path, max_bytes: int, uid: int) -> None:
    source = io.BufferedReader(ChunkReader(chunks))
    total = 0
    with tarfile.open(fileobj=source, mode="r|") as tar_in, tarfile.open(dest, "w") as tar_out:
        for member in tar_in:
            inside = _inside(member.name)
            if inside is None:
                continue
            member.name = inside
            if member.islnk():  # a hard link names its target by the archive's path
                target = _inside(member.linkname)
                if target is None:
                    continue
                member.linkname = target
            total += member.size if member.isfile() else 0
            if total > max_bytes:
                raise HomeError(
                    f"what setup left in the home is over {max_bytes / 1024**3:.1f} GB "
                    "(AGENT_ENV_CACHE_MAX_GB) and cannot be kept"
                )
            _owner_map(member, uid, AGENT_UID)
            data = tar_in.extractfile(member) if member.isfile() else None
            tar_out.addfile(member, data)


def _owner_map(member: tarfile.TarInfo, old: int, new: int) -> None:
    if member.uid == old:
        member.uid = new
    if member.gid == old:
        member.gid = new
    member.uname = member.gname = ""


def home_put(*, container: Container, src: Path, uid: int) -> None:
    """The tar file src into the container's home (before it starts), owned by the task's uid
    where the snapshot says the image's agent user."""
    if uid == AGENT_UID:
        with src.open("rb") as plain:
            accepted = container.put_archive(HOME, plain)
    else:
        # Re-owned on the way, through a pipe: no copy on disk or on the heap.
        read_end, write_end = os.pipe()
        failed: list[BaseException] = []
        writer = threading.Thread(
            target=_reowned_write, args=(src, write_end, uid, failed), daemon=True
        )
        writer.start()
        with os.fdopen(read_end, "rb") as stream:
            accepted = container.put_archive(HOME, stream)
        writer.join(timeout=60)
        if failed:
            raise HomeError(f"Could not read the environment's snapshot: {failed[0]}")
    if not accepted:
        raise HomeError("Docker refused the environment's files.")


def _reowned_write(src: Path, write_end: int, uid: int, failed: list[BaseException]) -> None:
    try:
        with (
            os.fdopen(write_end, "wb") as out,
            tarfile.open(src, "r") as source,
            tarfile.open(fileobj=out, mode="w|") as target,
        ):
            for member in source:
                _owner_map(member, AGENT_UID, uid)
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    except (OSError, tarfile.TarError) as exc:  # the reader went away, or a broken snapshot
        failed.append(exc)
