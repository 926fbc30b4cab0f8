"""``fsck``: the catalog against the stores, and what to do about every difference.

The catalog is the authority; the replicas must agree with it. For each gallery and region
checked, fsck finds:

* ``operation``: an operation whose process died (moved on by recovery, which opening the
  service runs; fsck reports what it did);
* ``manifest``: a replica the catalog counts complete for a version whose manifest is
  missing, damaged or not the pinned one;
* ``missing`` / ``corrupt``: a chunk such a manifest names that the replica lacks or holds bad
  (every chunk of every Completed version is read and verified, through the one read path);
* ``unknown-manifest``: a manifest the catalog does not know there (its version was deleted,
  or never targeted that region or replica): a reader must never find one;
* ``temporary``: a temporary file older than the grace, left by a killed writer.

With ``repair``: chunks and manifests are repaired from a good copy in the same region, else
from any other region (verified against the pin, manifest written only after its chunks); a
version that still cannot be served whole in a region is marked ``Failed`` there with the
reason; unknown manifests are deleted (their chunks go at the next ``gc``); old temporaries
are removed. A problem fsck repaired is reported as repaired; the check is clean when nothing
is left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import anyio.to_thread

from blobrep.core.access import Action
from blobrep.core.gallery import GalleryImageVersion, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.core.keys import MANIFEST_FILENAME, blob_of_manifest_key, manifest_key
from blobrep.core.names import BlobName
from blobrep.core.regions import normalize_region
from blobrep.engine.manifests import delete_manifest
from blobrep.engine.scrub import Expected, scrub_region
from blobrep.errors import BlobrepError
from blobrep.service.home import RegionConfig
from blobrep.service.recovery import _Recovery
from blobrep.storage.base import Store

FsckKind = Literal["operation", "manifest", "missing", "corrupt", "unknown-manifest", "temporary", "region"]

#: Temporaries younger than this (seconds) may belong to a write in progress.
DEFAULT_GRACE: Final = 3600.0


@dataclass(frozen=True, slots=True)
class FsckProblem:
    """One difference between the catalog and a store, and whether it was repaired."""

    kind: FsckKind
    gallery: str
    region: str
    replica: str
    what: str
    """The chunk digest, manifest key, temporary file or version the problem is about."""
    detail: str
    repaired: bool = False


@dataclass(frozen=True, slots=True)
class FsckReport:
    """What fsck checked and found."""

    galleries: tuple[str, ...]
    regions: tuple[str, ...]
    versions_checked: int
    chunks_checked: int
    problems: tuple[FsckProblem, ...]
    marked_failed: tuple[str, ...]
    """``version id in region`` for each version a repair could not make whole there."""

    @property
    def ok(self) -> bool:
        """True if nothing is wrong any more: no problem, or every one repaired."""
        return all(problem.repaired for problem in self.problems)


class _Fsck(_Recovery):
    async def fsck(
        self,
        caller: str,
        *,
        gallery: str | None = None,
        location: str | None = None,
        repair: bool = False,
        grace: float = DEFAULT_GRACE,
    ) -> FsckReport:
        """Check (and with ``repair``, repair) the stores against the catalog; see the module docstring.

        Checking needs Reader on each gallery, repairing Contributor. Without ``gallery``,
        every gallery the caller can see is checked.

        Raises:
            ResourceNotFoundError: the gallery or region does not exist.
            AccessDeniedError: the caller may not check (or repair) the gallery.
        """
        authorizer = await self._authorizer(caller)
        if gallery is not None:
            await self._catalog.get_gallery(gallery)
        names = (
            [gallery] if gallery is not None else [item.name for item in await self._catalog.list_galleries()]
        )
        action = Action.WRITE if repair else Action.READ
        galleries = []
        for name in names:
            scope = ResourceId.of_gallery(name)
            if gallery is None and not authorizer.sees(scope):
                continue
            authorizer.check(action, scope)
            galleries.append(name)
        configs = await self._regions()
        if location is not None:
            configs = {(region := await self._region(normalize_region(location))).name: region}
        recovered = [*self._recovered, *await self.recover()]
        self._recovered = ()
        problems = [
            FsckProblem("operation", "", "", "", line, "its process died; recovery moved it on", True)
            for line in recovered
        ]
        # Every replica of every region, listed once: each region's donors are the others'.
        replicas = {
            name: await self._replica_stores(region, 0) for name, region in (await self._regions()).items()
        }
        run = _Run(self, repair, grace, problems, replicas)
        for name in galleries:
            await run.gallery(name, await self._versions_of(name), list(configs.values()))
        return FsckReport(
            tuple(galleries),
            tuple(sorted(configs)),
            run.versions,
            run.chunks,
            tuple(problems),
            tuple(run.marked),
        )

    async def _replica_stores(self, region: RegionConfig, at_least: int) -> list[Store]:
        """Every replica of ``region`` that exists, and those the catalog counts on, in order."""
        numbers = await anyio.to_thread.run_sync(self._home.replica_numbers, region)
        wanted = sorted(set(numbers) | set(range(1, at_least + 1)))
        return [self._store(region, number, create=False) for number in wanted]


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
        self.marked: list[str] = []

    async def gallery(
        self,
        gallery: str,
        versions: list[GalleryImageVersion],
        regions: Sequence[RegionConfig],
    ) -> None:
        self.versions += len(versions)
        for region in regions:
            expected = Expected.in_region(gallery, versions, region.name)
            owed = max((wanted.replicas for wanted in expected.values()), default=0)
            stores = await self.service._replica_stores(region, owed)
            if not stores:
                continue
            donors = [
                store for name, found in self.replicas.items() if name != region.name for store in found
            ]
            try:
                await self._check_region(gallery, versions, region.name, stores, expected, donors)
            except BlobrepError as exc:
                self.problems.append(FsckProblem("region", gallery, region.name, "", "", str(exc)))

    async def _check_region(
        self,
        gallery: str,
        versions: list[GalleryImageVersion],
        region: str,
        stores: list[Store],
        expected: dict[str, Expected],
        donors: list[Store],
    ) -> None:
        report = await scrub_region(stores, gallery, expected=expected, donors=donors, repair=self.repair)
        self.chunks += sum(summary.chunks_checked for summary in report.replicas)
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
            by_key = {manifest_key(gallery, BlobName(v.image, v.version)): v for v in versions}
            for key in report.damaged_blobs:
                version = by_key.get(key)
                if version is not None:
                    await self._mark_failed(version, region)
        for position, store in enumerate(stores, 1):
            await self._unknown_manifests(gallery, versions, region, position, store)
            await self._temporaries(gallery, region, store)

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
        self, gallery: str, versions: list[GalleryImageVersion], region: str, number: int, store: Store
    ) -> None:
        known = {
            manifest_key(gallery, BlobName(v.image, v.version))
            for v in versions
            if _may_hold(v, region, number)
        }
        prefix = f"galleries/{gallery}/images/"
        try:
            keys = [key async for key in store.list(prefix) if key.endswith(f"/{MANIFEST_FILENAME}")]
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
                    + ("; deleted (its chunks go at the next gc)" if repaired else ""),
                    repaired,
                )
            )

    async def _temporaries(self, gallery: str, region: str, store: Store) -> None:
        try:
            found = await store.sweep_temporaries(
                f"galleries/{gallery}/", older_than=self.grace, dry_run=not self.repair
            )
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
