"""Deployments and scrub: reading a version in a region, the reason replicas exist.

A deployment reads a whole version in one region (a VM disk, or a read-and-discard) through
a reader that spreads chunk reads over the region's replicas, verifies every chunk, fails
over to another replica when one is missing or corrupt, and repairs the bad copy. A version
can be read in a region only once that region is ``Completed``, and only by a principal that
may deploy from it (Reader or above).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from blobrep.core.access import Action
from blobrep.core.disks import version_disks
from blobrep.core.names import BlobName
from blobrep.core.selection import Policy
from blobrep.core.vm_names import (
    DEFAULT_VM_NAME,
    data_disk,
    instance_name,
    os_disk,
    validate_scale_set_name,
)
from blobrep.service import queries
from blobrep.service.disk_deploy import check_single_file, deploy_disks, disk_reader
from blobrep.service.versions import _Versions

if TYPE_CHECKING:
    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.engine.deploy import DeploymentResult, DeploymentSummary
    from blobrep.engine.publish import ProgressCallback
    from blobrep.engine.scrub import ScrubReport
    from blobrep.engine.version_read import VersionReader
    from blobrep.service.home import RegionConfig
    from blobrep.storage.base import Store


class _Deployments(_Versions):
    @asynccontextmanager
    async def open_version(
        self,
        caller: str,
        image_id: str,
        *,
        location: str | None = None,
        policy: Policy = Policy.LEAST_LOADED,
        seed: int | None = None,
    ) -> AsyncIterator[VersionReader]:
        """A reader of the version ``image_id`` names (a version id, ``.../latest`` or a definition id).

        Raises:
            AccessDeniedError: the caller may not deploy from the version.
            UnavailableError: the version is not Completed in the region.
        """
        from blobrep.engine.version_read import VersionReader

        version, _, stores = await self.readable_version(caller, image_id, location=location)
        async with VersionReader(
            stores,
            version.gallery,
            BlobName(version.image, version.version),
            expect=version.blob,
            policy=policy,
            seed=seed,
        ) as reader:
            yield reader

    async def readable_version(
        self, caller: str, image_id: str, *, location: str | None = None
    ) -> tuple[GalleryImageVersion, str, list[Store]]:
        """The version ``image_id`` names, checked for ``caller`` as :meth:`open_version` checks
        it, the region it is read in, and that region's Completed replicas.

        This is what a reader shared by many callers is built from (the daemon keeps one per
        version and region, so that replica selection sees every download at once), while
        each caller is still checked by a call of its own: sharing a reader never shares a
        right to read.

        Raises:
            AccessDeniedError: the caller may not deploy from the version.
            UnavailableError: the version is not Completed in the region.
        """
        version, config = await self.run_query(
            caller,
            lambda reads, home, acting: queries.readable_version(reads, home, acting, image_id, location),
        )
        return version, config.name, self.completed_stores(version, config)

    def completed_stores(self, version: GalleryImageVersion, region: RegionConfig) -> list[Store]:
        """The replicas of ``region`` that hold ``version`` whole (its Completed replica count);
        none if the version does not target the region."""
        status = version.status(region.name)
        count = 0 if status is None else status.completed_replicas
        return [self._store(region, number, create=False) for number in range(1, count + 1)]

    async def deploy_vm(
        self,
        caller: str,
        image_id: str,
        *,
        location: str | None = None,
        output: Path | None = None,
        output_dir: Path | None = None,
        name: str = DEFAULT_VM_NAME,
        policy: Policy = Policy.LEAST_LOADED,
        progress: ProgressCallback | None = None,
    ) -> DeploymentResult:
        """Materialise the disks of the VM ``name`` (sparse, digest checked): the OS disk at
        ``output``, or every disk below ``output_dir/{name}/`` (``osdisk.img``, and
        ``lun{N}.img`` for each data disk); read and discard every disk with neither.

        The result is the OS disk's, with each data disk's in its ``data_disks``; ``progress``
        counts the bytes of every disk. If a disk fails, the disk files written before it are
        removed again: a VM is deployed whole or not at all.

        Raises:
            InvalidNameError: ``name`` cannot name a VM.
            InvalidParameterError: both ``output`` and ``output_dir`` are given, or ``output``
                is given for a version with data disks (one file cannot hold them all).
            InvalidInputError: ``output_dir`` is not a directory.
            AccessDeniedError: the caller may not deploy from the version.
            UnavailableError: the version is not Completed in the region.
        """
        from blobrep.engine.disk_dirs import vm_disk_file

        version, _, stores = await self.readable_version(caller, image_id, location=location)
        check_single_file(version, output)
        luns = [disk.lun for disk in version.data_disks]
        async with vm_disk_file(output=output, output_dir=output_dir, name=name, data_disks=luns) as target:
            return await deploy_disks(version, stores, target, name, policy, progress)

    async def deploy_scale_set(
        self,
        caller: str,
        image_id: str,
        count: int,
        *,
        location: str | None = None,
        output_dir: Path | None = None,
        name: str = DEFAULT_VM_NAME,
        policy: Policy = Policy.LEAST_LOADED,
        progress: ProgressCallback | None = None,
    ) -> DeploymentSummary:
        """Run ``count`` deployments of one version at once, sharing one reader (and its load view).

        The instances of the scale set ``name`` are ``{name}_0`` to ``{name}_{count-1}``;
        with ``output_dir`` instance ``i`` writes ``output_dir/{name}_{i}/osdisk.img``.
        ``progress`` gets the image bytes deployed over all of them, out of ``count`` x the size.
        The summary's statistics are taken after the reader closed, so they count the repairs
        that were still running in the background when the last deployment finished.

        Raises:
            InvalidNameError: ``name`` cannot name a VM, or the names of its instances
                would be longer than a VM name may be.
        """
        from blobrep.engine.deploy import DataDiskReader, deploy_many

        validate_scale_set_name(name, count)
        version, _, stores = await self.readable_version(caller, image_id, location=location)
        os_disk_of, *data = version_disks(version)
        async with AsyncExitStack() as readers:
            reader = await readers.enter_async_context(disk_reader(version, stores, os_disk_of, policy))
            extra = [
                DataDiskReader(
                    lun,
                    await readers.enter_async_context(disk_reader(version, stores, disk, policy)),
                    _data_disk_layout(name, lun),
                )
                for disk in data
                if (lun := disk.lun) is not None
            ]
            summary = await deploy_many(
                reader,
                count,
                output_dir=output_dir,
                layout=lambda index: os_disk(instance_name(name, index)),
                progress=progress,
                data_disks=extra,
            )
        statistics = reader.statistics()
        for disk in extra:
            statistics = statistics.plus(disk.reader.statistics())
        return dataclasses.replace(summary, statistics=statistics)

    async def scrub(
        self, caller: str, location: str, *, gallery: str | None = None, repair: bool = False
    ) -> list[ScrubReport]:
        """Verify every chunk of every replica in a region, per gallery; ``repair`` from healthy replicas.

        Checking needs Reader, repairing Contributor: on the gallery, or else on definitions or
        versions in it, which are then scrubbed alone (their manifests and the chunks those
        name). Without ``gallery``, every gallery the caller can see is scrubbed where it may.

        Raises:
            ResourceNotFoundError: the region is not one of this home's, or the gallery does not
                exist (said only to a caller that may see it).
            AccessDeniedError: the caller may scrub nothing in the gallery (or, without
                ``gallery``, nothing in any gallery it can see).
        """
        from blobrep.engine.scrub import Expected, scrub_region
        from blobrep.service._base import manifest_prefixes

        authorizer = await self._authorizer(caller)
        region = await self._region(location)
        action = Action.WRITE if repair else Action.READ
        reaches = await self._reaches(authorizer, action, gallery)
        reports: list[ScrubReport] = []
        for where, versions in reaches:
            name = where.gallery.gallery
            assert name is not None
            expected = Expected.in_region(name, versions, region.name)
            owed = max((wanted.replicas for wanted in expected.values()), default=0)
            stores = await self._known_stores(region, holding=owed, repair=repair)
            if stores:
                reports.append(
                    await scrub_region(
                        stores, name, expected=expected, repair=repair, within=manifest_prefixes(where)
                    )
                )
        return reports


def _data_disk_layout(name: str, lun: int) -> Callable[[int], str]:
    """Where instance ``i`` of the scale set ``name`` writes its data disk at ``lun``."""
    return lambda index: data_disk(instance_name(name, index), lun)
