"""Operations that prove they are alive: who holds a version's non-terminal state.

A version ``Creating`` or ``Deleting``, or a region ``Replicating``, belongs to an operation
that a process is running. The catalog records which process (an ``operations`` row: owner,
start, heartbeat), so that the next process to look can tell the two cases apart without
guessing from age:

* the owner is alive (on this host: its pid runs and started when the row says; elsewhere:
  its heartbeat is younger than :data:`OPERATION_TTL`): leave it alone, or report busy;
* the owner is dead: the state is stuck, and recovery moves it on.

:func:`hold_operation` records the row for the length of an ``async with`` block (taking over
a dead owner's row with a compare-and-swap, so two recoverers cannot both win), refreshes
the heartbeat every :data:`HEARTBEAT_INTERVAL`, and removes the row on the way out, also on
error or cancellation. A process killed inside the block leaves its row: that is the point.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from blobrep.core.holders import Liveness, ProcessIdentity
from blobrep.core.operations import Operation, OperationKind, heartbeat_expired
from blobrep.errors import BusyError
from blobrep.storage.processes import holder_alive, this_process

if TYPE_CHECKING:
    from blobrep.catalog import Catalog
    from blobrep.core.version import ImageVersion

#: An owner that cannot be judged from this host is dead once its heartbeat is this old.
OPERATION_TTL: Final = timedelta(minutes=5)

#: The operations tasks of this process hold now, by catalog, version and region. A row names
#: its owner by process, so two tasks of one process (a daemon answering two requests) would
#: each take the row for their own; this tells a running task's row from one left behind.
_HELD_HERE: set[tuple[str, str, str, str, str]] = set()
#: Seconds between two heartbeats of a running operation.
HEARTBEAT_INTERVAL: Final = 30.0


async def me() -> ProcessIdentity:
    """This process, as operation rows name it."""
    return await anyio.to_thread.run_sync(this_process)


async def judge(operation: Operation) -> Liveness:
    """ALIVE or DEAD for ``operation``'s owner: this host's answer, else its heartbeat's age."""
    verdict = await anyio.to_thread.run_sync(holder_alive, operation.owner)
    if verdict is Liveness.UNKNOWN:
        expired = heartbeat_expired(operation, datetime.now(UTC), OPERATION_TTL)
        return Liveness.DEAD if expired else Liveness.ALIVE
    return verdict


async def _heartbeat(
    catalog: Catalog, gallery: str, image: str, version: ImageVersion, region: str, owner: ProcessIdentity
) -> None:
    while True:
        await anyio.sleep(HEARTBEAT_INTERVAL)
        await catalog.heartbeat_operation(gallery, image, version, region, owner)


@asynccontextmanager
async def hold_operation(
    catalog: Catalog, gallery: str, image: str, version: ImageVersion, region: str, kind: OperationKind
) -> AsyncIterator[ProcessIdentity]:
    """Record this process as running ``kind`` on the version (in ``region``; '' for the
    version's own provisioning) for the body of the ``async with``; yields the owner.

    Raises:
        BusyError: another live process runs an operation there (the message names it).
        ResourceNotFoundError: the version does not exist.
    """
    owner = await me()
    held = (str(catalog.path), gallery, image, str(version), region)
    existing = await catalog.begin_operation(gallery, image, version, region, kind, owner)
    if existing is not None:
        if existing.owner != owner and await judge(existing) is Liveness.ALIVE:
            raise BusyError(f"{existing.describe()} is still running; retry once it has finished")
        if held in _HELD_HERE:
            # This process's own row, held by another task of it (two requests to one daemon):
            # live, whatever the row's owner says, and never to be taken over.
            raise BusyError(f"{existing.describe()} is still running; retry once it has finished")
        if not await catalog.take_over_operation(existing, kind, owner):
            raise BusyError(f"another process took over {existing.describe()} first; retry later")
    from blobrep.engine._concurrency import task_group  # imported here: few commands hold operations

    _HELD_HERE.add(held)
    failure: Exception | None = None
    try:
        async with task_group() as group:  # a failed heartbeat arrives as itself, not as a group
            group.start_soon(_heartbeat, catalog, gallery, image, version, region, owner)
            try:
                yield owner
            except Exception as exc:
                # Kept aside and re-raised after the group, so the body's error reaches the
                # caller as itself rather than wrapped in an exception group.
                failure = exc
            group.cancel_scope.cancel()
    finally:
        _HELD_HERE.discard(held)
        with anyio.CancelScope(shield=True):
            await catalog.end_operation(gallery, image, version, region, owner)
    if failure is not None:
        raise failure
