"""Versions created from another version: the analogue of ``az``'s ``--image-version`` source.

:meth:`_VersionCopies.create_version_from` records a new version whose disk is an existing
version's, in the same gallery or in another one the caller can read, and gives it that disk in
its source region (the new version's ``location``, default the target gallery's home region):

* the caller needs Contributor on the target definition and Reader on the source version. The
  roles are checked before the catalog is asked about the source, so a caller who may not see
  it is refused in the same words whether or not it exists;
* the source id must name a version by number (``/galleries/G/images/I/versions/X.Y.Z``): not
  ``latest``, which moves, nor a definition or gallery;
* the source must be Completed in the new version's source region, where it is read; the error
  says where it is Completed instead. The definitions must agree on OS type, Hyper-V
  generation and architecture, or the disk would not boot as the new definition says it does;
* the copy is :func:`~blobrep.engine.version_copy.copy_version`: in the same gallery nothing
  but the manifest is written; across galleries each chunk is copied once, verified on the way.

Afterwards the new version is like any published version: its record holds the source's blob
with its own manifest pin and ``source_id``, its source region is Completed, and its other
target regions wait for the replicator, which copies only the chunks they lack.

Crash safety is that of a publish (:mod:`blobrep.service.versions`): the version is recorded
``Creating`` under an operation row, a failed or cancelled copy leaves it ``Failed`` with the
reason in its source region's details, a killed process is moved on by recovery, and running
the same create again redoes it, moving only what is still missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio

from blobrep.core.access import Action
from blobrep.core.disks import version_disks
from blobrep.core.gallery import (
    BlobInfo,
    DataDisk,
    GalleryImageVersion,
    ProvisioningState,
    RegionStatus,
    ReplicationState,
)
from blobrep.core.ids import ResourceId, ResourceKind
from blobrep.core.names import BlobName
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError, InvalidParameterError, ResourceNotFoundError, UnavailableError
from blobrep.service.operations import hold_operation
from blobrep.service.status_writer import status_writing
from blobrep.service.version_options import VersionOptions, is_awaiting_disk
from blobrep.service.versions import _Versions

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from blobrep.service.home import RegionConfig
    from blobrep.service.status_writer import ReplicationProgress

_NOT_GIVEN = VersionOptions()


def source_version_id(text: str) -> ResourceId:
    """The version ``text`` names as the source of a new version's disk.

    Raises:
        InvalidNameError: ``text`` is no resource id.
        InvalidParameterError: it names the home, a gallery, a definition or ``latest``.
    """
    source = ResourceId.parse(text.strip())
    example = "/galleries/G/images/I/versions/X.Y.Z"
    if source.kind is not ResourceKind.IMAGE_VERSION:
        raise InvalidParameterError(
            f"the source {text!r} names {_a(source.kind)}, not an image version: give its id, {example}"
        )
    if source.latest:
        raise InvalidParameterError(
            f"the source {text!r} says 'latest', which moves as versions are published: give the"
            f" number of the version to copy, {example}"
        )
    return source


def _a(kind: ResourceKind) -> str:
    """``kind`` in words, for a message that says what an id names instead of a version."""
    return {
        ResourceKind.HOME: "the home",
        ResourceKind.GALLERY: "a gallery",
        ResourceKind.IMAGE_DEFINITION: "an image definition",
    }.get(kind, str(kind))


class _VersionCopies(_Versions):
    async def create_version_from(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        *,
        source_version: str,
        location: str | None = None,
        options: VersionOptions = _NOT_GIVEN,
        progress: ReplicationProgress | None = None,
        task_status: TaskStatus[GalleryImageVersion] = anyio.TASK_STATUS_IGNORED,
    ) -> GalleryImageVersion:
        """Record a version whose disk is the version ``source_version`` (an id) and copy that
        disk into the new version's source region; see the module docstring.

        ``progress`` hears the copy's progress in the source region. ``task_status`` is told
        the version as recorded, before the copy starts (``task_group.start`` returns then:
        how the daemon answers at once and lets the copy run on).

        Raises:
            InvalidParameterError: the source id names no version by number, or the
                definitions differ in OS type, Hyper-V generation or architecture.
            AccessDeniedError: the caller may not write to the definition or read the source.
            ResourceNotFoundError: the source version (or the target gallery, definition or
                a region) does not exist.
            UnavailableError: the source is not Completed in the new version's source region.
            AlreadyExistsError: the version exists (and is not a Failed create to redo).
            BusyError: another live process is creating or deleting this version, or garbage
                collection holds a replica of the source region (the version is left Failed).
            CopyError: the disk could not be copied (the version is left Failed).
            ManifestError, ManifestNotFoundError, StorageError: no replica of the source region
                holds the source's manifest as the catalog pinned it (the version is left Failed).
        """
        number = ImageVersion.parse(version)
        source_id = source_version_id(source_version)
        await self._check(caller, Action.WRITE, ResourceId.of_image(gallery, image))
        try:
            await self._check(caller, Action.DEPLOY, source_id)
        except ResourceNotFoundError as exc:
            raise _source_missing(source_id, exc) from None
        regions = await self._regions()
        record = await self._new_record(gallery, image, number, location, options, regions)
        try:
            source = await self._copyable(source_id, record)
        except ResourceNotFoundError as exc:
            raise _source_missing(source_id, exc) from None
        record = _copying(record, source_id)
        redo = await self._record_copy(record)
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.CREATE):
            if redo is not None:
                await self._catalog.reset_version(record, expected=redo)
            task_status.started(await self._catalog.get_version(gallery, image, number))
            copied = await self._copy_into(record, source, regions, progress)
        await self._after_completion(copied)
        return await self._catalog.get_version(gallery, image, number)

    async def _copyable(self, source_id: ResourceId, record: GalleryImageVersion) -> GalleryImageVersion:
        """The source version, once it is known to be a disk ``record`` may take in its region.

        Raises:
            ResourceNotFoundError: the source does not exist.
            UnavailableError: it has no disk, or is not Completed in ``record``'s source region.
            InvalidParameterError: its definition and ``record``'s differ in what the disk is.
        """
        assert source_id.gallery is not None and source_id.image is not None
        assert source_id.version is not None
        source = await self._catalog.get_version(source_id.gallery, source_id.image, source_id.version)
        region = record.location
        if source.blob is None or source.provisioning_state is not ProvisioningState.SUCCEEDED:
            raise UnavailableError(
                f"{source_id} has no published disk to copy (it is {source.provisioning_state});"
                " copy it once it is published"
            )
        if not source.is_completed_in(region):
            raise UnavailableError(_not_completed(source_id, source, region))
        theirs = await self._catalog.get_definition(source_id.gallery, source_id.image)
        ours = await self._catalog.get_definition(record.gallery, record.image)
        for what, mine, its in (
            ("OS type", ours.os_type, theirs.os_type),
            ("Hyper-V generation", ours.hyper_v_generation, theirs.hyper_v_generation),
            ("architecture", ours.architecture, theirs.architecture),
        ):
            if mine != its:
                raise InvalidParameterError(
                    f"{source_id} is a disk of {what} {its}, and image definition {record.image!r} of"
                    f" gallery {record.gallery!r} is {mine}: copy it into a definition of {what} {its}"
                )
        return source

    async def _record_copy(self, record: GalleryImageVersion) -> ProvisioningState | None:
        """Record ``record``; the state it is in if instead there is one to redo: a Failed
        create without a blob, or a version described over HTTP still waiting for its disk.

        Raises:
            AlreadyExistsError: the version exists otherwise.
        """
        try:
            if await self._record_new_version(record):
                return ProvisioningState.FAILED
        except AlreadyExistsError:
            existing = await self._catalog.get_version(record.gallery, record.image, record.version)
            if not is_awaiting_disk(existing):
                raise
            return ProvisioningState.CREATING
        return None

    async def _copy_into(
        self,
        record: GalleryImageVersion,
        source: GalleryImageVersion,
        regions: Mapping[str, RegionConfig],
        progress: ReplicationProgress | None,
    ) -> GalleryImageVersion:
        """Copy ``source``'s disks (its OS disk and every data disk) into ``record``'s source
        region and record the outcome: the blobs and the region Completed, or the version
        Failed with the reason."""
        gallery, image, number, region = record.gallery, record.image, record.version, record.location
        target = record.publishing_profile.target(region)
        assert target is not None and source.blob is not None and record.source_id is not None
        count = record.publishing_profile.effective_replica_count(target)
        config = regions[region]
        status = source.status(region)
        held = 0 if status is None else status.completed_replicas
        try:
            # The catalog knows of every replica before the first byte goes into one.
            await self._note_replicas(region, count)

            async def write(update: RegionStatus) -> None:
                await self._catalog.set_region_status(gallery, image, number, update)

            # Those polling the version (the daemon answers before the copy ends) see it go.
            details = f"copying the disk of {record.source_id}"
            async with status_writing(write, progress, details) as writer:
                copied = await self._copy_disks(source, record, config, held, count, writer)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                reason = str(exc) or type(exc).__name__
                if not isinstance(exc, Exception):
                    reason = "the copy was interrupted"
                await self._mark_failed(record, f"copy from {record.source_id} failed: {reason}")
            raise
        luns = [disk.lun for disk in version_disks(source)[1:] if disk.lun is not None]
        data = tuple(DataDisk(lun, blob) for lun, blob in zip(luns, copied[1:], strict=True))
        done = dataclasses.replace(
            record, provisioning_state=ProvisioningState.SUCCEEDED, blob=copied[0], data_disks=data
        )
        await self._catalog.update_version(done)
        completed = RegionStatus(region, ReplicationState.COMPLETED, 100, count, count, "")
        await self._catalog.set_region_status(gallery, image, number, completed)
        return await self._catalog.get_version(gallery, image, number)

    async def _copy_disks(
        self,
        source: GalleryImageVersion,
        record: GalleryImageVersion,
        config: RegionConfig,
        held: int,
        count: int,
        progress: ReplicationProgress,
    ) -> list[BlobInfo]:
        """Copy every disk of ``source`` (read from its ``held`` Completed replicas of the
        region) into ``count`` replicas of the region for ``record``; their blobs, in order."""
        from blobrep.engine.replicate_disks import DiskProgress
        from blobrep.engine.version_copy import copy_version

        region = record.location
        copied: list[BlobInfo] = []
        disks = version_disks(source)
        moved: dict[str, int] = {}
        for position, disk in enumerate(disks):
            assert disk.info is not None  # a Succeeded version has every disk published
            # One progress over every disk, as replication reports a multi-disk version.
            ahead = sum(later.info.stored_bytes for later in disks[position + 1 :] if later.info)
            result = await copy_version(
                [self._store(config, replica, create=False) for replica in range(1, held + 1)],
                source.gallery,
                disk.name,
                [self._store(config, replica, create=True) for replica in range(1, count + 1)],
                record.gallery,
                BlobName(record.image, record.version, disk.lun),
                region=region,
                expect=disk.info,
                progress=DiskProgress(progress, moved, ahead, position == len(disks) - 1),
            )
            moved[region] = moved.get(region, 0) + result.copied_bytes
            copied.append(result.blob)
        return copied

    async def _mark_failed(self, record: GalleryImageVersion, details: str) -> None:
        """Leave ``record`` Failed, its source region saying why, so that ``show`` tells what
        happened and the same create may redo it (a Failed version without a blob)."""
        status = record.status(record.location)
        assert status is not None
        failed = dataclasses.replace(status, state=ReplicationState.FAILED, progress=0, details=details)
        await self._catalog.set_region_status(record.gallery, record.image, record.version, failed)
        await self._catalog.update_version(
            dataclasses.replace(record, provisioning_state=ProvisioningState.FAILED)
        )
        await self._waiting_no_more(record)


def _copying(record: GalleryImageVersion, source_id: ResourceId) -> GalleryImageVersion:
    """``record`` naming its source, its source region saying what it is doing."""
    details = f"copying the disk of {source_id}"
    return dataclasses.replace(
        record,
        source_id=str(source_id),
        regions=tuple(
            dataclasses.replace(status, details=details) if status.region == record.location else status
            for status in record.regions
        ),
    )


def _not_completed(source_id: ResourceId, source: GalleryImageVersion, region: str) -> str:
    """Why ``source`` cannot be copied in ``region``, where it could be, and how it could be here."""
    status = source.status(region)
    if status is None:
        here = f"{region} is not one of its target regions"
        remedy = f"add {region} to its target regions and replicate it there first"
    else:
        here = f"it is {status.state} in {region}" + (f" ({status.details})" if status.details else "")
        remedy = f"wait until its replication to {region} is Completed"
    completed = [item.region for item in source.regions if item.state is ReplicationState.COMPLETED]
    if not completed:
        return f"{source_id} cannot be copied in {region}: {here}, and it is Completed in no region yet"
    return (
        f"{source_id} cannot be copied in {region}: {here}; it is Completed in {', '.join(completed)}:"
        f" create the version with --location {completed[0]}, or {remedy}"
    )


def _source_missing(source_id: ResourceId, exc: ResourceNotFoundError) -> ResourceNotFoundError:
    """``exc`` said of the source version, which is not the resource the request names."""
    return ResourceNotFoundError(f"the source version {source_id} does not exist ({exc}): name one that does")
