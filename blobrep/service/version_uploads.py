"""Versions whose disk arrives later: recorded first, published when the upload comes.

Over HTTP a version is created in two requests: the version's description (JSON, answered at
once) and then its disk (a raw body streamed into the publish pipeline). Between the two the
version is ``Creating`` with its source region ``Unknown`` and :data:`AWAITING_DISK` in the
region's details, and no operation row: nothing is running. Recovery leaves such a version
alone (see :mod:`blobrep.service.recovery`), unlike one whose publish had begun.

An upload that breaks off, ends short or fails leaves the version ``Failed`` with no blob,
exactly as a failed local create does; describing the version again (the same PUT) makes it
wait for its disk once more, and the next upload reuses every chunk the failed one wrote.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from blobrep.core.access import Action
from blobrep.core.gallery import GalleryImageVersion, ProvisioningState, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError, PreconditionError
from blobrep.service.operations import hold_operation
from blobrep.service.version_options import (
    VersionOptions,
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
    ) -> GalleryImageVersion:
        """Record a version that waits for its disk (Contributor on the definition).

        The checks are those of :meth:`create_version`; a ``Failed`` create without a blob,
        or a version still waiting for its disk, is reset to this description, waiting again.

        Raises:
            AlreadyExistsError: the version exists (and is not a Failed create to redo).
            BusyError: another live process is creating or deleting this version.
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_image(gallery, image))
        record = await self._new_record(gallery, image, number, location, options, await self._regions())
        source = record.status(record.location)
        assert source is not None
        record = dataclasses.replace(
            record,
            regions=tuple(awaiting_disk(status) if status is source else status for status in record.regions),
        )
        try:
            redo = ProvisioningState.FAILED if await self._record_new_version(record) else None
        except AlreadyExistsError:
            # Described before, its disk never came (a client that went away before the
            # upload): the new description replaces the old one.
            if not is_awaiting_disk(await self._catalog.get_version(gallery, image, number)):
                raise
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
    ) -> GalleryImageVersion:
        """Publish ``source`` as the disk of a version waiting for it (Contributor on the version).

        ``on_published`` receives what the publish did, as for :meth:`create_version`.

        Raises:
            PreconditionError: the version is not waiting for its disk (published already,
                being published by another upload, or Failed: describe it again first).
            BusyError: another live process is publishing it.
            SourceError: the upload broke off, or ended short of or ran past its length
                (the version is left Failed, without a blob).
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_version(gallery, image, number))
        _check_awaiting(await self._catalog.get_version(gallery, image, number))
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.CREATE):
            record = await self._catalog.get_version(gallery, image, number)
            _check_awaiting(record)
            status = record.status(record.location)
            assert status is not None
            publishing = dataclasses.replace(
                status, state=ReplicationState.REPLICATING, details="publishing the uploaded disk"
            )
            await self._catalog.set_region_status(gallery, image, number, publishing)
            published = await self._publish_version(
                await self._catalog.get_version(gallery, image, number),
                await self._regions(),
                [(None, source)],
                None,
                progress,
                on_published,
            )
        await self._after_completion(published)
        return await self._catalog.get_version(gallery, image, number)


def _check_awaiting(record: GalleryImageVersion) -> None:
    if is_awaiting_disk(record):
        return
    version_id = ResourceId.of_version(record.gallery, record.image, record.version)
    if record.provisioning_state is ProvisioningState.FAILED:
        hint = "it is Failed: describe the version again (the same PUT) and upload its disk after that"
    elif record.blob is not None:
        hint = "its disk is published already"
    else:
        hint = f"it is {record.provisioning_state} and its disk is being published by another upload"
    raise PreconditionError(f"{version_id} is not waiting for its disk: {hint}")
