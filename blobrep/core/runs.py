"""Which chunks one ranged read fetches together: frames that lie back to back in one pack.

A publish packs a version's new chunks in blob order, and the zero chunks between them are
stored nowhere, so a file write can fetch several chunks with one request and decode them in
one thread hop (:meth:`blobrep.engine.chunk_read.ReplicaSet.read_run`). Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from blobrep.core.manifest import ChunkRef


def read_run(chunks: Sequence[ChunkRef], first: int, max_chunks: int, max_bytes: int) -> list[int]:
    """The positions of the chunks one ranged read from ``chunks[first]``'s frame fetches: it
    and each later stored chunk whose frame follows the one before in the same pack (zero
    chunks between them are skipped: they are stored nowhere), up to ``max_chunks`` chunks
    and ``max_bytes`` of frames (the first always counts).
    """
    run = [first]
    size = chunks[first].stored_length
    for position in range(first + 1, len(chunks)):
        chunk = chunks[position]
        if chunk.is_zero:
            continue
        size += chunk.stored_length
        if len(run) >= max_chunks or size > max_bytes or not chunk.follows(chunks[run[-1]]):
            break
        run.append(position)
    return run
