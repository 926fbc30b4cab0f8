"""Scrub: verify every chunk and pack of every replica of a region, and repair from healthy siblings.

Bit rot and lost files are found by reading, not when a deployment trips over them. For one
gallery in one region a scrub:

1. parses every manifest of the gallery in every replica, strictly, and checks it against
   what the catalog recorded (``expected``: the manifest pin, and how many replicas of the
   region hold the version). One that does not parse or is not the pinned one, and one that
   a replica the catalog counts complete lacks, is a problem of that replica; the same
   blob's manifest in the siblings stands in for it if all of them that hold it agree (with
   a pin they are byte for byte the pinned one), and the chunks it names are checked in the
   damaged replica too (that replica promised them): :mod:`blobrep.engine.scrub_manifests`;
2. checks every distinct chunk stored as its own object that a replica's manifests name
   once, through the one read path (:meth:`~blobrep.engine.chunk_read.ReplicaSet.read_from`:
   bounded read, decompress and hash on a worker thread), however many versions share it.
   All replicas feed one pool of ``IO_TASKS`` checkers, so at most that many frames are in
   memory at once. Every distinct pack is checked whole beside them, by its size and digest
   (:mod:`blobrep.engine.scrub_packs`: one hash instead of a decode per frame), and counts
   as one object, one problem if bad;
3. with ``repair``, per damaged replica under a *shared* lease (garbage collection must not
   run underneath): copies each bad chunk from a sibling whose copy is read and verified
   right then, replaces each bad pack whole with a verified copy (or its damaged copy
   patched with verified frames, if that gives the pack back), ``sync()``, and only then
   writes stand-in manifests and syncs again, so no manifest is ever committed before its
   chunks and packs.

A manifest that some replicas lack is not a problem here unless the catalog counts them
complete for it: filling replicas is replication's job. A chunk bad in every replica is left
unrepaired and says so: replicating the blob again from its source region is the fix. A
replica whose repair fails (busy, full, failing) keeps its problems, with the reason, and
the other replicas are still repaired.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import anyio

from blobrep.core.keys import chunk_key, manifests_prefix
from blobrep.core.names import validate_gallery_name
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.engine.chunk_read import ReplicaSet
from blobrep.engine.donors import Donors
from blobrep.engine.leases import hold_lease
from blobrep.engine.scrub_manifests import ScrubManifests
from blobrep.engine.scrub_packs import PACK_TASKS, PackMender, check_packs
from blobrep.engine.scrub_report import Expected, ProblemKind, ReplicaSummary, ScrubProblem, ScrubReport
from blobrep.engine.scrub_state import Finding, ScrubbedPack, ScrubbedReplica
from blobrep.engine.verify import check_chunks
from blobrep.errors import BlobrepError, InvalidParameterError

if TYPE_CHECKING:
    from blobrep.core.manifest import ChunkRef
    from blobrep.storage.base import Store

__all__ = ["Expected", "ProblemKind", "ReplicaSummary", "ScrubProblem", "ScrubReport", "scrub_region"]


async def scrub_region(
    replicas: Sequence[Store],
    gallery: str,
    *,
    expected: Mapping[str, Expected] | None = None,
    donors: Sequence[Store] = (),
    repair: bool = False,
    progress: Callable[[int, int], None] | None = None,
    within: Sequence[str] | None = None,
) -> ScrubReport:
    """Verify every chunk and pack every manifest of ``gallery`` names in each of ``replicas``.

    Args:
        replicas: every replica of one region (for one gallery); repairs copy between them.
        gallery: the gallery to scrub.
        expected: per manifest key, what the catalog recorded of that version here; without
            it (no catalog) manifests are only checked to be well formed and to agree.
        donors: replicas of other regions, read (never written or checked) for a good copy of
            a chunk, a pack or a pinned manifest that no replica of this region holds.
        repair: fix what is found from healthy copies in the other replicas.
        progress: called on the event loop with (plain bytes checked, bytes to check).
        within: manifest listing prefixes (:func:`~blobrep.core.keys.manifests_prefix` of
            definitions or versions) to scrub instead of the whole gallery: only the
            manifests under them, and the chunks and packs those name, are checked and
            repaired (a pack whole, whoever else names it).

    Raises:
        InvalidParameterError: ``replicas`` is empty.
        InvalidNameError: ``gallery`` is not a valid gallery name.
        StorageError: a replica failed while being read (not about one chunk or pack); a failure
            while repairing is reported in the problems instead.
    """
    validate_gallery_name(gallery)
    if not replicas:
        raise InvalidParameterError("scrub needs at least one replica to check")
    prefixes = tuple(within) if within is not None else (manifests_prefix(gallery),)
    wanted = {key: one for key, one in (expected or {}).items() if key.startswith(prefixes)}
    scrub = _Scrub(gallery, [ScrubbedReplica(store) for store in replicas], wanted, donors, prefixes)
    async with scrub.set, scrub.donors:
        async with task_group() as group:
            for position, replica in enumerate(scrub.replicas):
                group.start_soon(scrub.manifests.read, position, replica)
        await scrub.manifests.find_stand_ins()
        await scrub.check_objects(progress)
        if repair:
            async with task_group() as group:
                for replica in scrub.replicas:
                    if replica.bad or replica.bad_packs or replica.damaged:
                        group.start_soon(scrub.repair, replica)
    return scrub.report(repair)


class _Scrub:
    def __init__(
        self,
        gallery: str,
        replicas: list[ScrubbedReplica],
        expected: Mapping[str, Expected],
        donors: Sequence[Store],
        prefixes: tuple[str, ...],
    ) -> None:
        self.gallery = gallery
        self.replicas = replicas
        self.set = ReplicaSet([replica.store for replica in replicas], gallery)
        self.donors = Donors(donors, gallery)
        self.io = anyio.CapacityLimiter(IO_TASKS)
        self.cpu = anyio.CapacityLimiter(CPU_THREADS)
        self.pack_slots = anyio.CapacityLimiter(PACK_TASKS)
        self.manifests = ScrubManifests(gallery, replicas, expected, self.donors, prefixes, self.io, self.cpu)
        self.packs = PackMender(gallery, replicas, self.set, self.donors, self.pack_slots)

    async def check_objects(self, progress: Callable[[int, int], None] | None) -> None:
        """Check every lone chunk and every pack of every replica once; progress in plain bytes
        (a pack's are those of the chunks placed in it, counted when it has been checked)."""
        total = sum(chunk.length for replica in self.replicas for chunk in replica.chunks.values())
        total += sum(pack.plain_bytes for replica in self.replicas for pack in replica.packs.values())
        done = [0]
        if progress is not None:
            progress(0, total)

        def advance(count: int) -> None:
            done[0] += count
            if progress is not None:
                progress(done[0], total)

        def chunk_checked(position: int, chunk: ChunkRef) -> None:
            replica = self.replicas[position]
            replica.checked_chunks += 1
            replica.checked_bytes += chunk.length
            advance(chunk.length)

        def pack_checked(replica: ScrubbedReplica, pack: ScrubbedPack) -> None:
            replica.checked_packs += 1
            replica.checked_pack_bytes += pack.ref.size
            replica.checked_chunks += len(pack.chunks)
            replica.checked_bytes += pack.plain_bytes
            replica.packed_chunks += len(pack.chunks)
            advance(pack.plain_bytes)

        async with task_group() as group:
            group.start_soon(self._check_chunks, chunk_checked)
            group.start_soon(check_packs, self.replicas, self.pack_slots, self.cpu, pack_checked)

    async def _check_chunks(self, checked: Callable[[int, ChunkRef], None]) -> None:
        # Replicas interleaved, so that every store is busy from the start.
        work = [
            zip(itertools.repeat(position), replica.chunks.values())
            for position, replica in enumerate(self.replicas)
        ]
        items = (
            item for item in itertools.chain.from_iterable(itertools.zip_longest(*work)) if item is not None
        )
        problems = await check_chunks(self.set, items, checked)
        for (position, digest), problem in problems.items():
            self.replicas[position].bad[digest] = Finding(problem.problem, problem.detail)  # type: ignore[arg-type]

    async def repair(self, replica: ScrubbedReplica) -> None:
        """Repair one replica under a shared lease; a failure is recorded, not raised."""
        store = replica.store
        fixed: list[tuple[Finding, str]] = []
        pending = iter(list(replica.bad.items()))

        async def copy() -> None:
            for digest, finding in pending:  # shared by the copiers: each chunk is taken once
                await self._repair_chunk(replica, digest, finding, fixed)

        try:
            holder = f"scrub repair of {self.gallery}"
            async with hold_lease(store, self.gallery, exclusive=False, holder=holder):
                async with task_group() as group:
                    for _ in range(min(IO_TASKS, len(replica.bad))):
                        group.start_soon(copy)
                for ref, finding in list(replica.bad_packs.items()):
                    how = await self.packs.mend(replica, ref)
                    if how is not None:
                        fixed.append((finding, how))
                await store.sync()
                for finding, how in fixed:
                    finding.repaired = True
                    finding.detail += f"; repaired {how}"
                written = [
                    damaged
                    for key, damaged in replica.damaged.items()
                    if await self.manifests.rewrite(replica, key, damaged)
                ]
                if written:
                    await store.sync()
                for damaged in written:
                    damaged.finding.repaired = True
                    damaged.finding.detail += f"; repaired from {damaged.source}"
        except BlobrepError as exc:
            for _, finding in replica.findings():
                if not finding.repaired:
                    finding.detail += f"; repair failed: {exc}"

    async def _repair_chunk(
        self, replica: ScrubbedReplica, digest: str, finding: Finding, fixed: list[tuple[Finding, str]]
    ) -> None:
        """Copy a good copy of ``digest`` from a sibling into ``replica``.

        The copy is verified right then, against ``replica``'s own manifest entry. Siblings
        that checked it good go first, then those whose manifests do not name it (they may
        hold it anyway); those known to hold it bad are skipped.

        Raises:
            StorageError: writing into ``replica`` failed (a bad source is just skipped).
        """
        chunk = replica.chunks[digest]
        others = [other for other in self.replicas if other is not replica]
        sources = [other for other in others if digest in other.chunks and digest not in other.bad]
        sources += [other for other in others if digest not in other.chunks]
        reasons = [f"{other.store.name}: {other.bad[digest].kind}" for other in others if digest in other.bad]
        for source in sources:
            async with self.io:
                try:
                    _, frame = await self.set.read_from(self.replicas.index(source), chunk)
                except BlobrepError as exc:  # missing, corrupt, or that store failed: next one
                    reasons.append(str(exc))
                    continue
                await replica.store.put(chunk_key(self.gallery, digest), frame)
            fixed.append((finding, f"from a verified copy in {source.store.name}"))
            return
        async with self.io:
            donated = await self.donors.frame(chunk)
            if donated is not None:
                await replica.store.put(chunk_key(self.gallery, digest), donated[0])
                fixed.append((finding, f"from a verified copy in {donated[1]}"))
                return
        elsewhere = " or of the other regions" if self.donors.stores else ""
        finding.detail += (
            f"; not repaired: no healthy copy in any replica of the region{elsewhere}"
            f" ({'; '.join(reasons) or 'none'}); replicate the blob again from its source region"
            " to restore it"
        )

    def report(self, repair: bool) -> ScrubReport:
        problems: list[ScrubProblem] = []
        summaries: list[ReplicaSummary] = []
        for replica in self.replicas:
            name, found = replica.store.name, replica.findings()
            problems += [ScrubProblem(name, one.kind, key, one.detail, one.repaired) for key, one in found]
            summaries.append(
                ReplicaSummary(
                    name,
                    replica.manifests,
                    replica.checked_chunks,
                    replica.checked_bytes,
                    len(found),
                    replica.checked_packs,
                    replica.checked_pack_bytes,
                    replica.packed_chunks,
                )
            )
        repaired = sum(problem.repaired for problem in problems)
        unrepairable = len(problems) - repaired if repair else 0
        damaged: set[str] = set()
        for replica in self.replicas:
            damaged.update(key for key, one in replica.damaged.items() if not one.finding.repaired)
            damaged.update(key for key in replica.named if replica.still_bad(key))
        return ScrubReport(
            self.gallery, tuple(summaries), tuple(problems), repaired, unrepairable, tuple(sorted(damaged))
        )
