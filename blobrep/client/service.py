"""``RemoteGalleryService``: the gallery service's methods, answered by a daemon over HTTP.

The CLI's commands call a :class:`~blobrep.service.GalleryService`; with ``--endpoint`` they
call this instead, unchanged: each method has the service method's name and parameters and
returns the same values (read back from the daemon's ARM resources,
:mod:`blobrep.client.resources`) or raises the same errors (:mod:`blobrep.client.errors`),
so the CLI prints the same output and exits with the same status either way.

The first parameter of every method, the caller, is not sent: the daemon knows the caller
from the bearer token, and takes no one's word for it.

Only the methods of the commands that run against a daemon are here (``sig``, ``vm create``,
``principal``, ``group member``, ``role assignment``).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

from blobrep.client.bodies import definition_body, gallery_body
from blobrep.client.connection import Connection, check_token
from blobrep.client.resources import definition_from, gallery_from
from blobrep.client.sharing import RemoteSharing
from blobrep.client.version_copies import create_from
from blobrep.client.versions import RemoteVersions
from blobrep.core.ids import ResourceId
from blobrep.core.selection import Policy
from blobrep.core.vm_names import DEFAULT_VM_NAME
from blobrep.errors import AlreadyExistsError
from blobrep.service.version_options import VersionOptions

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping
    from pathlib import Path

    import httpx2

    from blobrep.client.versions import RegionProgress
    from blobrep.core.access import Principal, RoleAssignment
    from blobrep.core.gallery import Gallery, GalleryImageVersion, ImageDefinition
    from blobrep.engine.deploy import DeploymentResult
    from blobrep.engine.publish import ProgressCallback, PublishFigures, PublishProgressCallback
    from blobrep.engine.source import PublishSource
    from blobrep.service import DefinitionFields

_CREATE_ONLY = {"If-None-Match": "*"}
_NOT_GIVEN = VersionOptions()


class RemoteGalleryService:
    """Galleries, definitions, versions, deployments and access at the daemon ``endpoint``,
    as the principal of ``token``.

    Use as ``async with RemoteGalleryService(endpoint, token) as service:``.

    Raises (from the constructor):
        UnauthenticatedError: there is no token, or it cannot be one.
    """

    def __init__(
        self, endpoint: str, token: str | None, *, transport: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        self._connection = Connection(endpoint, check_token(token), transport=transport)
        self._versions = RemoteVersions(self._connection)
        self._sharing = RemoteSharing(self._connection)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._connection.__aexit__(kind, value, tb)

    # --- galleries ------------------------------------------------------------------------

    async def create_gallery(
        self, caller: str, name: str, *, location: str | None = None, description: str = ""
    ) -> Gallery:
        response = await self._connection.send(
            "PUT",
            str(ResourceId.of_gallery(name)),
            body=gallery_body(location, description),
            headers=_CREATE_ONLY,
        )
        if response.status_code != 201:
            raise AlreadyExistsError(f"gallery {name!r} already exists")
        return gallery_from(self._connection.parse(response))

    async def list_galleries(self, caller: str) -> list[Gallery]:
        return [gallery_from(item) for item in await self._connection.listing("/galleries")]

    async def show_gallery(self, caller: str, name: str) -> Gallery:
        return gallery_from(await self._connection.document("GET", str(ResourceId.of_gallery(name))))

    async def update_gallery(self, caller: str, name: str, *, description: str | None = None) -> Gallery:
        path = str(ResourceId.of_gallery(name))
        return gallery_from(
            await self._connection.document("PATCH", path, body=gallery_body(None, description))
        )

    async def delete_gallery(self, caller: str, name: str) -> None:
        await self._connection.send("DELETE", str(ResourceId.of_gallery(name)))

    # --- image definitions ----------------------------------------------------------------

    async def create_definition(
        self, caller: str, gallery: str, name: str, fields: DefinitionFields
    ) -> ImageDefinition:
        response = await self._connection.send(
            "PUT", str(ResourceId.of_image(gallery, name)), body=definition_body(fields), headers=_CREATE_ONLY
        )
        if response.status_code != 201:
            raise AlreadyExistsError(f"image definition {name!r} already exists in gallery {gallery!r}")
        return definition_from(self._connection.parse(response))

    async def list_definitions(self, caller: str, gallery: str) -> list[ImageDefinition]:
        path = f"{ResourceId.of_gallery(gallery)}/images"
        return [definition_from(item) for item in await self._connection.listing(path)]

    async def show_definition(self, caller: str, gallery: str, name: str) -> ImageDefinition:
        path = str(ResourceId.of_image(gallery, name))
        return definition_from(await self._connection.document("GET", path))

    async def update_definition(
        self, caller: str, gallery: str, name: str, fields: DefinitionFields
    ) -> ImageDefinition:
        path = str(ResourceId.of_image(gallery, name))
        return definition_from(await self._connection.document("PATCH", path, body=definition_body(fields)))

    async def delete_definition(self, caller: str, gallery: str, name: str) -> None:
        await self._connection.send("DELETE", str(ResourceId.of_image(gallery, name)))

    # --- image versions -------------------------------------------------------------------

    async def list_versions(self, caller: str, gallery: str, image: str) -> list[GalleryImageVersion]:
        return await self._versions.list(gallery, image)

    async def show_version(
        self, caller: str, gallery: str, image: str, version: str, *, location: str | None = None
    ) -> GalleryImageVersion:
        return await self._versions.show(gallery, image, version, location=location)

    async def create_version(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        *,
        source: str | os.PathLike[str] | PublishSource,
        location: str | None = None,
        options: VersionOptions,
        progress: PublishProgressCallback | None = None,
        on_published: Callable[[PublishFigures], None] | None = None,
        data_disks: Mapping[int, str | os.PathLike[str]] | None = None,
    ) -> GalleryImageVersion:
        """Create the version and upload its disks (the OS disk, then each data disk by LUN);
        ``on_published`` hears what the daemon's publish did (new chunks, bytes written), as
        its answer reports it."""
        return await self._versions.create(
            gallery,
            image,
            version,
            source=source,
            location=location,
            options=options,
            progress=progress,
            on_published=on_published,
            data_disks=data_disks,
        )

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
        progress: Callable[[RegionProgress], None] | None = None,
    ) -> GalleryImageVersion:
        """Create the version from the disk of the version ``source_version`` (an id) and wait
        until the daemon has copied it into the version's source region, as the service does."""
        return await create_from(
            self._connection,
            self._versions,
            gallery,
            image,
            version,
            source_version=source_version,
            location=location,
            options=options,
            progress=progress,
        )

    async def replicate_version(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        *,
        progress: Callable[[RegionProgress], None] | None = None,
    ) -> GalleryImageVersion:
        """Wait until the daemon has replicated the version (it replicates on its own)."""
        return await self._versions.replicate(gallery, image, version, progress=progress)

    async def update_version(
        self, caller: str, gallery: str, image: str, version: str, options: VersionOptions
    ) -> GalleryImageVersion:
        return await self._versions.update(gallery, image, version, options)

    async def delete_version(self, caller: str, gallery: str, image: str, version: str) -> None:
        await self._versions.delete(gallery, image, version)

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
        """Download the disks of the VM ``name``: the OS disk into ``output``, or every disk below
        ``output_dir/{name}/`` (``osdisk.img``, ``lun{N}.img``; read and discard with neither),
        as the service writes them."""
        return await self._versions.deploy(
            image_id,
            location=location,
            output=output,
            output_dir=output_dir,
            name=name,
            policy=policy,
            progress=progress,
        )

    # --- principals, groups and role assignments ------------------------------------------

    async def create_principal(self, caller: str, name: str, principal_type: str) -> Principal:
        return await self._sharing.create_principal(name, principal_type)

    async def list_principals(self, caller: str) -> list[Principal]:
        return await self._sharing.list_principals()

    async def show_principal(self, caller: str, name: str) -> Principal:
        return await self._sharing.show_principal(name)

    async def delete_principal(self, caller: str, name: str) -> None:
        await self._sharing.delete_principal(name)

    async def add_member(self, caller: str, group: str, member: str) -> list[str]:
        return await self._sharing.add_member(group, member)

    async def remove_member(self, caller: str, group: str, member: str) -> list[str]:
        return await self._sharing.remove_member(group, member)

    async def list_members(self, caller: str, group: str) -> list[str]:
        return await self._sharing.list_members(group)

    async def create_assignment(self, caller: str, assignee: str, role: str, scope: str) -> RoleAssignment:
        return await self._sharing.create_assignment(assignee, role, scope)

    async def list_assignments(
        self, caller: str, *, scope: str | None = None, assignee: str | None = None
    ) -> list[RoleAssignment]:
        return await self._sharing.list_assignments(scope=scope, assignee=assignee)

    async def delete_assignment(self, caller: str, assignee: str, role: str, scope: str) -> None:
        await self._sharing.delete_assignment(assignee, role, scope)
