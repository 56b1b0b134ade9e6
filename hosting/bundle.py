"""A git bundle from a container, read before git touches it: it is the agent's output, so a
hostile one must cost the worker next to nothing.

Read here, in plain Python: the file's size (capped before a byte is read), the header
(signature, prerequisites, the one ref ``HEAD``) and the pack's object headers. Each object's
size is known from its header before it is inflated, and inflating stops at that size, so a few
megabytes of compressed zeros claiming (or hiding) gigabytes are refused after a few bytes of
work instead of the tens of CPU seconds git's index-pack would spend on them.

Formats: gitformat-bundle(5) (v2 and v3) and gitformat-pack(5) (version 2 and 3 packs).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import HostingError, Refusal

_V2 = b"# v2 git bundle\n"
_V3 = b"# v3 git bundle\n"
_HEX = {20: re.compile(rb"^[0-9a-f]{40}$"), 32: re.compile(rb"^[0-9a-f]{64}$")}
_HEADER_MAX = 64 * 1024  # a header names a few commits; anything longer is not ours
_CHUNK = 64 * 1024
# Pack object types (gitformat-pack): commit, tree, blob, tag; offset and reference deltas.
_OFS_DELTA, _REF_DELTA = 6, 7
_TYPES = {1, 2, 3, 4, _OFS_DELTA, _REF_DELTA}


@dataclass(frozen=True)
class BundleLimits:
    max_bytes: int  # the bundle file
    max_objects: int
    max_object_bytes: int  # one object, inflated (a delta: the object it makes)
    max_total_bytes: int  # every object, inflated


@dataclass(frozen=True)
class BundleContents:
    tip: str  # the commit HEAD names
    prerequisites: tuple[str, ...]
    hash_size: int  # 20 (SHA-1) or 32 (SHA-256)
    pack_offset: int  # where the pack starts in the file
    objects: int
    inflated_bytes: int


def _refuse(why: str) -> HostingError:
    return HostingError(Refusal.GIT_FAILED, f"The agent's commits could not be used: {why}.")


def _header_parse(data: bytes) -> tuple[int, tuple[str, ...], str, int]:
    """(hash size, prerequisites, tip, pack offset) from a bundle's header."""
    if not data.startswith((_V2, _V3)):
        raise _refuse("the file is not a git bundle")
    end = data.find(b"\n\n", 0, _HEADER_MAX)
    if end == -1:
        raise _refuse("the bundle's header does not end")
    hash_size, prerequisites, refs = 20, [], []
    for line in data[len(_V2) : end].split(b"\n"):
        if line.startswith(b"@"):
            key, _, value = line[1:].partition(b"=")
            if key == b"object-format" and value in (b"sha1", b"sha256"):
                hash_size = 20 if value == b"sha1" else 32
            else:
                raise _refuse("the bundle asks for a capability this server does not read")
        elif line.startswith(b"-"):
            prerequisites.append(line[1:].split(b" ", 1)[0])
        else:
            oid, _, name = line.partition(b" ")
            refs.append((oid, name))
    oids = [*prerequisites, *(oid for oid, _ in refs)]
    if not all(_HEX[hash_size].match(oid) for oid in oids):
        raise _refuse("the bundle's header names an object id that is not one")
    if [name for _, name in refs] != [b"HEAD"]:
        raise _refuse("the bundle must hold exactly the ref HEAD")
    return hash_size, tuple(p.decode() for p in prerequisites), refs[0][0].decode(), end + 2


def _entry_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(type, size, position after the header) of the pack entry at ``pos``."""
    byte = data[pos]
    kind, size, shift, pos = (byte >> 4) & 7, byte & 0x0F, 4, pos + 1
    while byte & 0x80:
        if shift > 70:
            raise _refuse("an object's size is malformed")
        byte = data[pos]
        size |= (byte & 0x7F) << shift
        shift, pos = shift + 7, pos + 1
    return kind, size, pos


def _delta_base_skip(data: bytes, pos: int, kind: int, hash_size: int) -> int:
    if kind == _REF_DELTA:
        return pos + hash_size
    while data[pos] & 0x80:  # the offset of an ofs-delta's base: a varint
        pos += 1
    return pos + 1


def _inflate(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    """The first bytes of the zlib stream at ``pos`` (enough for a delta's header) and the
    position after it. The stream must inflate to exactly ``size`` bytes; inflating stops as
    soon as it would give more."""
    stream = zlib.decompressobj()
    produced, head = 0, b""
    while not stream.eof:
        if pos >= len(data):
            raise _refuse("the pack ends inside an object")
        chunk = data[pos : pos + _CHUNK]
        out = stream.decompress(chunk, size - produced + 1)  # at most one byte too many
        produced += len(out)
        if produced > size:
            raise _refuse("an object inflates to more than its header says")
        if len(head) < 32:
            head += out[: 32 - len(head)]
        pos += len(chunk) - len(stream.unused_data) if stream.eof else len(chunk)
    if produced != size:
        raise _refuse("an object inflates to less than its header says")
    return head, pos


def _delta_result_size(head: bytes) -> int:
    """A delta's header: the base's size, then the size of the object it makes (varints)."""
    values, value, shift = [], 0, 0
    for byte in head:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            value, shift = 0, 0
            if len(values) == 2:
                return values[1]
    raise _refuse("a delta's header is malformed")


def _pack_scan(data: bytes, start: int, hash_size: int, limits: BundleLimits) -> tuple[int, int]:
    """(objects, inflated bytes) of the pack at ``start``, within ``limits``."""
    if data[start : start + 4] != b"PACK" or len(data) < start + 12:
        raise _refuse("the bundle holds no pack")
    version, count = struct.unpack(">II", data[start + 4 : start + 12])
    if version not in (2, 3):
        raise _refuse(f"pack version {version} is unknown")
    if count > limits.max_objects:
        raise _refuse(f"it holds {count:,} objects; at most {limits.max_objects:,} are pushed")
    pos, total = start + 12, 0
    for _ in range(count):
        kind, size, pos = _entry_header(data, pos)
        if kind not in _TYPES:
            raise _refuse("the pack holds an object of no known type")
        if kind in (_OFS_DELTA, _REF_DELTA):
            pos = _delta_base_skip(data, pos, kind, hash_size)
        _object_size_check(size, limits)  # a delta's own data: before inflating it
        head, pos = _inflate(data, pos, size)
        made = _delta_result_size(head) if kind in (_OFS_DELTA, _REF_DELTA) else size
        _object_size_check(made, limits)
        total += made
        if total > limits.max_total_bytes:
            raise _refuse(
                f"its objects come to more than {limits.max_total_bytes:,} bytes once "
                "unpacked, the most this server pushes"
            )
    return count, total


def _object_size_check(size: int, limits: BundleLimits) -> None:
    if size > limits.max_object_bytes:
        raise _refuse(
            f"it holds an object (a file, most likely) of {size:,} bytes; files over "
            f"{limits.max_object_bytes:,} bytes are not pushed (GitHub refuses files over "
            "100 MiB)"
        )


def bundle_read(*, path: Path, limits: BundleLimits) -> BundleContents:
    """What the bundle at ``path`` holds, or HostingError(GIT_FAILED) saying which limit or
    rule it breaks. Nothing is read from a file over ``limits.max_bytes``."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _refuse(
            f"the bundle is {size:,} bytes; at most {limits.max_bytes:,} are read "
            "(AGENT_BUNDLE_MAX_BYTES)"
        )
    data = path.read_bytes()
    hash_size, prerequisites, tip, offset = _header_parse(data)
    try:
        objects, inflated = _pack_scan(data, offset, hash_size, limits)
    except IndexError:
        raise _refuse("the pack ends inside an object's header") from None
    except zlib.error:
        raise _refuse("an object in the pack is corrupt") from None
    return BundleContents(tip, prerequisites, hash_size, offset, objects, inflated)
