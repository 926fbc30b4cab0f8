"""Progress of a copy into regions, written to the catalog as it goes.

Replication and a version created from another one both copy stored bytes into regions, and
both let a user watch that in ``show`` (a region ``Replicating`` at some percent) as well as on
a progress bar. The engine reports progress many times a second; the catalog is written at
most every :data:`STATUS_INTERVAL` seconds with the latest report per region, by a task that
runs beside the copy (:func:`status_writing`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.gallery import RegionStatus, ReplicationState
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    from blobrep.engine.replicate_state import RegionProgress

#: Seconds between catalog writes of replication progress.
STATUS_INTERVAL: Final = 0.5

ReplicationProgress = Callable[["RegionProgress"], None]
"""Called on the event loop as regions advance (batched), for progress bars."""

StatusWrite = Callable[[RegionStatus], Awaitable[None]]
"""Records one region's status in the catalog."""


def copied_bytes(on_copied: Callable[[int], None]) -> ReplicationProgress:
    """A progress callback for one replication that tells ``on_copied`` how many bytes each
    update adds: a region's ``done_bytes`` counts the stored bytes written into its replicas,
    so its growth from update to update is what was copied meanwhile (for metrics)."""
    seen: dict[str, int] = {}

    def progress(update: RegionProgress) -> None:
        grown = update.done_bytes - seen.get(update.region, 0)
        seen[update.region] = update.done_bytes
        if grown > 0:
            on_copied(grown)

    return progress


class StatusWriter:
    """Collects the latest progress per region and writes it to the catalog now and then."""

    def __init__(self, write: StatusWrite, progress: ReplicationProgress | None, details: str) -> None:
        self._write = write
        self._forward = progress
        self._details = details
        self._pending: dict[str, RegionProgress] = {}
        self._wake = anyio.Event()

    def __call__(self, update: RegionProgress) -> None:
        self._pending[update.region] = update
        self._wake.set()
        if self._forward is not None:
            self._forward(update)

    async def run(self) -> None:
        """Write pending progress until cancelled (the caller cancels once the copy ends)."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            pending, self._pending = self._pending, {}
            for update in pending.values():
                percent = 100 * update.done_bytes // update.total_bytes if update.total_bytes else 100
                status = RegionStatus(
                    update.region,
                    ReplicationState.REPLICATING,
                    min(percent, 99),
                    update.completed_replicas,
                    update.target_replicas,
                    self._details,
                )
                await self._write(status)
            await anyio.sleep(STATUS_INTERVAL)


@asynccontextmanager
async def status_writing(
    write: StatusWrite, progress: ReplicationProgress | None, details: str
) -> AsyncIterator[StatusWriter]:
    """A :class:`StatusWriter` running beside the body, stopped when it ends.

    The body's error is raised as itself after the writer stopped, not as a group; a failed
    status write (the catalog went read-only or full) arrives as itself too.
    """
    from blobrep.engine._concurrency import task_group

    writer = StatusWriter(write, progress, details)
    failure: BlobrepError | None = None
    async with task_group() as group:
        group.start_soon(writer.run)
        try:
            yield writer
        except BlobrepError as exc:
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
