"""Replicate: bring a published blob from its source region into every target region.

One pass of the reconcile loop for one blob: survey every target replica (the actual state),
let the pure planner (:mod:`blobrep.core.replication`) say which replica lacks which object,
copy exactly that, and commit each replica's manifest once its objects are durable. A
replica's objects are the blob's packs and the chunks it stores as their own objects
(:meth:`~blobrep.core.manifest.Manifest.objects`); a pack moves whole, never in part.

* Source: the manifest comes from the first source replica whose copy is the one the catalog
  pinned (``expect``); a source replica holding anything else is passed over.
* Survey: a replica holding the pinned manifest is complete. One holding another manifest is
  damaged when there is a pin (the catalog is the authority): it is filled like an empty one
  and its manifest replaced; without a pin it is a conflict that fails its region. For the
  rest, ``stat_many`` says which objects are there at the size the manifest records (a pack
  or a chunk of another size, or a key that is not a regular file, is rewritten). Only what
  is missing moves, so a run after a failure or a kill copies only the rest, and a new
  version sharing packs or chunks with an older one moves only its new ones.
* Copy: each planned object is read once from the source replicas and verified before
  anything is written, so a bad copy never spreads: a chunk through the one read path,
  decoded and hashed; a pack whole, by its size and digest; either failing over to another
  source replica and mending the bad copy (:mod:`blobrep.engine.replicate_sources`). The same
  stored bytes then go to every replica that lacks them, all regions at once. (Siblings are not
  filled by reading a region's first replica again: one verified read feeds every write.
  Replicas in one object store, though, copy the object inside it from the replica that has
  it, which moves no byte through this process: :mod:`blobrep.engine.server_copies`.)
  ``copy_tasks`` tasks take objects from an unbuffered stream: at most that many are in
  memory at once, and at most :data:`~blobrep.engine.replicate_sources.PACKS_IN_FLIGHT` of
  them packs.
* Failure: a region whose store raises (survey, put, sync) or that needs an object with no
  good source copy is marked failed with the reason, gets no further writes and no manifest,
  and the other regions carry on.
* Busy: a region with a replica leased by another live operation (garbage collection) is
  *deferred*: it gets no writes, and its outcome says why, so the caller leaves its state as it
  was (a busy replica is no evidence that anything is wrong) and the next run does the work.
* Commit: a replica is committed as soon as every object it lacked has landed: ``sync()``,
  then the manifest. One committed before a sibling failed stays committed (it is complete)
  and counts in ``completed_replicas``. No manifest is ever written before its objects are
  durable, so a kill at any point leaves each replica complete or simply not yet readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.manifest import Manifest, encode_manifest
from blobrep.core.names import BlobName, validate_gallery_name
from blobrep.core.replication import ChunkCopy, ReplicaState, plan_replication
from blobrep.engine._concurrency import task_group
from blobrep.engine.leases import hold_lease
from blobrep.engine.manifests import (
    commit_manifest,
    conflict_error,
    read_manifest,
    read_manifest_document,
)
from blobrep.engine.replicate_sources import PACKS_IN_FLIGHT, Needed, SourceObjects, needed_objects
from blobrep.engine.replicate_state import (
    RegionOutcome,
    RegionProgress,
    RegionProgressCallback,
    RegionRun,
    RegionTarget,
    ReplicaRun,
)
from blobrep.engine.server_copies import copy_inside, plan_writes
from blobrep.errors import (
    BlobrepError,
    BusyError,
    IntegrityError,
    InvalidParameterError,
    ManifestError,
    ManifestNotFoundError,
    StorageError,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream

    from blobrep.core.gallery import BlobInfo
    from blobrep.storage.base import Store

#: Puts in flight per copy task: enough to overlap the fsync of each put with the next ones.
WRITES_PER_COPY: Final = 2
#: Object keys asked of a replica in one ``stat_many``.
SURVEY_BATCH: Final = 4096
#: Seconds between two progress reports of one region.
PROGRESS_INTERVAL: Final = 0.25
#: Seconds a replication waits for a replica leased by garbage collection before deferring
#: that region to the next run: a reconcile pass has other regions to serve meanwhile.
LEASE_WAIT: Final = 5.0

__all__ = [
    "LEASE_WAIT",
    "PROGRESS_INTERVAL",
    "SURVEY_BATCH",
    "WRITES_PER_COPY",
    "RegionOutcome",
    "RegionProgress",
    "RegionProgressCallback",
    "RegionTarget",
    "replicate",
]


async def replicate(
    sources: Sequence[Store],
    targets: Sequence[RegionTarget],
    gallery: str,
    blob: BlobName,
    *,
    expect: BlobInfo | None = None,
    copy_tasks: int = 16,
    progress: RegionProgressCallback | None = None,
) -> list[RegionOutcome]:
    """Copy ``blob`` of ``gallery`` from the source region's replicas into every target region.

    Args:
        sources: replicas of the source region holding the blob's manifest and objects.
        targets: the regions to fill, each with all its desired replicas.
        expect: what the catalog recorded of the blob (its manifest pin): source manifests
            that differ are passed over, target manifests that differ are replaced.
        copy_tasks: objects (packs or chunks) in flight at once over all regions (bounds
            memory too).
        progress: receives :class:`RegionProgress` reports, batched per region.

    Returns:
        One outcome per target, in target order; a region's failure is reported there,
        not raised.

    Raises:
        InvalidParameterError: no source, no replica in a region, a region listed twice, or
            ``copy_tasks`` below 1.
        ManifestNotFoundError, ManifestError, StorageError: no source replica has a usable
            manifest (the first source's error is raised).
    """
    validate_gallery_name(gallery)
    if not sources:
        raise InvalidParameterError("replication needs at least one source replica")
    if copy_tasks < 1:
        raise InvalidParameterError(f"copy_tasks is {copy_tasks}; at least 1 object must be in flight")
    names = [target.region for target in targets]
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"a region is listed twice among the targets {names}")
    for target in targets:
        if not target.stores:
            raise InvalidParameterError(f"region {target.region} has no replica to replicate into")
    errors: list[BlobrepError] = []
    for store in sources:
        try:
            manifest = await read_manifest(store, gallery, blob, expect=expect)
        except (ManifestNotFoundError, ManifestError, StorageError) as exc:
            errors.append(exc)
            continue
        pinned = expect is not None and expect.manifest is not None
        replication = _Replication(sources, gallery, blob, manifest, copy_tasks, progress, pinned)
        async with replication.sources:
            return await replication.run(targets)
    damaged = [exc for exc in errors if not isinstance(exc, ManifestNotFoundError)]
    raise (damaged or errors)[0]


class _Replication:
    """The state of one replication run, shared by its tasks (all on the event loop)."""

    def __init__(
        self,
        sources: Sequence[Store],
        gallery: str,
        blob: BlobName,
        manifest: Manifest,
        copy_tasks: int,
        progress: RegionProgressCallback | None,
        pinned: bool,
    ) -> None:
        self.sources = SourceObjects(sources, gallery)
        self.pinned = pinned
        self.gallery = gallery
        self.blob = blob
        self.manifest = manifest
        self.document = encode_manifest(manifest)
        self.objects = needed_objects(manifest, gallery)
        self.copy_tasks = copy_tasks
        self.progress = progress
        self.writes = anyio.CapacityLimiter(copy_tasks * WRITES_PER_COPY)
        self.packs = anyio.CapacityLimiter(min(copy_tasks, PACKS_IN_FLIGHT))

    async def run(self, targets: Sequence[RegionTarget]) -> list[RegionOutcome]:
        regions = [RegionRun(target) for target in targets]
        for region in regions:
            region.replicas = [
                ReplicaRun(region, index, store) for index, store in enumerate(region.target.stores, 1)
            ]
        everyone = [replica for region in regions for replica in region.replicas]
        async with AsyncExitStack() as leases:
            # Shared leases on every target replica from before the survey until after the
            # manifests are committed: garbage collection must not delete an object found
            # present meanwhile. A replica that cannot be leased fails its region only.
            for replica in everyone:
                if replica.region.stopped:
                    continue
                try:
                    await leases.enter_async_context(
                        hold_lease(
                            replica.store,
                            self.gallery,
                            exclusive=False,
                            holder=f"replication of {self.blob}",
                            wait=LEASE_WAIT,
                        )
                    )
                except BusyError as exc:
                    replica.region.defer(str(exc))
                except BlobrepError as exc:
                    replica.region.fail(str(exc))
            return await self._run_leased(regions, everyone)

    async def _run_leased(self, regions: list[RegionRun], everyone: list[ReplicaRun]) -> list[RegionOutcome]:
        async with task_group() as group:
            for replica in everyone:
                if not replica.region.stopped:
                    group.start_soon(self._survey, replica)
        # A failed region is out of the plan: it gets no writes at all.
        pending = [
            (replica, replica.state)
            for replica in everyone
            if replica.state is not None and not replica.complete and not replica.region.stopped
        ]
        planned = [replica for replica, _ in pending]
        plan = plan_replication(
            {key: needed.size for key, needed in self.objects.items()}, [state for _, state in pending]
        )
        for replica, replica_plan in zip(planned, plan.replicas, strict=True):
            replica.remaining = len(replica_plan.missing)
            replica.region.total_bytes += replica_plan.missing_bytes
        async with task_group() as group:
            for region in regions:
                self._settle(region)
                if not region.stopped and not region.finished:
                    self._report(region, force=True)
            for replica in planned:
                if replica.remaining == 0:
                    group.start_soon(self._commit, replica)
            await self._copy_all(plan.copies, planned, group)
        for region in regions:
            self._report(region, force=True, final=True)
        return [
            RegionOutcome(
                r.target.region,
                r.completed,
                len(r.replicas),
                r.copied_chunks,
                r.done_bytes,
                r.error,
                r.deferred,
            )
            for r in regions
        ]

    async def _survey(self, replica: ReplicaRun) -> None:
        """Learn the replica's actual state, or fail its region if it cannot be known."""
        store, region = replica.store, replica.region.target.region
        try:
            try:
                existing: bytes | None = await read_manifest_document(
                    store, self.gallery, self.blob, len(self.document)
                )
            except ManifestNotFoundError:
                existing = None
            except ManifestError:
                existing = b""  # not a regular file, or larger than ours: not this manifest
            if existing == self.document:
                replica.complete = True
                replica.state = ReplicaState(region, replica.index, has_manifest=True)
                return
            if existing is not None and not self.pinned:
                raise conflict_error(store, self.gallery, self.blob)
            keys = list(self.objects)
            held: dict[str, int] = {}
            for start in range(0, len(keys), SURVEY_BATCH):
                batch = keys[start : start + SURVEY_BATCH]
                infos = await store.stat_many(batch)
                held.update((key, info.size) for key, info in zip(batch, infos, strict=True) if info)
        except BlobrepError as exc:
            replica.region.fail(str(exc))
            return
        replica.state = ReplicaState(region, replica.index, has_manifest=False, held=held)

    async def _copy_all(
        self, copies: Sequence[ChunkCopy], planned: list[ReplicaRun], group: TaskGroup
    ) -> None:
        """Feed every planned copy to ``copy_tasks`` workers through an unbuffered stream."""
        send, receive = anyio.create_memory_object_stream[ChunkCopy](0)

        async def work(receive: MemoryObjectReceiveStream[ChunkCopy]) -> None:
            async with receive:
                async for copy in receive:
                    await self._copy(copy, [planned[position] for position in copy.targets], group)

        async with task_group() as workers:
            for _ in range(self.copy_tasks):
                workers.start_soon(work, receive.clone())
            receive.close()
            async with send:
                for copy in copies:
                    await send.send(copy)

    async def _copy(self, copy: ChunkCopy, targets: list[ReplicaRun], group: TaskGroup) -> None:
        """Read one object once, verified, and place it in every live replica that lacks it."""
        if all(replica.region.stopped for replica in targets):
            return
        needed = self.objects[copy.digest]
        if needed.pack is None:
            await self._copy_object(needed, targets, group)
            return
        async with self.packs:  # a pack is held whole until every target has it
            await self._copy_object(needed, targets, group)

    async def _copy_object(self, needed: Needed, targets: list[ReplicaRun], group: TaskGroup) -> None:
        """Sent, or copied inside an object store from a replica that holds it
        (:mod:`blobrep.engine.server_copies`); a bad source copy of a pack is mended alongside."""
        if all(replica.region.stopped for replica in targets):
            return
        try:
            read = await self.sources.read(needed)
        except (IntegrityError, StorageError) as exc:
            for replica in targets:
                replica.region.fail(str(exc))
            return
        plan = plan_writes(read.source, [(replica, replica.store) for replica in targets])
        async with task_group() as writes:
            for replica in plan.uploads:
                writes.start_soon(self._write, replica, needed, read.data, group, None)
            for replica in plan.from_source:
                writes.start_soon(self._write, replica, needed, read.data, group, read.source)
            if read.damaged:
                writes.start_soon(self.sources.mend, needed, read)
        async with task_group() as writes:
            for replica, holder in plan.after_upload:
                writes.start_soon(self._write, replica, needed, read.data, group, holder.store)

    async def _write(
        self, replica: ReplicaRun, needed: Needed, data: bytes, group: TaskGroup, holder: Store | None
    ) -> None:
        """Put ``data`` at ``needed.key`` in ``replica``, or copy it there from ``holder``
        inside their service (the bytes are put after all if that cannot be done)."""
        region = replica.region
        async with self.writes:
            if region.stopped:
                return
            try:
                if holder is None or not await copy_inside(replica.store, holder, needed.key):
                    await replica.store.put(needed.key, data)
            except BlobrepError as exc:
                region.fail(str(exc))
                return
        region.done_bytes += len(data)
        region.copied_chunks += needed.chunks
        replica.remaining -= 1
        self._report(region)
        if replica.remaining == 0:
            group.start_soon(self._commit, replica)

    async def _commit(self, replica: ReplicaRun) -> None:
        """Make the replica's objects durable, then write its manifest: the commit point."""
        region = replica.region
        try:
            await replica.store.sync()
            if region.stopped:
                return
            await commit_manifest(replica.store, self.gallery, self.blob, self.manifest, replace=self.pinned)
        except BlobrepError as exc:
            region.fail(str(exc))
            return
        replica.complete = True
        self._settle(region)

    def _settle(self, region: RegionRun) -> None:
        """Send a region's final report as soon as every replica of it is complete."""
        if not region.stopped and not region.finished and region.completed == len(region.replicas):
            self._report(region, force=True, final=True)

    def _report(self, region: RegionRun, *, force: bool = False, final: bool = False) -> None:
        if region.finished:
            return
        now = anyio.current_time()
        if not force and now - region.reported < PROGRESS_INTERVAL:
            return
        region.reported = now
        region.finished = final
        if self.progress is not None:
            name, replicas = region.target.region, len(region.replicas)
            self.progress(
                RegionProgress(name, region.done_bytes, region.total_bytes, region.completed, replicas)
            )
