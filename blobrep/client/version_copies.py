"""A version created from another version over HTTP: the CLI's ``--image-version`` with ``--endpoint``.

The daemon answers the ``PUT`` that names the source (``storageProfile.source.id``) once the
version is recorded, and copies the disk after that (:mod:`blobrep.daemon.version_copies`). A
local create returns once the disk is in the new version's source region, so this one does
too: it polls the version until it is no longer ``Creating``, then returns it (``Succeeded``)
or raises why the copy failed, as the service would. The operation the ``PUT`` named is left
for :meth:`~blobrep.client.versions.RemoteVersions.replicate` to wait on, as after an upload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio

from blobrep.client.bodies import version_body
from blobrep.client.operations import operation_url
from blobrep.client.versions import RegionProgress, version_path
from blobrep.core.gallery import ProvisioningState
from blobrep.core.ids import ResourceId
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError, CopyError

if TYPE_CHECKING:
    from collections.abc import Callable

    from blobrep.client.connection import Connection
    from blobrep.client.versions import RemoteVersions
    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.service import VersionOptions

#: Seconds before each of the first looks at a copy, then between every later one.
FIRST_LOOKS: Final = (0.05, 0.1, 0.25, 0.5)
LATER_LOOKS: Final = 1.0


async def create_from(
    connection: Connection,
    versions: RemoteVersions,
    gallery: str,
    image: str,
    version: str,
    *,
    source_version: str,
    location: str | None,
    options: VersionOptions,
    progress: Callable[[RegionProgress], None] | None,
) -> GalleryImageVersion:
    """Describe the version with its source, then wait until its disk is copied.

    Raises:
        AlreadyExistsError: the version exists.
        CopyError: the copy failed (the version is left Failed, with the reason).
        what the daemon answers the PUT with: the service's checks (access, the source's
        level and state, the definitions).
    """
    number = ImageVersion.parse(version)
    path = version_path(gallery, image, str(number))
    body = version_body(options, location=location)
    body["properties"]["storageProfile"] = {"source": {"id": source_version}}
    described = await connection.send("PUT", path, body=body, headers={"If-None-Match": "*"})
    if described.status_code != 201:
        raise AlreadyExistsError(
            f"image version '{number}' already exists in image definition {image!r} of gallery {gallery!r}"
        )
    versions.follow(path, operation_url(described))
    looks = 0
    while True:
        current = await versions.show(gallery, image, str(number))
        if current.provisioning_state is not ProvisioningState.CREATING:
            break
        await anyio.sleep(FIRST_LOOKS[looks] if looks < len(FIRST_LOOKS) else LATER_LOOKS)
        looks += 1
    status = current.status(current.location)
    if current.provisioning_state is ProvisioningState.FAILED:
        reason = status.details if status is not None and status.details else "no reason recorded"
        raise CopyError(f"{ResourceId.of_version(gallery, image, number)} could not be created: {reason}")
    if progress is not None and current.blob is not None and status is not None:
        # The daemon records no progress while it copies: the bar hears the end.
        size = current.blob.stored_bytes
        progress(RegionProgress(status.region, size, size, status.completed_replicas, status.target_replicas))
    return current
