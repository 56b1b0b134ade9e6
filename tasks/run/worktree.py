"""Putting a working tree cloned on the worker into a task's container.

The tree (with its .git) is streamed as a tar straight from `tar` into the Docker API, owned by
the agent user, below the container's home: nothing is staged in memory or on disk, and the
container needs no network to get its repository.
"""

import subprocess
from pathlib import Path

from docker.models.containers import Container

from .containers import HOME, ContainerError


class TreeError(ContainerError):
    """The working tree could not be put into the container."""


def tree_put(*, container: Container, src: Path, uid: int, name: str = "work") -> None:
    """Copy the directory ``src`` into the container as ``HOME/name`` (before it starts), owned
    by uid (and gid), the agent's."""
    command = [
        "tar",
        "-C",
        str(src),
        f"--owner={uid}",
        f"--group={uid}",
        "--numeric-owner",
        "--transform",
        rf"s,^\.,{name},",
        "-cf",
        "-",
        ".",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        assert tar.stderr is not None
        accepted = container.put_archive(HOME, tar.stdout)
        error = tar.stderr.read().decode("utf-8", "replace").strip()
    if tar.returncode != 0 or not accepted:
        raise TreeError(f"Could not copy the repository into the container: {error or 'refused'}")
