"""Scrub: verify every chunk of every replica of a region, and repair from healthy siblings.

Bit rot and lost files are found by reading, not when a deployment trips over them. For one
gallery in one region a scrub:

1. parses every manifest of the gallery in every replica, strictly, and checks it against
   what the catalog recorded (``expected``: the manifest pin, and how many replicas of the
   region hold the version). One that does not parse or is not the pinned one, and one that
   a replica the catalog counts complete lacks, is a problem of that replica; the same
   blob's manifest in the siblings stands in for it if all of them that hold it agree (with
   a pin they are byte for byte the pinned one), and the chunks it names are checked in the
   damaged replica too (that replica promised them);
2. checks every distinct chunk a replica's manifests name once, through the one read path
   (:meth:`~blobrep.engine.chunk_read.ReplicaSet.read_from`: bounded read, decompress and hash
   on a worker thread), however many versions share it. All replicas feed one pool of
   ``IO_TASKS`` checkers, so at most that many frames are in memory at once;
3. with ``repair``, per damaged replica under a *shared* lease (garbage collection must not
   run underneath): copies each bad chunk from a sibling whose copy is read and verified
   right then, ``sync()``, and only then writes stand-in manifests and syncs again, so no
   manifest is ever committed before its chunks.

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
import anyio.to_thread

from blobrep.core.keys import MANIFEST_FILENAME, chunk_key, manifests_prefix
from blobrep.core.manifest import MAX_MANIFEST_BYTES, ChunkRef
from blobrep.core.names import validate_gallery_name
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.engine.chunk_read import ReplicaSet
from blobrep.engine.donors import Donors
from blobrep.engine.leases import hold_lease
from blobrep.engine.manifests import check_manifest, manifest_limit
from blobrep.engine.scrub_report import Expected, ProblemKind, ReplicaSummary, ScrubProblem, ScrubReport
from blobrep.engine.scrub_state import DamagedManifest, Finding, ScrubbedReplica
from blobrep.engine.verify import check_chunks
from blobrep.errors import (
    BlobrepError,
    DamagedObjectError,
    InvalidParameterError,
    ManifestError,
    ManifestMismatchError,
    NotFoundError,
)

if TYPE_CHECKING:
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
    """Verify every chunk every manifest of ``gallery`` names in each of ``replicas``.

    Args:
        replicas: every replica of one region (for one gallery); repairs copy between them.
        gallery: the gallery to scrub.
        expected: per manifest key, what the catalog recorded of that version here; without
            it (no catalog) manifests are only checked to be well formed and to agree.
        donors: replicas of other regions, read (never written or checked) for a good copy of
            a chunk or a pinned manifest that no replica of this region holds.
        repair: fix what is found from healthy copies in the other replicas.
        progress: called on the event loop with (plain bytes checked, bytes to check).
        within: manifest listing prefixes (:func:`~blobrep.core.keys.manifests_prefix` of
            definitions or versions) to scrub instead of the whole gallery: only the
            manifests under them, and the chunks those name, are checked and repaired.

    Raises:
        InvalidParameterError: ``replicas`` is empty.
        InvalidNameError: ``gallery`` is not a valid gallery name.
        StorageError: a replica failed while being read (not about one chunk); a failure
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
                group.start_soon(scrub.read_manifests, position, replica)
        await scrub.find_stand_ins()
        await scrub.check_chunks(progress)
        if repair:
            async with task_group() as group:
                for replica in scrub.replicas:
                    if replica.bad or replica.damaged:
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
        self.expected = expected
        self.prefixes = prefixes
        self.set = ReplicaSet([replica.store for replica in replicas], gallery)
        self.donors = Donors(donors, gallery)
        self.io = anyio.CapacityLimiter(IO_TASKS)
        self.cpu = anyio.CapacityLimiter(CPU_THREADS)

    async def _parse(self, store: Store, key: str) -> tuple[bytes, dict[str, ChunkRef]] | None:
        """(document, distinct chunks) of the manifest at ``key``; None if there is none.

        At most as many bytes as the expected manifest can take are read, and an I/O slot is
        held through the parse, so at most ``IO_TASKS`` documents are alive.

        Raises:
            ManifestError: it is not a regular file, too large, does not parse, or is not the
                manifest the catalog pinned.
        """
        wanted = self.expected.get(key)
        expect = None if wanted is None else wanted.expect
        limit = manifest_limit(expect) if expect is not None else MAX_MANIFEST_BYTES
        async with self.io:
            try:
                document = await store.get(key, 0, limit + 1)
            except NotFoundError:
                return None  # deleted since the listing: it promises nothing any more
            except DamagedObjectError as exc:
                raise ManifestError(str(exc)) from None
            if len(document) > limit and expect is not None:
                raise ManifestMismatchError(
                    f"it is larger than the {limit} bytes this version's manifest takes:"
                    " it is not this version's manifest"
                )
            if len(document) > limit:
                raise ManifestError(f"it is larger than the {limit} bytes a manifest may take")
            manifest = await anyio.to_thread.run_sync(
                check_manifest, document, expect, f"{key} in {store.name}", limiter=self.cpu
            )
        return document, manifest.stored_digests()

    async def read_manifests(self, position: int, replica: ScrubbedReplica) -> None:
        listed = [
            key
            for prefix in self.prefixes
            async for key in replica.store.list(prefix)
            if key.endswith(f"/{MANIFEST_FILENAME}")
        ]
        owed = [key for key, wanted in self.expected.items() if position < wanted.replicas]
        keys = list(dict.fromkeys([*listed, *owed]))
        pending = iter(keys)

        async def read() -> None:
            for key in pending:  # shared by the readers: each key is taken once
                try:
                    parsed = await self._parse(replica.store, key)
                except ManifestError as exc:
                    replica.manifests += 1
                    what = (
                        "is not this version's"
                        if isinstance(exc, ManifestMismatchError)
                        else "does not parse"
                    )
                    replica.damaged[key] = DamagedManifest(Finding("manifest", f"manifest {what}: {exc}"))
                    continue
                if parsed is None and key in owed:
                    replica.damaged[key] = DamagedManifest(
                        Finding(
                            "manifest",
                            "manifest is missing, but the catalog counts this replica complete"
                            " for the version",
                        )
                    )
                elif parsed is not None:
                    replica.manifests += 1
                    replica.named[key] = frozenset(parsed[1])
                    for digest, chunk in parsed[1].items():
                        replica.chunks.setdefault(digest, chunk)

        async with task_group() as group:
            for _ in range(min(IO_TASKS, len(keys))):
                group.start_soon(read)

    async def find_stand_ins(self) -> None:
        """For each damaged manifest, the siblings' copy, if they hold one and all agree."""
        for replica in self.replicas:
            for key, damaged in replica.damaged.items():
                found: dict[bytes, tuple[str, dict[str, ChunkRef]]] = {}
                for other in (other for other in self.replicas if key not in other.damaged):
                    try:
                        parsed = await self._parse(other.store, key)
                    except ManifestError:
                        parsed = None  # damaged since it was read: no stand-in from there
                    if parsed is not None:
                        found.setdefault(parsed[0], (other.store.name, parsed[1]))
                wanted = self.expected.get(key)
                if not found and wanted is not None and wanted.expect.manifest is not None:
                    for donor in self.donors.stores:  # pinned: any donor's copy that matches is it
                        try:
                            parsed = await self._parse(donor, key)
                        except BlobrepError:
                            continue
                        if parsed is not None:
                            found[parsed[0]] = (donor.name, parsed[1])
                            break
                if len(found) != 1:
                    names = ", ".join(source for source, _ in found.values())
                    damaged.why_not = (
                        f"replicas {names} hold different manifests for this blob"
                        if found
                        else "no other replica of the region holds a manifest for this blob that parses"
                    )
                    continue
                damaged.document, (damaged.source, chunks) = next(iter(found.items()))
                damaged.digests = frozenset(chunks)
                replica.named[key] = damaged.digests
                for digest, chunk in chunks.items():
                    replica.chunks.setdefault(digest, chunk)

    async def check_chunks(self, progress: Callable[[int, int], None] | None) -> None:
        total = sum(chunk.length for replica in self.replicas for chunk in replica.chunks.values())
        done = [0]
        if progress is not None:
            progress(0, total)

        def checked(position: int, chunk: ChunkRef) -> None:
            replica = self.replicas[position]
            replica.checked_chunks += 1
            replica.checked_bytes += chunk.length
            done[0] += chunk.length
            if progress is not None:
                progress(done[0], total)

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
                await store.sync()
                for finding, source in fixed:
                    finding.repaired = True
                    finding.detail += f"; repaired from a verified copy in {source}"
                written = [
                    damaged
                    for key, damaged in replica.damaged.items()
                    if await self._repair_manifest(replica, key, damaged)
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
            fixed.append((finding, source.store.name))
            return
        async with self.io:
            donated = await self.donors.frame(chunk)
            if donated is not None:
                await replica.store.put(chunk_key(self.gallery, digest), donated[0])
                fixed.append((finding, donated[1]))
                return
        elsewhere = " or of the other regions" if self.donors.stores else ""
        finding.detail += (
            f"; not repaired: no healthy copy in any replica of the region{elsewhere}"
            f" ({'; '.join(reasons) or 'none'}); replicate the blob again from its source region"
            " to restore it"
        )

    async def _repair_manifest(self, replica: ScrubbedReplica, key: str, damaged: DamagedManifest) -> bool:
        """Put the siblings' manifest over the damaged one once its chunks are sound here.

        Returns True if it wrote one (the caller syncs, then counts it repaired). A manifest
        that changed since it was read is left alone: deleted means its version was deleted,
        and bringing it back would resurrect that version in one replica.
        """
        finding = damaged.finding
        if damaged.document is None:
            finding.detail += f"; not repaired: {damaged.why_not}; replicate it again from the source region"
            return False
        if any(not replica.bad[digest].repaired for digest in damaged.digests if digest in replica.bad):
            finding.detail += (
                "; not repaired: chunks it names are still bad in this replica, and a manifest is"
                " only written after its chunks"
            )
            return False
        try:
            parsed = await self._parse(replica.store, key)
        except ManifestError:
            await replica.store.put(key, damaged.document)
            return True
        owed = self.expected.get(key)
        if parsed is None and owed is not None and self.replicas.index(replica) < owed.replicas:
            await replica.store.put(key, damaged.document)
            return True
        finding.repaired = True
        finding.detail += "; changed since it was read (deleted, or rewritten and parses): left as it is"
        return False

    def report(self, repair: bool) -> ScrubReport:
        problems: list[ScrubProblem] = []
        summaries: list[ReplicaSummary] = []
        for replica in self.replicas:
            name, found = replica.store.name, replica.findings()
            problems += [ScrubProblem(name, one.kind, key, one.detail, one.repaired) for key, one in found]
            summary = (replica.manifests, replica.checked_chunks, replica.checked_bytes, len(found))
            summaries.append(ReplicaSummary(name, *summary))
        repaired = sum(problem.repaired for problem in problems)
        unrepairable = len(problems) - repaired if repair else 0
        damaged: set[str] = set()
        for replica in self.replicas:
            damaged.update(key for key, one in replica.damaged.items() if not one.finding.repaired)
            still_bad = {digest for digest, one in replica.bad.items() if not one.repaired}
            damaged.update(key for key, digests in replica.named.items() if digests & still_bad)
        return ScrubReport(
            self.gallery, tuple(summaries), tuple(problems), repaired, unrepairable, tuple(sorted(damaged))
        )
