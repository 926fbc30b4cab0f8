"""Shared concurrency helpers of the engine: task groups that raise plain errors, worker sizing,
and per-thread codec objects.

``anyio`` task groups raise :class:`ExceptionGroup`; a user should see the one error that
stopped the work ("chunk X is corrupt in replica Y"), not a group of it and the cancellations
it caused. :func:`task_group` unwraps a group whose errors are all blobrep errors to the first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import anyio
import zstandard
from anyio.abc import TaskGroup

from blobrep.core.codec import new_compressor, new_decompressor
from blobrep.errors import BlobrepError


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


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """An anyio task group that re-raises its first :class:`BlobrepError` unwrapped.

    Groups holding anything else (a bug, a KeyboardInterrupt) propagate unchanged.
    """
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if leaves and all(isinstance(leaf, BlobrepError) for leaf in leaves):
            raise leaves[0] from None
        raise


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
