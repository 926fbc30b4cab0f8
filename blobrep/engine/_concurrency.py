"""Shared concurrency helpers of the engine: task groups that raise plain errors, worker sizing,
and per-thread codec objects.

``anyio`` task groups raise :class:`ExceptionGroup`; a user should see the one error that
stopped the work ("chunk X is corrupt in replica Y"), not a group of it and the cancellations
it caused. :func:`task_group` never lets a group out: it raises one of its errors, unwrapped
(see :func:`task_group` for which one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.codec import new_compressor, new_decompressor
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    import zstandard
    from anyio.abc import TaskGroup


def _usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 2


#: Threads doing CPU work (hashing, chunking, compression) at once: one per usable core.
CPU_THREADS: Final = max(1, min(_usable_cores(), 16))
#: Tasks moving chunks at once: more than the cores, so I/O waits overlap CPU work.
IO_TASKS: Final = max(4, CPU_THREADS * 2)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found


def _first(leaves: list[BaseException], wanted: Callable[[BaseException], bool]) -> BaseException | None:
    return next((leaf for leaf in leaves if wanted(leaf)), None)


def representative(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one error of ``group`` that a caller should see, or None to keep the group.

    In order: an interruption (``KeyboardInterrupt``, ``SystemExit``: the user's or the
    process's wish beats any error); a non-blobrep exception (a bug, which must stay visible
    rather than hide behind the ordinary error it may have caused); the first
    :class:`BlobrepError`. Cancellations are never chosen: a group of nothing else is kept
    whole, for the cancel scope that caused them to take apart.
    """
    leaves = _leaves(group)
    return (
        _first(leaves, lambda leaf: isinstance(leaf, (KeyboardInterrupt, SystemExit)))
        or _first(leaves, lambda leaf: isinstance(leaf, Exception) and not isinstance(leaf, BlobrepError))
        or _first(leaves, lambda leaf: isinstance(leaf, BlobrepError))
    )


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """An anyio task group that raises one error of its group, unwrapped (:func:`representative`).

    A face therefore never meets an exception group: it sees a blobrep error (one line), an
    interruption, or the bug itself. The error keeps its own cause; one without a cause is
    chained from the group, so a debug traceback still shows every error the tasks raised.
    """
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as group:
        chosen = representative(group)
        if chosen is None:
            raise
        if chosen.__cause__ is None:
            raise chosen from group
        # Its own cause (an OSError, a sqlite3 error) says more than the group would.
        raise chosen  # noqa: B904


class _Codecs(threading.local):
    def __init__(self) -> None:
        self.compressors: dict[int, zstandard.ZstdCompressor] = {}
        self.decompressor: zstandard.ZstdDecompressor | None = None


_codecs = _Codecs()


def thread_compressor(level: int) -> zstandard.ZstdCompressor:
    """This thread's compressor for ``level`` (zstd objects are not shared across threads)."""
    compressor = _codecs.compressors.get(level)
    if compressor is None:
        compressor = _codecs.compressors[level] = new_compressor(level)
    return compressor


def thread_decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor."""
    if _codecs.decompressor is None:
        _codecs.decompressor = new_decompressor()
    return _codecs.decompressor
