"""Scrub's manifests: each replica's read and checked against the catalog, and a damaged one
replaced by the siblings' copy once what it names is sound.

What a replica's manifests name is what scrub checks there (:meth:`ScrubManifests.read`). A
manifest that does not parse, is not the pinned one, or is missing where the catalog counts
the replica complete, is a problem of that replica; the copy the siblings hold stands in for
it if all of them that hold one agree (with a pin, any donor's copy that matches will do), so
the chunks and packs it names are checked in the damaged replica too. The stand-in is written
only after those are sound and synced (:meth:`ScrubManifests.rewrite`), never before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from blobrep.core.keys import MANIFEST_FILENAME
from blobrep.core.manifest import MAX_MANIFEST_BYTES, Manifest
from blobrep.engine._concurrency import IO_TASKS, task_group
from blobrep.engine.manifests import check_manifest, manifest_limit
from blobrep.engine.scrub_state import DamagedManifest, Finding
from blobrep.errors import (
    BlobrepError,
    DamagedObjectError,
    ManifestError,
    ManifestMismatchError,
    NotFoundError,
)

if TYPE_CHECKING:
    from blobrep.engine.donors import Donors
    from blobrep.engine.scrub_report import Expected
    from blobrep.engine.scrub_state import ScrubbedReplica
    from blobrep.storage.base import Store


class ScrubManifests:
    """The manifests of one gallery in the replicas of one region, under scrub.

    ``expected`` is what the catalog recorded per manifest key; ``prefixes`` the listing
    prefixes scrubbed; ``io`` and ``cpu`` the scrub's limiters, shared with its other reads.
    """

    def __init__(
        self,
        gallery: str,
        replicas: list[ScrubbedReplica],
        expected: Mapping[str, Expected],
        donors: Donors,
        prefixes: tuple[str, ...],
        io: anyio.CapacityLimiter,
        cpu: anyio.CapacityLimiter,
    ) -> None:
        self.gallery = gallery
        self.replicas = replicas
        self.expected = expected
        self.donors = donors
        self.prefixes = prefixes
        self.io = io
        self.cpu = cpu

    async def parse(self, store: Store, key: str) -> tuple[bytes, Manifest] | None:
        """(document, parsed manifest) of the manifest at ``key``; None if there is none.

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
        return document, manifest

    async def read(self, position: int, replica: ScrubbedReplica) -> None:
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
                    parsed = await self.parse(replica.store, key)
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
                    replica.take(key, parsed[1], self.gallery)

        async with task_group() as group:
            for _ in range(min(IO_TASKS, len(keys))):
                group.start_soon(read)

    async def find_stand_ins(self) -> None:
        """For each damaged manifest, the siblings' copy, if they hold one and all agree."""
        for replica in self.replicas:
            for key, damaged in replica.damaged.items():
                found: dict[bytes, tuple[str, Manifest]] = {}
                for other in (other for other in self.replicas if key not in other.damaged):
                    try:
                        parsed = await self.parse(other.store, key)
                    except ManifestError:
                        parsed = None  # damaged since it was read: no stand-in from there
                    if parsed is not None:
                        found.setdefault(parsed[0], (other.store.name, parsed[1]))
                wanted = self.expected.get(key)
                if not found and wanted is not None and wanted.expect.manifest is not None:
                    for donor in self.donors.stores:  # pinned: any donor's copy that matches is it
                        try:
                            parsed = await self.parse(donor, key)
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
                damaged.document, (damaged.source, manifest) = next(iter(found.items()))
                replica.take(key, manifest, self.gallery)

    async def rewrite(self, replica: ScrubbedReplica, key: str, damaged: DamagedManifest) -> bool:
        """Put the siblings' manifest over the damaged one once its chunks and packs are sound here.

        Returns True if it wrote one (the caller syncs, then counts it repaired). A manifest
        that changed since it was read is left alone: deleted means its version was deleted,
        and bringing it back would resurrect that version in one replica.
        """
        finding = damaged.finding
        if damaged.document is None:
            finding.detail += f"; not repaired: {damaged.why_not}; replicate it again from the source region"
            return False
        if replica.still_bad(key):
            finding.detail += (
                "; not repaired: chunks it names are still bad in this replica, and a manifest is"
                " only written after its chunks"
            )
            return False
        try:
            parsed = await self.parse(replica.store, key)
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
