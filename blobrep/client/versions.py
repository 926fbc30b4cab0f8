"""Image versions over HTTP: the version commands' service calls, one request or a few each.

* create: ``PUT .../versions/{v}`` describes the version (``201``, an operation to poll),
  then ``PUT .../versions/{v}/content`` streams the source into the daemon's publish pipeline
  and answers once the disk is published, as a local create returns once the source region
  holds it;
* replicate: polls the operation of the last create or update of the version until the
  daemon's reconcile loop has brought every target region to its replica count, or a region
  failed for good;
* update: ``PATCH`` (the profile is recorded when it answers, as locally), delete: ``DELETE``
  and the wait for its operation, so that the command returns once the version is gone;
* deploy: every disk of the version read in a region (``GET .../content`` and
  ``.../dataDisks/{lun}/content``) into sparse files (:mod:`blobrep.client.version_disks`).

Versions are always read with ``$expand=ReplicationStatus``: the CLI prints the state of
each region in its tables, and the value read back must carry it.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from blobrep.client.bodies import version_body
from blobrep.client.errors import EndpointError
from blobrep.client.operations import operation_url, wait_for
from blobrep.client.resources import version_from
from blobrep.client.version_disks import download_disks, upload_disks
from blobrep.core.disks import check_luns
from blobrep.core.gallery import ReplicationState, TargetRegion
from blobrep.core.ids import LATEST, ResourceId, image_reference
from blobrep.core.selection import Policy
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError, InvalidParameterError, SourceError
from blobrep.service.disk_deploy import check_single_file

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx2

    from blobrep.client.connection import Connection
    from blobrep.core.gallery import GalleryImageVersion, PublishingProfile
    from blobrep.engine.deploy import DeploymentResult
    from blobrep.engine.publish import ProgressCallback, PublishFigures, PublishProgressCallback
    from blobrep.engine.source import BlobSource, PublishSource
    from blobrep.service import VersionOptions

EXPANDED: Final = {"$expand": "ReplicationStatus"}


@dataclass(frozen=True, slots=True)
class RegionProgress:
    """Where one region's replication stands, as the CLI's region bars draw it."""

    region: str
    done_bytes: int
    total_bytes: int
    completed_replicas: int
    target_replicas: int


def version_path(gallery: str, image: str, version: str) -> str:
    """The route of a version (``latest`` included), its parts checked as the service checks them.

    Raises:
        InvalidVersionError, InvalidNameError: a part is malformed.
    """
    if version == LATEST:
        return f"{ResourceId.of_image(gallery, image)}/versions/{LATEST}"
    number = ImageVersion.parse(version)
    return str(ResourceId.of_version(gallery, image, number))


class RemoteVersions:
    """The version calls, against one connection. It remembers the operation of each create
    or update it made, for :meth:`replicate` to wait on."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._operations: dict[str, str] = {}

    def follow(self, path: str, operation: str) -> None:
        """Remember ``operation`` (its URL) as the last create or update of the version at
        ``path``, for :meth:`replicate` to wait on."""
        self._operations[path] = operation

    async def list(self, gallery: str, image: str) -> list[GalleryImageVersion]:
        path = f"{ResourceId.of_image(gallery, image)}/versions"
        return [version_from(item) for item in await self._connection.listing(path, params=EXPANDED)]

    async def show(
        self, gallery: str, image: str, version: str, *, location: str | None = None
    ) -> GalleryImageVersion:
        params = dict(EXPANDED) if location is None else {**EXPANDED, "location": location}
        path = version_path(gallery, image, version)
        return version_from(await self._connection.document("GET", path, params=params))

    async def create(
        self,
        gallery: str,
        image: str,
        version: str,
        *,
        source: str | os.PathLike[str] | PublishSource,
        location: str | None,
        options: VersionOptions,
        progress: PublishProgressCallback | None,
        on_published: Callable[[PublishFigures], None] | None = None,
        data_disks: Mapping[int, str | os.PathLike[str]] | None = None,
    ) -> GalleryImageVersion:
        """Describe the version (with the LUNs of its data disks), then upload its OS disk and
        each data disk by LUN; the version once its last disk is published.

        ``on_published`` hears what the daemon's publish did, as its answer reports it.

        Raises:
            SourceError: the source file cannot be read (nothing was recorded), or the
                source failed while it was sent (the version is left Failed, as locally).
            AlreadyExistsError: the version exists.
        """
        number = ImageVersion.parse(version)
        luns = check_luns(data_disks or {})
        path = version_path(gallery, image, str(number))
        async with AsyncExitStack() as opened:
            # Every file is opened before anything is recorded, as a local create checks them.
            disks: list[tuple[int | None, BlobSource]] = [(None, await _open(source, opened))]
            disks += [(lun, await _open((data_disks or {})[lun], opened)) for lun in luns]
            described = await self._connection.send(
                "PUT",
                path,
                body=version_body(options, location=location, source=f"{path}/content", data_disks=luns),
                headers={"If-None-Match": "*"},
            )
            if described.status_code != 201:
                raise AlreadyExistsError(
                    f"image version '{number}' already exists in image definition {image!r} of gallery"
                    f" {gallery!r}"
                )
            self._operations[path] = operation_url(described)
            uploaded = await upload_disks(self._connection, path, disks, progress)
        last = uploaded.responses[-1]
        created = version_from(self._connection.parse(last))
        if on_published is not None and created.published:
            on_published(
                UploadFigures(
                    size=uploaded.size,
                    new_chunks=sum(_count(answer, "x-blobrep-new-chunks") for answer in uploaded.responses),
                    written_bytes=sum(
                        _count(answer, "x-blobrep-written-bytes") for answer in uploaded.responses
                    ),
                )
            )
        return created

    async def replicate(
        self, gallery: str, image: str, version: str, *, progress: Callable[[RegionProgress], None] | None
    ) -> GalleryImageVersion:
        """The version once the operation of its last create or update here is over."""
        path = version_path(gallery, image, version)
        url = self._operations.pop(path, None)
        if url is None:
            return await self.show(gallery, image, version)

        async def report() -> None:
            if progress is not None:
                for update in _progress(await self.show(gallery, image, version)):
                    progress(update)

        outcome = await wait_for(self._connection, url, between=report)
        settled = await self.show(gallery, image, version)
        failed = any(status.state is ReplicationState.FAILED for status in settled.regions)
        if not outcome.succeeded and not failed:
            raise outcome.error()
        return settled

    async def update(
        self, gallery: str, image: str, version: str, options: VersionOptions
    ) -> GalleryImageVersion:
        """Record the new profile (``PATCH``); the version as it stands then.

        Per-region exclude-from-latest flags given without target regions keep the targets
        and set their flags, as a local update does: the daemon's body names whole target
        lists, so the list sent is the version's own with those flags set.
        """
        path = version_path(gallery, image, str(ImageVersion.parse(version)))
        targets = None
        if options.target_regions is None and options.regional_exclude_from_latest is not None:
            current = await self.show(gallery, image, version)
            targets = flagged_targets(current, options.regional_exclude_from_latest)
        response = await self._connection.send("PATCH", path, body=version_body(options, targets=targets))
        self._operations[path] = operation_url(response)
        return version_from(self._connection.parse(response))

    async def delete(self, gallery: str, image: str, version: str) -> None:
        """Delete the version and wait until it is gone."""
        path = version_path(gallery, image, str(ImageVersion.parse(version)))
        response = await self._connection.send("DELETE", path)
        outcome = await wait_for(self._connection, operation_url(response))
        if not outcome.succeeded:
            raise outcome.error()

    async def deploy(
        self,
        image_id: str,
        *,
        location: str | None,
        output: Path | None,
        output_dir: Path | None,
        name: str,
        policy: Policy,
        progress: ProgressCallback | None,
    ) -> DeploymentResult:
        """Read the version ``image_id`` names into ``output`` or ``output_dir/{name}/osdisk.img``
        and ``lun{N}.img`` beside it for each data disk (or discard them), as ``vm create``.

        The version is resolved first (``latest`` in ``location``) and its own number read,
        so the disk and the version described are one even if ``latest`` moves meanwhile.
        """
        from blobrep.engine.disk_dirs import vm_disk_file

        if policy is not Policy.LEAST_LOADED:
            raise InvalidParameterError(
                f"--policy {policy.value} chooses replicas where the disk is read, and a daemon reads"
                " it with its own least-loaded choice: leave out --policy with --endpoint"
            )
        gallery, image, version = image_reference(image_id)
        if version is not None:
            resolved = await self.show(gallery, image, str(version))
        else:
            resolved = await self.show(gallery, image, LATEST, location=location)
        check_single_file(resolved, output)
        luns = [disk.lun for disk in resolved.data_disks]
        async with vm_disk_file(output=output, output_dir=output_dir, name=name, data_disks=luns) as target:
            return await download_disks(
                self._connection, resolved, target, name=name, location=location, progress=progress
            )


async def _open(source: str | os.PathLike[str] | PublishSource, stack: AsyncExitStack) -> BlobSource:
    """The source to upload, opened: a file (closed when ``stack`` closes), or an open stream
    (standard input).

    Raises:
        SourceError: the file cannot be opened for publishing, or the source is one that is
            read on the event loop (an upload arriving at a daemon), which no command gives.
    """
    from blobrep.engine.source import BlobSource, open_source

    if isinstance(source, (str, os.PathLike)):
        opened = await anyio.to_thread.run_sync(open_source, Path(source))
        stack.push_async_callback(anyio.to_thread.run_sync, opened.close)
        return opened
    if not isinstance(source, BlobSource):
        raise SourceError(f"{source.name} cannot be uploaded from here: give a file or standard input")
    return source


def flagged_targets(version: GalleryImageVersion, flags: Mapping[str, bool]) -> list[TargetRegion]:
    """The version's target regions with the exclude-from-latest ``flags`` set.

    A value read back from the daemon carries each region's effective count, storage type and
    flag; one equal to the version-wide value is sent as "not given", so that it keeps
    following the version-wide value as it did.

    Raises:
        InvalidRegionError: a flag names a region that is not a target (as a local update says).
    """
    from blobrep.core.regions import check_target_regions
    from blobrep.service.version_options import targets_from

    given = {target.name: target.exclude_from_latest for target in targets_from(None, flags)}
    profile: PublishingProfile = version.publishing_profile
    check_target_regions(
        given, profile, str(ResourceId.of_version(version.gallery, version.image, version.version))
    )
    return [
        TargetRegion(
            target.name,
            None if target.replica_count == profile.replica_count else target.replica_count,
            None if target.storage_type == profile.storage_type else target.storage_type,
            given.get(target.name, _own(target.exclude_from_latest, profile.exclude_from_latest)),
        )
        for target in profile.target_regions
    ]


def _own(value: bool | None, version_wide: bool) -> bool | None:
    """A region's flag as sent: None (follow the version's) where it equals the version's."""
    return None if value == version_wide else value


def _progress(version: GalleryImageVersion) -> list[RegionProgress]:
    total = version.blob.size if version.blob is not None else 100
    return [
        RegionProgress(
            status.region,
            total * status.progress // 100,
            total,
            status.completed_replicas,
            status.target_replicas,
        )
        for status in version.regions
    ]


@dataclass(frozen=True, slots=True)
class UploadFigures:
    """What the daemon's publish of an upload did (a :class:`PublishFigures`)."""

    size: int
    new_chunks: int
    written_bytes: int


def _count(response: httpx2.Response, header: str) -> int:
    """The whole number a response header carries.

    Raises:
        EndpointError: it is missing or not a whole number (not an answer of this daemon).
    """
    text = response.headers.get(header, "")
    if not (text.isascii() and text.isdigit()):
        raise EndpointError(f"the daemon's upload answer has no whole number in {header} ({text!r})")
    return int(text)
