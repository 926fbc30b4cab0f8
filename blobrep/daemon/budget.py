"""A budget of bytes shared by every download, so the daemon's memory does not grow with clients.

Each download holds the chunk it sends and the ones it reads ahead; two hundred clients
reading one disk would hold two hundred chunks (a third of a GiB) however fast the machine
could serve them, and the memory would go with the number of clients, not with the work. So
every chunk a download reads takes its plain length from one :class:`ByteBudget` first, and
gives it back once the chunk is sent: the bytes of chunks held by all downloads together stay
under the budget, and a download past it waits its turn.

Turns are strictly first come, first served. A download asks for its chunks in order, so
any chunk granted to it comes after its earlier chunks were granted; the chunk it sends next
is therefore always granted before its read-ahead, and a download never waits while holding
the budget that would let another go on. A request larger than the whole budget is granted
the whole budget (it waits until every other chunk is sent).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import anyio

from blobrep.errors import InvalidParameterError


@dataclass(eq=False, slots=True)
class _Waiter:
    size: int
    granted: anyio.Event = field(default_factory=anyio.Event)


class ByteBudget:
    """Bytes handed out first come, first served, up to ``capacity`` at once; see the module
    docstring. Used from one event loop."""

    __slots__ = ("_free", "_waiting", "capacity", "waits")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise InvalidParameterError(f"a byte budget of {capacity} holds nothing: give 1 byte or more")
        self.capacity = capacity
        self._free = capacity
        self._waiting: deque[_Waiter] = deque()
        self.waits = 0
        """Requests that had to wait for their turn (for ``/metrics`` and benchmarks)."""

    @property
    def held(self) -> int:
        """Bytes handed out now."""
        return self.capacity - self._free

    async def acquire(self, size: int) -> int:
        """Wait for ``size`` bytes (at most the capacity) and return how many were taken: what
        :meth:`release` must give back. Cancelled while waiting, it takes nothing."""
        size = max(0, min(size, self.capacity))
        if not self._waiting and size <= self._free:
            self._free -= size
            return size
        waiter = _Waiter(size)
        self._waiting.append(waiter)
        self.waits += 1
        try:
            await waiter.granted.wait()
        except BaseException:
            if waiter.granted.is_set():
                self.release(size)  # granted as it was cancelled: give it back
            else:
                self._waiting.remove(waiter)
                self._grant()  # it may have been first in line
            raise
        return size

    def release(self, size: int) -> None:
        """Give back ``size`` bytes that :meth:`acquire` returned."""
        self._free += size
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._waiting[0].size <= self._free:
            waiter = self._waiting.popleft()
            self._free -= waiter.size
            waiter.granted.set()
