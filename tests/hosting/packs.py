"""Git bundles written by hand, as a hostile agent could: objects whose headers claim (or hide)
gigabytes, built cheaply (gitformat-bundle(5), gitformat-pack(5), RFC 1950/1951)."""

from __future__ import annotations

import hashlib
import struct
import zlib

_MIB = 1 << 20


def _entry_header(kind: int, size: int) -> bytes:
    out = bytearray()
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def zeros_deflated(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes (a multiple of 1 MiB), made from one flushed
    deflate block repeated: a 4 GiB stream costs a second to build, not a minute."""
    assert size % _MIB == 0
    assert size > 0
    compressor = zlib.compressobj(9)
    first = compressor.compress(bytes(_MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(bytes(_MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_empty_block = b"\x03\x00"  # BFINAL=1, fixed Huffman codes, end of block
    adler = ((size % 65521) << 16) | 1  # Adler-32 of zeros: A stays 1, B grows by 1 a byte
    return first + again * (size // _MIB - 1) + final_empty_block + struct.pack(">I", adler)


def bundle_with_blob(*, base: str, stream: bytes, declared: int) -> bytes:
    """A v2 bundle on top of ``base`` whose pack holds one blob: ``declared`` bytes by its
    header, ``stream`` as its data. Its HEAD names a commit it does not hold: what a limit must
    refuse is the blob, before git ever looks for that commit."""
    pack = b"PACK" + struct.pack(">II", 2, 1) + _entry_header(3, declared) + stream
    pack += hashlib.sha1(pack).digest()  # noqa: S324  (the pack format's own checksum)
    header = f"# v2 git bundle\n-{base}\n{'1' * 40} HEAD\n\n".encode()
    return header + pack
