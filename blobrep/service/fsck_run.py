"""One ``fsck`` run: what it found (:class:`FsckReport`) and the walk that finds it.

Apart from :mod:`blobrep.service.fsck` so that opening the service does not load what only
``fsck`` runs; see that module for what is checked and repaired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from blobrep.core.disks import version_disks
from blobrep.core.gallery import GalleryImageVersion, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.core.keys import MANIFEST_FILENAME, blob_of_manifest_key, manifest_key
from blobrep.engine.manifests import delete_manifest
from blobrep.engine.scrub import Expected, scrub_region
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    from blobrep.service.fsck import _Fsck
    from blobrep.service.home import RegionConfig
    from blobrep.storage.base import Store

FsckKind = Literal[
    "operation",
    "manifest",
    "missing",
    "corrupt",
    "pack-missing",
    "pack-corrupt",
    "pack-size",
    "unknown-manifest",
    "temporary",
    "region",
]


@dataclass(frozen=True, slots=True)
class FsckProblem:
    """One difference between the catalog and a store, and whether it was repaired."""

    kind: FsckKind
    gallery: str
    region: str
    replica: str
    what: str
    """The chunk digest, manifest key, pack key, temporary file or version the problem is about."""
    detail: str
    repaired: bool = False


@dataclass(frozen=True, slots=True)
class FsckReport:
    """What fsck checked and found."""

    galleries: tuple[str, ...]
    regions: tuple[str, ...]
    versions_checked: int
    chunks_checked: int
    """Chunk copies checked over every replica: alone, or through the check of their pack."""
    problems: tuple[FsckProblem, ...]
    marked_failed: tuple[str, ...]
    """``version id in region`` for each version a repair could not make whole there."""
    packs_checked: int = 0
    """Pack copies read whole and checked by size and digest, over every replica."""

    @property
    def ok(self) -> bool:
        """True if nothing is wrong any more: no problem, or every one repaired."""
        return all(problem.repaired for problem in self.problems)


class _Run:
    """The state of one fsck run: counters and problems, filled gallery by gallery."""

    def __init__(
        self,
        service: _Fsck,
        repair: bool,
        grace: float,
        problems: list[FsckProblem],
        replicas: dict[str, list[Store]],
    ) -> None:
        self.service = service
        self.replicas = replicas
        self.repair = repair
        self.grace = grace
        self.problems = problems
        self.versions = 0
        self.chunks = 0
        self.packs = 0
        self.marked: list[str] = []

    async def gallery(
        self,
        gallery: str,
        within: list[str] | None,
        versions: list[GalleryImageVersion],
        regions: Sequence[RegionConfig],
    ) -> None:
        """Check ``gallery`` in each of ``regions``: all of it, or only the manifests under the
        prefixes ``within`` (the definitions and versions the caller may check)."""
        self.versions += len(versions)
        for region in regions:
            expected = Expected.in_region(gallery, versions, region.name)
            owed = max((wanted.replicas for wanted in expected.values()), default=0)
            stores = await self.service._replica_stores(region, owed, repair=self.repair)
            if not stores:
                continue
            donors = [
                store for name, found in self.replicas.items() if name != region.name for store in found
            ]
            try:
                await self._check_region(gallery, within, versions, region.name, stores, expected, donors)
            except BlobrepError as exc:
                self.problems.append(FsckProblem("region", gallery, region.name, "", "", str(exc)))

    async def _check_region(
        self,
        gallery: str,
        within: list[str] | None,
        versions: list[GalleryImageVersion],
        region: str,
        stores: list[Store],
        expected: dict[str, Expected],
        donors: list[Store],
    ) -> None:
        report = await scrub_region(
            stores, gallery, expected=expected, donors=donors, repair=self.repair, within=within
        )
        self.chunks += sum(summary.chunks_checked for summary in report.replicas)
        self.packs += sum(summary.packs_checked for summary in report.replicas)
        for problem in report.problems:
            self.problems.append(
                FsckProblem(
                    problem.kind,
                    gallery,
                    region,
                    problem.replica,
                    problem.key_or_digest,
                    problem.detail,
                    problem.repaired,
                )
            )
        if self.repair:
            by_key = {manifest_key(gallery, disk.name): v for v in versions for disk in version_disks(v)}
            for key in report.damaged_blobs:
                version = by_key.get(key)
                if version is not None:
                    await self._mark_failed(version, region)
        for position, store in enumerate(stores, 1):
            await self._unknown_manifests(gallery, within, versions, region, position, store)
            await self._temporaries(gallery, within, region, store)

    async def _mark_failed(self, version: GalleryImageVersion, region: str) -> None:
        status = version.status(region)
        if status is None or status.state is not ReplicationState.COMPLETED:
            return
        version_id = ResourceId.of_version(version.gallery, version.image, version.version)
        details = (
            "fsck found data no replica of any region holds a good copy of; publish the version again"
            f" (see 'blobrep fsck -r {version.gallery} -l {region}')"
        )
        failed = dataclasses.replace(status, state=ReplicationState.FAILED, progress=0, details=details)
        await self.service._catalog.set_region_status(version.gallery, version.image, version.version, failed)
        self.marked.append(f"{version_id} in {region}")

    async def _unknown_manifests(
        self,
        gallery: str,
        within: list[str] | None,
        versions: list[GalleryImageVersion],
        region: str,
        number: int,
        store: Store,
    ) -> None:
        known = {
            manifest_key(gallery, disk.name)
            for v in versions
            if _may_hold(v, region, number)
            for disk in version_disks(v)
        }
        prefixes = within if within is not None else [f"galleries/{gallery}/images/"]
        try:
            keys = [
                key
                for prefix in prefixes
                async for key in store.list(prefix)
                if key.endswith(f"/{MANIFEST_FILENAME}")
            ]
        except BlobrepError:
            return  # a replica that cannot be listed was reported by the scrub already
        for key in sorted(set(keys) - known):
            repaired = False
            if self.repair:
                blob = blob_of_manifest_key(gallery, key)
                if blob is not None:
                    repaired = await delete_manifest(store, gallery, blob) or True
            self.problems.append(
                FsckProblem(
                    "unknown-manifest",
                    gallery,
                    region,
                    store.name,
                    key,
                    "the catalog has no such version in this replica; a reader must never find it"
                    + ("; deleted (its chunks and packs go at the next gc)" if repaired else ""),
                    repaired,
                )
            )

    async def _temporaries(self, gallery: str, within: list[str] | None, region: str, store: Store) -> None:
        found = []
        for prefix in within if within is not None else [f"galleries/{gallery}/"]:
            try:
                found += await store.sweep_temporaries(prefix, older_than=self.grace, dry_run=not self.repair)
            except BlobrepError:
                return
        for info in found:
            self.problems.append(
                FsckProblem(
                    "temporary",
                    gallery,
                    region,
                    store.name,
                    info.key,
                    f"left by an interrupted write ({info.size} bytes)"
                    + ("; removed" if self.repair else ""),
                    self.repair,
                )
            )


def _may_hold(version: GalleryImageVersion, region: str, number: int) -> bool:
    """True if replica ``number`` of ``region`` may hold the version's manifest by the catalog."""
    target = version.publishing_profile.target(region)
    if target is None:
        status = version.status(region)  # a region being removed keeps its status until done
        return status is not None and number <= status.target_replicas
    return number <= version.publishing_profile.effective_replica_count(target)
