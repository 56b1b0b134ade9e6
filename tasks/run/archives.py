"""Tar archives in and out of a task's containers: the inputs written before start, and the
outputs read back as a stream, never more than asked for in memory."""

import io
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputFile:
    path: str  # absolute path inside the container
    data: bytes = field(repr=False)  # may be a credential
    mode: int = 0o600


def inputs_tar(files: list[InputFile], *, home: str, uid: int) -> bytes:
    """The inputs as a tar to extract at home (the only writable place before start)."""
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        made: set[str] = set()
        for item in files:
            if not item.path.startswith(home + "/"):
                raise ValueError(f"input file outside {home}: {item.path}")
            # Explicit directory entries owned by the agent user: put_archive would otherwise
            # create missing parents as root, and the agent could not delete its secret files.
            parent = item.path.rsplit("/", 1)[0]
            dirs = []
            while parent.startswith(home + "/") and parent not in made:
                dirs.append(parent)
                parent = parent.rsplit("/", 1)[0]
            for directory in reversed(dirs):
                info = tarfile.TarInfo(directory.removeprefix(home + "/"))
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, now
                info.uid = info.gid = uid
                tar.addfile(info)
                made.add(directory)
            info = tarfile.TarInfo(item.path.removeprefix(home + "/"))
            info.size, info.mode, info.mtime = len(item.data), item.mode, now
            info.uid = info.gid = uid
            tar.addfile(info, io.BytesIO(item.data))
    return buffer.getvalue()


class ChunkReader(io.RawIOBase):
    """A file-like view of the docker SDK's archive chunks, so the tar is read as a stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def outputs_untar(
    chunks: Iterator[bytes],
    *,
    wanted: set[str] | None,
    max_bytes: int,
    whole_only: frozenset[str] | set[str] = frozenset(),
) -> tuple[dict[str, bytes], dict[str, int]]:
    """The wanted files (by name below the archived folder), each cut at max_bytes + 1 so the
    caller can tell it was cut, but for those of whole_only over max_bytes: their sizes,
    unread. Nothing else is held in memory, however much the agent wrote."""
    files: dict[str, bytes] = {}
    too_large: dict[str, int] = {}
    with tarfile.open(fileobj=io.BufferedReader(ChunkReader(chunks)), mode="r|") as tar:
        for member in tar:
            name = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if not member.isfile() or (wanted is not None and name not in wanted):
                continue
            if name in whole_only and member.size > max_bytes:
                too_large[name] = member.size
                continue
            handle = tar.extractfile(member)
            # Never more than the file holds: a read allocates all it may return up front.
            files[name] = handle.read(min(member.size, max_bytes + 1)) if handle else b""
    return files, too_large
