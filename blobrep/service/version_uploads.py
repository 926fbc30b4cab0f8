"""Versions whose disk arrives later: recorded first, published when the upload comes.

Over HTTP a version is created in two requests: the version's description (JSON, answered at
once) and then its disk (a raw body streamed into the publish pipeline). Between the two the
version is ``Creating`` with its source region ``Unknown`` and :data:`AWAITING_DISK` in the
region's details, and no operation row: nothing is running. Recovery leaves such a version
alone (see :mod:`blobrep.service.recovery`), unlike one whose publish had begun.

A version with data disks waits for each of them too: described with their LUNs, each disk
is one upload of its own (any order, one at a time), and the source region becomes
``Completed`` only with the last (:meth:`_Versions._publish_version` records each disk as it
arrives); meanwhile the region's details name the disks still awaited.

An upload that breaks off, ends short or fails leaves the version ``Failed`` with no disk
recorded (those uploaded before it included), exactly as a failed local create does;
describing the version again (the same PUT) makes it wait for its disks once more, and the
next uploads reuse every chunk the failed ones wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from blobrep.core.access import Action
from blobrep.core.disks import pending_disks
from blobrep.core.gallery import GalleryImageVersion, ProvisioningState, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError, InvalidParameterError, PreconditionError
from blobrep.service.operations import hold_operation
from blobrep.service.version_options import (
    VersionOptions,
    awaiting_details,
    awaiting_disk,
    is_awaiting_disk,
)
from blobrep.service.versions import _Versions

if TYPE_CHECKING:
    from collections.abc import Callable

    from blobrep.engine.publish import PublishProgressCallback, PublishResult
    from blobrep.engine.source import PublishSource


class _VersionUploads(_Versions):
    async def begin_version(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        *,
        location: str | None = None,
        options: VersionOptions = VersionOptions(),  # noqa: B008 (frozen, never mutated)
        data_disks: Sequence[int] = (),
    ) -> GalleryImageVersion:
        """Record a version that waits for its OS disk and the data disks at the LUNs
        ``data_disks`` (Contributor on the definition).

        The checks are those of :meth:`create_version`; a ``Failed`` create without a blob,
        or a version still waiting for its disks, is reset to this description, waiting again.

        Raises:
            InvalidNameError: a LUN is not 0..63 (nothing is recorded).
            InvalidParameterError: a LUN is given twice (nothing is recorded).
            AlreadyExistsError: the version exists (and is not a Failed create to redo).
            PreconditionError: it waits for its disks but some have arrived (the message
                names them): describing it again would drop them.
            BusyError: another live process is creating or deleting this version.
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_image(gallery, image))
        disks = pending_disks(data_disks)
        record = await self._new_record(gallery, image, number, location, options, await self._regions())
        record = dataclasses.replace(record, data_disks=disks)
        source = record.status(record.location)
        assert source is not None
        waiting = awaiting_disk(source, awaiting_details(record))
        record = dataclasses.replace(
            record, regions=tuple(waiting if status is source else status for status in record.regions)
        )
        try:
            redo = ProvisioningState.FAILED if await self._record_new_version(record) else None
        except AlreadyExistsError:
            # Described before, its disk never came (a client that went away before the
            # upload): the new description replaces the old one.
            existing = await self._catalog.get_version(gallery, image, number)
            if not is_awaiting_disk(existing):
                raise
            _check_nothing_arrived(existing)
            redo = ProvisioningState.CREATING
        if redo is not None:
            async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.CREATE):
                await self._catalog.reset_version(record, expected=redo)
        return await self._catalog.get_version(gallery, image, number)

    async def upload_version(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        source: PublishSource,
        *,
        progress: PublishProgressCallback | None = None,
        on_published: Callable[[PublishResult], None] | None = None,
        lun: int | None = None,
    ) -> GalleryImageVersion:
        """Publish ``source`` as a disk of a version waiting for it (Contributor on the version):
        its OS disk, or with ``lun`` the data disk there. The source region is Completed
        (and replication may start) once every disk of the version has arrived.

        ``on_published`` receives what the publish did, as for :meth:`create_version`.

        Raises:
            InvalidParameterError: the version was not described with a data disk at ``lun``.
            PreconditionError: the version is not waiting for this disk (this disk or all of
                them uploaded already, another upload of it running, or Failed: describe
                it again first).
            BusyError: another live process is publishing it.
            SourceError: the upload broke off, or ended short of or ran past its length
                (the version is left Failed, without a blob).
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_version(gallery, image, number))
        _check_awaiting(await self._catalog.get_version(gallery, image, number), lun)
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.CREATE):
            record = await self._catalog.get_version(gallery, image, number)
            _check_awaiting(record, lun)
            status = record.status(record.location)
            assert status is not None
            publishing = dataclasses.replace(
                status, state=ReplicationState.REPLICATING, details=f"publishing the uploaded {_disk(lun)}"
            )
            await self._catalog.set_region_status(gallery, image, number, publishing)
            published = await self._publish_version(
                await self._catalog.get_version(gallery, image, number),
                await self._regions(),
                [(lun, source)],
                None,
                progress,
                on_published,
            )
        if published.published:
            await self._after_completion(published)
        return await self._catalog.get_version(gallery, image, number)


def _check_nothing_arrived(record: GalleryImageVersion) -> None:
    """Raise if a disk of ``record`` (waiting for its disks) has arrived: a new description
    would drop it, and with it the upload the client was told had succeeded.

    Raises:
        PreconditionError: naming the disks that arrived, those still awaited, and the ways on.
    """
    arrived = ["the OS disk"] if record.blob is not None else []
    arrived += [f"LUN {disk.lun}" for disk in record.data_disks if disk.blob is not None]
    if arrived:
        version_id = ResourceId.of_version(record.gallery, record.image, record.version)
        status = record.status(record.location)
        still = "" if status is None else f" ({status.details})"
        raise PreconditionError(
            f"{version_id} has received {', '.join(arrived)} already{still}: its description cannot"
            " change now; upload the disks still awaited, or delete the version and describe it anew"
        )


def _disk(lun: int | None) -> str:
    return "OS disk" if lun is None else f"data disk at LUN {lun}"


def _check_awaiting(record: GalleryImageVersion, lun: int | None) -> None:
    """Raise unless ``record`` waits for the disk ``lun`` (None: its OS disk) and nothing
    uploads into it now."""
    version_id = ResourceId.of_version(record.gallery, record.image, record.version)
    luns = {disk.lun: disk for disk in record.data_disks}
    if lun is not None and lun not in luns:
        described = ", ".join(str(known) for known in sorted(luns)) or "none"
        raise InvalidParameterError(
            f"{version_id} has no data disk at LUN {lun} (its data disks: LUN {described}): upload"
            " to a LUN it was described with, or describe it again with this one"
        )
    if is_awaiting_disk(record):
        arrived = record.blob if lun is None else luns[lun].blob
        if arrived is None:
            return
        status = record.status(record.location)
        still = "" if status is None else f" ({status.details})"
        raise PreconditionError(
            f"the {_disk(lun)} of {version_id} is uploaded already{still}: upload each disk once"
        )
    if record.provisioning_state is ProvisioningState.FAILED:
        hint = "it is Failed: describe the version again (the same PUT) and upload its disks after that"
    elif record.published:
        hint = "its disks are published already" if record.data_disks else "its disk is published already"
    else:
        hint = f"it is {record.provisioning_state} and a disk of it is being published by another upload"
    what = "disk" if lun is None and not record.data_disks else _disk(lun)
    raise PreconditionError(f"{version_id} is not waiting for its {what}: {hint}")
