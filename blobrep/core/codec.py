"""The chunk codec: name a chunk by its digest, store it as one zstd frame, check it on read.

* digest: xxh3-128 of the plain bytes, as 32 lower-case hex characters;
* stored form: exactly one zstd frame with the plain length in its header, nothing after it;
* zero chunks (every byte zero) are never stored: the manifest marks them and restore leaves
  a hole, because VM images are often more than half zeros.

Decoding checks, in order: the stored length, the frame header's content size (before any
decompression, so a hostile frame cannot make us allocate more than the manifest promised),
a clean decompression with no trailing bytes, and finally the digest of the plain bytes.

``zstandard`` compressor objects must not be shared by threads at once, so the caller passes
one in (the engine keeps one per worker thread).
"""

from __future__ import annotations

from typing import Final

import xxhash
import zstandard

from blobrep.errors import ChunkCorruptError, InvalidParameterError

#: zstd levels blobrep accepts; 1 is the default (best speed for the ratio on VM images).
MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 19
DEFAULT_LEVEL: Final = 1

_ZERO_PAGE: Final = bytes(1 << 20)


def digest_of(data: bytes | bytearray | memoryview) -> str:
    """The chunk digest of ``data``: xxh3-128 as 32 lower-case hex characters."""
    return xxhash.xxh3_128_hexdigest(data)


def new_blob_hasher() -> xxhash.xxh3_128:
    """A streaming hasher for a whole blob, fed in order; same algorithm as chunks."""
    return xxhash.xxh3_128()


def is_zero(data: bytes | bytearray | memoryview) -> bool:
    """True if every byte of ``data`` is zero.

    Compares against a zero buffer piecewise (memcmp speed) and gives up at the first
    non-zero piece, so the usual non-zero chunk costs almost nothing.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    page = len(_ZERO_PAGE)
    # A quick look at the first bytes settles most non-zero chunks at once.
    head = min(size, 64)
    if view[:head].tobytes() != _ZERO_PAGE[:head]:
        return False
    for start in range(0, size, page):
        piece = view[start : start + page]
        if piece.tobytes() != _ZERO_PAGE[: len(piece)]:
            return False
    return True


def hash_zeros(hasher: xxhash.xxh3_128, length: int) -> None:
    """Feed ``length`` zero bytes to ``hasher`` without allocating them."""
    page = memoryview(_ZERO_PAGE)
    while length > 0:
        step = min(length, len(page))
        hasher.update(page[:step])
        length -= step


def validate_level(level: int) -> int:
    """Return ``level`` if blobrep accepts it as a zstd level, else raise."""
    if isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= MAX_LEVEL:
        raise InvalidParameterError(
            f"zstd level {level!r} is out of range: choose {MIN_LEVEL} to {MAX_LEVEL}"
            f" ({DEFAULT_LEVEL} is the default)"
        )
    return level


def new_compressor(level: int) -> zstandard.ZstdCompressor:
    """A compressor whose frames carry their content size (one per thread)."""
    return zstandard.ZstdCompressor(level=validate_level(level), write_content_size=True)


def new_decompressor() -> zstandard.ZstdDecompressor:
    """A decompressor (one per thread)."""
    return zstandard.ZstdDecompressor()


def encode_chunk(data: bytes | bytearray | memoryview, compressor: zstandard.ZstdCompressor) -> bytes:
    """The stored form of one chunk: a single zstd frame with its content size."""
    return compressor.compress(data)


def max_stored_length(length: int) -> int:
    """An upper bound on a chunk's stored length, used to reject hostile manifests.

    zstd's worst case is the input plus a small per-block overhead; this bound is looser
    than zstd's own but tight enough to stop absurd values.
    """
    return length + (length >> 7) + 1024


def decode_chunk(
    frame: bytes,
    *,
    digest: str,
    length: int,
    stored_length: int,
    decompressor: zstandard.ZstdDecompressor,
    replica: str,
) -> bytes:
    """Decode and verify one stored chunk; return its plain bytes.

    Raises:
        ChunkCorruptError: naming the digest and ``replica``, if anything does not match.
    """
    if len(frame) != stored_length:
        raise ChunkCorruptError(
            digest, replica, f"stored size is {len(frame)} bytes, manifest says {stored_length}"
        )
    try:
        content_size = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise ChunkCorruptError(digest, replica, f"not a zstd frame ({exc})") from exc
    if content_size != length:
        raise ChunkCorruptError(digest, replica, f"frame holds {content_size} bytes, manifest says {length}")
    try:
        plain = decompressor.decompress(frame, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise ChunkCorruptError(digest, replica, f"cannot decompress ({exc})") from exc
    if len(plain) != length:
        raise ChunkCorruptError(
            digest, replica, f"decompressed to {len(plain)} bytes, manifest says {length}"
        )
    actual = digest_of(plain)
    if actual != digest:
        raise ChunkCorruptError(digest, replica, f"plain bytes hash to {actual}")
    return plain
