"""A container's home as a tar file on the worker, and back: what the setup phase made is kept
(as the task's starting point, and as a cached snapshot), and put into the agent's container
before it starts. The tar holds the home's own paths (work/..., .cache/...), never the runner's
inputs (task/) or outputs (out/)."""

import io
import tarfile
from pathlib import Path

from docker.models.containers import Container

from .containers import HOME, ContainerError, _ChunkReader

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


def home_save(*, container: Container, dest: Path) -> int:
    """The container's home (less task/ and out/) into the tar file dest, streamed; its size."""
    try:
        chunks, _ = container.get_archive(HOME)
    except Exception as exc:
        raise HomeError(f"Could not read the environment out of its container: {exc}") from exc
    source = io.BufferedReader(_ChunkReader(chunks))
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
            data = tar_in.extractfile(member) if member.isfile() else None
            tar_out.addfile(member, data)
    return dest.stat().st_size


def home_put(*, container: Container, src: Path) -> None:
    """The tar file src into the container's home (before it starts)."""
    with src.open("rb") as data:
        if not container.put_archive(HOME, data):
            raise HomeError("Docker refused the environment's files.")
