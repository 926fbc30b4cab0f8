"""A store that wraps a store and serves ``get`` no faster than a set bandwidth.

Cloud object stores cap the throughput of a single blob (tens of MiB/s); a region's replicas
are then the bottleneck of a deployment storm, which is what replica selection is for. This
wrapper models that cap for benchmarks and tests: a token bucket per wrapped store, charged
with the bytes each ``get`` returns. Other operations pass straight through.

The bucket is a reservation scheme rather than a loop of waits: a read takes its bytes from
the bucket at once, possibly driving it into debt, and sleeps until the refill has paid the
debt back. Each read is charged after every read before it, so reads finish in the order
they were charged (first in, first out) and the store delivers ``bytes_per_second`` in total
however many readers share it. A read cancelled while it waits keeps its charge: the bytes
were on the wire, and refunding them would let later arrivals overtake earlier waiters.

Time comes from :func:`anyio.current_time` and waits from :func:`anyio.sleep_until`, so the
wrapper follows whatever clock the event loop runs on.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from blobrep.storage.base import ObjectInfo, Payload, Store

#: Without an explicit burst, the bucket holds this many seconds' worth of bytes.
DEFAULT_BURST_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ThrottleStatistics:
    """What a throttled store has served so far."""

    bytes_served: int
    """Bytes returned by ``get``."""
    requests: int
    """Calls of ``get`` that returned bytes."""
    waited_seconds: float
    """Time the reads spent waiting for the bucket, summed over the reads."""


class ThrottledStore:
    """Wraps ``inner``; ``get`` returns no more than ``bytes_per_second`` on average.

    Args:
        inner: the store that holds the data.
        bytes_per_second: the sustained rate.
        burst: bytes the bucket holds when full (it starts full); a read larger than this
            is still served, after the time its size costs. Defaults to 50 ms of the rate.
        name: the name in messages; the inner store's by default.

    Raises:
        InvalidParameterError: if the rate is not a positive finite number or ``burst`` is
            negative.
    """

    def __init__(
        self, inner: Store, bytes_per_second: float, *, burst: int | None = None, name: str | None = None
    ) -> None:
        if isinstance(bytes_per_second, bool) or not (
            isinstance(bytes_per_second, int | float) and 0 < bytes_per_second < math.inf
        ):
            raise InvalidParameterError(
                f"throttle rate {bytes_per_second!r} must be a positive number of bytes per second"
            )
        if burst is None:
            burst = int(bytes_per_second * DEFAULT_BURST_SECONDS)
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
            raise InvalidParameterError(f"throttle burst {burst!r} must be a whole number of bytes >= 0")
        self.inner = inner
        self.rate = float(bytes_per_second)
        self.burst = burst
        self._name = name or inner.name
        self._tokens = float(burst)
        self._updated: float | None = None
        self._bytes = 0
        self._requests = 0
        self._waited = 0.0

    @property
    def name(self) -> str:
        return self._name

    def statistics(self) -> ThrottleStatistics:
        """A snapshot of the bytes served and the time spent waiting."""
        return ThrottleStatistics(self._bytes, self._requests, self._waited)

    def _reserve(self, size: int, now: float) -> float:
        """Charge ``size`` bytes at ``now``; return the time at which they are paid for."""
        if self._updated is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= size
        return now if self._tokens >= 0 else now - self._tokens / self.rate

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = await self.inner.get(key, offset, length)
        now = anyio.current_time()
        # Nothing may await between reserving and sleeping, or the order of waiters would
        # no longer be the order of their charges.
        deadline = self._reserve(len(data), now)
        self._bytes += len(data)
        self._requests += 1
        if deadline > now:
            try:
                await anyio.sleep_until(deadline)
            finally:
                self._waited += max(0.0, min(anyio.current_time(), deadline) - now)
        return data

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        await self.inner.put(key, data, if_absent=if_absent)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def delete(self, key: str) -> bool:
        return await self.inner.delete(key)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        async for key in self.inner.list(prefix):
            yield key

    async def stat(self, key: str) -> ObjectInfo:
        return await self.inner.stat(key)

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        return await self.inner.stat_many(keys)

    async def sync(self) -> None:
        await self.inner.sync()

    async def sweep_temporaries(
        self, prefix: str = "", *, older_than: float, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        return await self.inner.sweep_temporaries(prefix, older_than=older_than, dry_run=dry_run)
