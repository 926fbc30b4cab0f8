"""The chunk codec: name a chunk by its digest, store it as one zstd frame, check it on read.

* digest: xxh3-128 of the plain bytes, as 32 lower-case hex characters;
* stored form: exactly one zstd frame with the plain length in its header, nothing after it;
* zero chunks (every byte zero) are never stored: the manifest marks them and restore leaves
  a hole, because VM images are often more than half zeros.

Decoding checks, in order: the stored length, the frame header's content size (before any
decompression, so a hostile frame cannot make us allocate more than the manifest promised),
that the frame ends exactly where the stored bytes end (walking its block headers, so a
frame followed by anything, even bytes the manifest's stored length counts, is refused by
every way of decoding alike), a clean decompression, and finally the digest of the plain
bytes. :func:`decode_chunk` and :func:`decode_chunk_into` share every one of these checks.

``zstandard`` compressor objects must not be shared by threads at once, so the caller passes
one in (the engine keeps one per worker thread).
"""

from __future__ import annotations

from typing import Final

import xxhash
import zstandard

from blobrep.errors import ChunkCorruptError, InvalidParameterError

#: zstd levels blobrep accepts. The default, 2, stores real disk images 5 % smaller than
#: level 1 for about 7 % more compression time on two cores; level 3 saves 4 % more for 25 %
#: more (bench/pipeline.py, docs/architecture.md).
MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 19
DEFAULT_LEVEL: Final = 2

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


#: Zero runs at least this long inside a chunk are left as holes on restore.
MIN_HOLE: Final = 32 * 1024
# Every zero run of MIN_HOLE bytes holds a whole block of half that size aligned to the
# buffer's start, so only those blocks need checking; a page steps the run's ends out.
_BLOCK: Final = MIN_HOLE // 2
_ZERO_BLOCK: Final = bytes(_BLOCK)
_PAGE: Final = 4096
_ZERO_PAGE_BYTES: Final = bytes(_PAGE)


def _zero_run_start(data: bytes | bytearray, end: int, floor: int) -> int:
    """Where the zeros that end at ``end`` start (not before ``floor``)."""
    start = end
    while start - _PAGE >= floor and data.startswith(_ZERO_PAGE_BYTES, start - _PAGE):
        start -= _PAGE
    piece = data[max(floor, start - _PAGE) : start]
    return start - (len(piece) - len(piece.rstrip(b"\0")))


def _zero_run_end(data: bytes | bytearray, start: int, size: int) -> int:
    """Where the zeros that start at ``start`` end (not after ``size``)."""
    end = start
    while end + _PAGE <= size and data.startswith(_ZERO_PAGE_BYTES, end):
        end += _PAGE
    piece = data[end : min(size, end + _PAGE)]
    return end + (len(piece) - len(piece.lstrip(b"\0")))


def data_extents(data: bytes | bytearray, size: int | None = None) -> list[tuple[int, int]]:
    """The ``(start, end)`` ranges of ``data[:size]`` that must be written to a zero-filled file.

    Zero runs of at least :data:`MIN_HOLE` bytes are left out, so a restore does not write
    (and the file system does not allocate) the zeros that sit inside mixed chunks, at the
    edges of free space. Finding them is cheap: only the aligned blocks of half that size are
    compared with zeros (a comparison ends at the first byte that is not), and a zero block
    is widened to its whole run. Searching every offset for a run instead (``bytes.find``)
    cost 157 ms per 232 MiB of a real disk's data, this 9 ms.
    """
    extents: list[tuple[int, int]] = []
    size = len(data) if size is None else min(size, len(data))
    start = 0
    block = 0
    while block + _BLOCK <= size:
        if not data.startswith(_ZERO_BLOCK, block):
            block += _BLOCK
            continue
        hole = _zero_run_start(data, block, start)
        end = _zero_run_end(data, block + _BLOCK, size)
        if end - hole >= MIN_HOLE:
            if hole > start:
                extents.append((start, hole))
            start = end
        block = -(-end // _BLOCK) * _BLOCK
    if start < size:
        extents.append((start, size))
    return extents


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


_BLOCK_HEADER: Final = 3
_BLOCK_RLE: Final = 1
_BLOCK_RESERVED: Final = 3
_CHECKSUM: Final = 4


def frame_end(frame: bytes | memoryview) -> int:
    """Where the zstd frame at the start of ``frame`` ends, from its header and block headers.

    Walks the blocks without decompressing them (a chunk has a few dozen), so the cost is
    nothing next to decoding.

    Raises:
        ValueError: the header or a block header is malformed, or the frame is cut short.
    """
    try:
        position = zstandard.frame_header_size(frame)
        has_checksum = zstandard.get_frame_parameters(frame).has_checksum
    except zstandard.ZstdError as exc:
        raise ValueError(f"not a zstd frame ({exc})") from exc
    view = memoryview(frame)
    while True:
        if position + _BLOCK_HEADER > len(view):
            raise ValueError(f"frame is cut short at byte {position} (a block header is missing)")
        header = int.from_bytes(view[position : position + _BLOCK_HEADER], "little")
        last, kind, size = header & 1, (header >> 1) & 3, header >> 3
        if kind == _BLOCK_RESERVED:
            raise ValueError(f"block at byte {position} has the reserved type")
        position += _BLOCK_HEADER + (1 if kind == _BLOCK_RLE else size)
        if position > len(view):
            raise ValueError(f"frame is cut short: a block ends at byte {position}, past the data")
        if last:
            break
    if has_checksum:
        position += _CHECKSUM
        if position > len(view):
            raise ValueError("frame is cut short: its checksum is missing")
    return position


def _check_header(
    frame: bytes | memoryview, digest: str, length: int, stored_length: int, replica: str
) -> None:
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
        end = frame_end(frame)
    except ValueError as exc:
        raise ChunkCorruptError(digest, replica, str(exc)) from exc
    if end != len(frame):
        raise ChunkCorruptError(
            digest, replica, f"{len(frame) - end} byte(s) follow the zstd frame, which ends at byte {end}"
        )


def _check_digest(plain: bytes | memoryview, digest: str, replica: str) -> None:
    actual = digest_of(plain)
    if actual != digest:
        raise ChunkCorruptError(digest, replica, f"plain bytes hash to {actual}")


def decode_chunk(
    frame: bytes | memoryview,
    *,
    digest: str,
    length: int,
    stored_length: int,
    decompressor: zstandard.ZstdDecompressor,
    replica: str,
) -> bytes:
    """Decode and verify one stored chunk; return its plain bytes.

    Strict: a frame followed by any extra byte is refused too.

    Raises:
        ChunkCorruptError: naming the digest and ``replica``, if anything does not match.
    """
    _check_header(frame, digest, length, stored_length, replica)
    try:
        plain = decompressor.decompress(frame, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise ChunkCorruptError(digest, replica, f"cannot decompress ({exc})") from exc
    if len(plain) != length:
        raise ChunkCorruptError(
            digest, replica, f"decompressed to {len(plain)} bytes, manifest says {length}"
        )
    _check_digest(plain, digest, replica)
    return plain


def decode_chunk_into(
    frame: bytes | memoryview,
    out: memoryview,
    *,
    digest: str,
    length: int,
    stored_length: int,
    decompressor: zstandard.ZstdDecompressor,
    replica: str,
) -> memoryview:
    """Decode and verify one stored chunk into ``out``; return the view of its plain bytes.

    The restore path uses this with reused buffers: a fresh multi-megabyte allocation per
    chunk costs page faults that, on a virtual machine, rival the decompression itself. The
    stored length pins the frame's size, so bytes after the frame cannot go unnoticed.

    Raises:
        ChunkCorruptError: naming the digest and ``replica``, if anything does not match.
    """
    _check_header(frame, digest, length, stored_length, replica)
    if len(out) < length:
        raise ValueError(f"buffer of {len(out)} bytes cannot hold a chunk of {length}")
    target = out[:length]
    got = 0
    try:
        reader = decompressor.stream_reader(frame)
        while got < length:
            step = reader.readinto(target[got:])
            if step == 0:
                break
            got += step
    except zstandard.ZstdError as exc:
        raise ChunkCorruptError(digest, replica, f"cannot decompress ({exc})") from exc
    if got != length:
        raise ChunkCorruptError(digest, replica, f"decompressed to {got} bytes, manifest says {length}")
    _check_digest(target, digest, replica)
    return target
