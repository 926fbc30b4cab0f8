"""Reusable buffers for the data path.

Publish reads windows and restore decodes chunks into buffers taken from a pool and given
back when their bytes are done with. On virtual machines the first touch of freshly allocated
memory costs page faults that rival the work itself; a pool pays them once. The pool's size
is also what bounds the memory of a pipeline.
"""

from __future__ import annotations

import anyio


class BufferPool:
    """``count`` buffers of ``size`` bytes; ``acquire`` waits while all are in use.

    Buffers are made on first use, so a small job never allocates the whole pool.
    """

    def __init__(self, size: int, count: int) -> None:
        self.size = size
        self._free: list[bytearray] = []
        self._available = anyio.Semaphore(count)

    async def acquire(self) -> bytearray:
        await self._available.acquire()
        return self._take_free()

    def take(self) -> bytearray | None:
        """A buffer if one is free now, else None (the caller may have work to hand on
        before it waits in :meth:`acquire`)."""
        try:
            self._available.acquire_nowait()
        except anyio.WouldBlock:
            return None
        return self._take_free()

    def _take_free(self) -> bytearray:
        """A buffer given back earlier, or a new one (the semaphore is already taken)."""
        return self._free.pop() if self._free else bytearray(self.size)

    def release(self, buffer: bytearray) -> None:
        self._free.append(buffer)
        self._available.release()
