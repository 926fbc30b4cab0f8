"""Zero runs: where a disk image's chunks should end.

A filesystem allocates and changes an image in blocks of :data:`BLOCK_SIZE` bytes at fixed
offsets, and leaves what it never wrote as zeros (holes, in a sparse file). Chunk boundaries
that fall where data meets free space stay put from one version of an image to the next,
whatever changes elsewhere. :func:`zero_block_runs` finds the runs of whole, aligned, all-zero
blocks; :func:`cut_at_zero_runs` cuts a window by the rule of
:class:`blobrep.core.chunking.BoundaryFinder` for chunking ended by zero runs:

* a zero run (at least ``zero_run`` bytes) that starts where a chunk starts is zero chunks;
* otherwise a chunk is FastCDC's, cut short where the first zero run begins that starts at
  least ``min_size`` into the chunk, or that is long (at least ``max(avg_size, zero_run)``)
  wherever it starts. Shorter runs near a chunk's start are data of that chunk, so small
  files between bits of free space share chunks instead of making a chunk each.

Each chunk is decided by the bytes from its own start, as with FastCDC alone, so the cuts are
the same whatever the windows. Blocks are aligned to the blob's own offsets (``offset`` is
where the window starts in the blob).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

#: The block grid zero runs are found on: the default block size of ext4, XFS and NTFS, and the page size.
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


def _zero_pieces(length: int, step: int) -> list[int]:
    return [step] * (length // step) + ([length % step] if length % step else [])


def cut_at_zero_runs(
    buffer: bytes | bytearray,
    size: int,
    *,
    final: bool,
    offset: int,
    zeros: int,
    sizes: tuple[int, int, int, int],
    content_cuts: Callable[[memoryview], Iterable[int]],
) -> list[int]:
    """The complete chunks at the start of ``buffer[:size]``, followed by ``zeros`` known zeros.

    ``sizes`` is ``(min_size, avg_size, max_size, zero_run)``; ``content_cuts`` gives FastCDC's
    piece lengths over a view (the last one possibly cut short by the view's end). Unless
    ``final``, what follows the returned chunks leads the next window; after known zeros it
    lies inside the zero run they end (the caller may carry zeros rather than bytes).
    """
    min_size, avg_size, max_size, zero_run = sizes
    long_run = max(avg_size, zero_run)
    view = memoryview(buffer)[:size]
    found, scanned = zero_block_runs(buffer, size, offset)
    if zeros:
        if found and found[-1][1] == size:
            found[-1] = (found[-1][0], size + zeros)
        else:
            found.append((size, size + zeros))
        scanned = size + zeros
    # Runs too short to count, unless they may still grow (they reach the unscanned end).
    runs = [(start, end) for start, end in found if end - start >= zero_run or (end == scanned and not final)]
    data_end = size if final else min(scanned, size)
    lengths: list[int] = []
    chunk = 0  # where the next chunk starts
    index = 0  # the first run that starts at or after ``chunk``
    while True:
        while index < len(runs) and runs[index][0] < chunk:
            index += 1
        if index < len(runs) and runs[index][0] == chunk:
            start, end = runs[index]
            if end == scanned and not final:
                if end - start < zero_run:
                    return lengths  # not yet known to be a run
                # Whole zero chunks while a run's worth is left: the next window sees a run too.
                return lengths + [max_size] * ((end - start - zero_run) // max_size)
            lengths += _zero_pieces(end - start, max_size)
            chunk = end
            continue
        if chunk >= data_end:
            return lengths
        cut = _next_cut(
            view, chunk, data_end, runs, index, final, scanned, (min_size, long_run, zero_run), content_cuts
        )
        if cut is None:
            return lengths
        taken, chunk = cut
        lengths += taken


def _next_cut(
    view: memoryview,
    chunk: int,
    data_end: int,
    runs: list[tuple[int, int]],
    index: int,
    final: bool,
    scanned: int,
    bounds: tuple[int, int, int],
    content_cuts: Callable[[memoryview], Iterable[int]],
) -> tuple[list[int], int] | None:
    """FastCDC's chunks from ``chunk`` on, up to the first zero run that ends one early.

    Returns their lengths and where the next chunk starts (at a run, or after the last
    chunk that is certain); None if not even the first chunk is certain yet.
    """
    min_size, long_run, zero_run = bounds
    lengths: list[int] = []
    start = chunk
    for length in content_cuts(view[chunk:data_end]):
        end = start + length
        # The last piece before unread bytes may go on, and so may the runs in it.
        open_tail = end == data_end and not final
        reach = data_end + 1 if open_tail else end
        while index < len(runs) and runs[index][0] <= start:
            index += 1
        probe = index
        while probe < len(runs) and runs[probe][0] < reach:
            run_start, run_end = runs[probe]
            known = run_end - run_start
            if known >= long_run or (run_start - start >= min_size and known >= zero_run):
                return [*lengths, run_start - start], run_start
            if run_end == scanned and not final:
                return (lengths, start) if lengths else None  # it may yet grow long enough
            probe += 1
        if open_tail:
            return (lengths, start) if lengths else None
        lengths.append(length)
        start = end
        while index < len(runs) and runs[index][0] < start:
            index += 1
        if index < len(runs) and runs[index][0] == start:
            return lengths, start  # a run starts where this chunk ends: zero chunks next
    return lengths, start
