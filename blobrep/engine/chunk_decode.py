"""Decoding stored frames on a worker thread: the part of the read path that runs off the loop.

:mod:`blobrep.engine.chunk_read` fetches frames and decides what to do when one is bad; the
functions here decode and verify them (by the one decoder,
:func:`blobrep.core.codec.decode_chunk_into` or :func:`~blobrep.core.codec.decode_chunk`) and
hand the plain bytes to the caller's consumer in the same thread hop. A run of frames read
with one ranged request is decoded in one hop too, each frame checked on its own, so a bad
frame costs only its own chunk a second read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from blobrep.core.codec import decode_chunk, decode_chunk_into
from blobrep.engine._concurrency import thread_decompressor
from blobrep.errors import ChunkCorruptError

if TYPE_CHECKING:
    from blobrep.core.manifest import ChunkRef

Consumer = Callable[[memoryview], None]
"""Runs on the worker thread with a chunk's verified plain bytes, right after decoding."""


class ConsumerError(Exception):
    """Carries an error of the caller's ``then`` past the fault handling, which it is not."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def where(ref: ChunkRef) -> str:
    """Where a chunk's frame is, for the reason of an error about it: its pack, if in one."""
    return "" if ref.pack is None else f" (its frame at {ref.offset} in pack {ref.pack.digest})"


def decode_frame(
    frame: bytes | memoryview, ref: ChunkRef, replica: str, buffer: bytearray | None, then: Consumer | None
) -> bytes | memoryview:
    """Decode and verify ``frame``, then hand the plain bytes to ``then``.

    Raises:
        ChunkCorruptError: ``frame`` is not the chunk (naming ``replica`` and the pack).
        ConsumerError: carrying what ``then`` raised.
    """
    assert ref.digest is not None
    decompressor = thread_decompressor()
    digest, length, stored = ref.digest, ref.length, ref.stored_length
    plain: bytes | memoryview
    try:
        if buffer is None:
            plain = decode_chunk(
                frame,
                digest=digest,
                length=length,
                stored_length=stored,
                decompressor=decompressor,
                replica=replica,
            )
        else:
            plain = decode_chunk_into(
                frame,
                memoryview(buffer),
                digest=digest,
                length=length,
                stored_length=stored,
                decompressor=decompressor,
                replica=replica,
            )
    except ChunkCorruptError as exc:
        if ref.pack is None:
            raise
        raise ChunkCorruptError(ref.digest, replica, exc.reason + where(ref)) from exc
    if then is not None:
        try:
            then(memoryview(plain))
        except BaseException as exc:
            raise ConsumerError(exc) from exc
    return plain


def decode_run(
    data: bytes,
    refs: Sequence[ChunkRef],
    replica: str,
    buffers: Sequence[bytearray | None] | None = None,
    thens: Sequence[Consumer | None] | None = None,
    *,
    start: int | None = None,
) -> list[ChunkCorruptError | None]:
    """Decode the frames of ``refs``, which lie in ``data`` (read from the pack's offset
    ``start``, by default the first frame's), each into its buffer and on to its consumer if
    given; per chunk, None if it was served, or why its frame is bad.

    Raises:
        ConsumerError: carrying what a consumer raised (the chunks after it are not decoded).
    """
    view = memoryview(data)
    base = refs[0].offset if start is None else start
    faults: list[ChunkCorruptError | None] = []
    for position, ref in enumerate(refs):
        buffer = None if buffers is None else buffers[position]
        then = None if thens is None else thens[position]
        frame = view[ref.offset - base : ref.offset - base + ref.stored_length]
        try:
            decode_frame(frame, ref, replica, buffer, then)
        except ChunkCorruptError as exc:
            faults.append(exc.with_traceback(None))
        else:
            faults.append(None)
    return faults
