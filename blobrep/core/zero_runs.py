"""Finding runs of zero blocks in a window: where a disk image's chunks should end.

A filesystem allocates and changes an image in blocks of :data:`BLOCK_SIZE` bytes at fixed
offsets, and leaves what it never wrote as zeros (holes, in a sparse file). Chunk boundaries
that fall where data meets a long zero run stay put from one version of an image to the
next, whatever changes elsewhere, so the chunker ends a data segment at every such run (see
:class:`blobrep.core.chunking.BoundaryFinder`).

Blocks are aligned to the blob's own offsets (``offset`` is where the window starts in the
blob), so the same bytes give the same runs whichever window they arrive in.
"""

from __future__ import annotations

from typing import Final

#: The block grid zero runs are found on: the block size of ext4, XFS, NTFS and VHD sectors' pages.
BLOCK_SIZE: Final = 4096
_ZERO_BLOCK: Final = bytes(BLOCK_SIZE)


def zero_block_runs(buffer: bytes | bytearray, length: int, offset: int) -> tuple[list[tuple[int, int]], int]:
    """The maximal runs of whole, aligned, all-zero blocks in ``buffer[:length]``.

    Returns the runs as ``(start, end)`` positions in the buffer, in order, and the end of the
    last whole block looked at: the bytes after it (less than a block) were not looked at, so
    a run ending there may go on.

    ``buffer`` is ``bytes`` or ``bytearray`` (not a memoryview) because ``startswith`` compares
    a block at C speed in place: about 30 ms per GiB.
    """
    position = (-offset) % BLOCK_SIZE
    last = length - BLOCK_SIZE
    runs: list[tuple[int, int]] = []
    run_start = -1
    starts_with = buffer.startswith
    while position <= last:
        # The first byte rules out almost every data block without a call.
        if buffer[position] == 0 and starts_with(_ZERO_BLOCK, position):
            if run_start < 0:
                run_start = position
        elif run_start >= 0:
            runs.append((run_start, position))
            run_start = -1
        position += BLOCK_SIZE
    scanned = min(position, length)
    if run_start >= 0:
        runs.append((run_start, scanned))
    return runs, scanned
