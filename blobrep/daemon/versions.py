"""Image versions: list and show (``latest`` wherever a version is read, ``?location``,
``$expand=ReplicationStatus``), create or update (PUT), PATCH, DELETE (each naming the version
by its number: ``latest`` moves), and the disk upload.

Creating a version over HTTP takes two requests (see :mod:`blobrep.service.version_uploads`):

1. ``PUT .../versions/{v}`` with the version's description answers ``201`` at once: the
   version is ``Creating`` and waits for its disk; ``Azure-AsyncOperation`` names the
   operation to poll (:mod:`blobrep.daemon.operations`), which ends once the disk is
   published and every target region is ``Completed`` (the reconcile loop replicates it).
2. ``PUT .../versions/{v}/content`` with the disk as the raw body streams it into the publish
   pipeline as it arrives (chunked, hashed, compressed and written to the source region's
   replicas, with the socket's own backpressure), and answers ``200`` with the version once
   the disk is published (the route is in :mod:`blobrep.daemon.content`, beside the
   download). A body that ends short of its ``Content-Length``, or a client that
   goes away, leaves the version ``Failed`` with no blob: nothing of it is readable, and the
   same two requests redo it, reusing the chunks already written.
3. A version described with ``storageProfile.dataDiskImages`` (``[{"lun": 0}, ...]``) waits
   for each of those disks too, each uploaded with ``PUT .../versions/{v}/dataDisks/{lun}/content``
   in the same way (:mod:`blobrep.daemon.uploads`); its source region is ``Completed`` once
   the last disk has arrived, and until then its details name the disks still awaited.

A PUT whose body names another version (``properties.storageProfile.source.id``) creates the
version from that version's disk instead (:mod:`blobrep.daemon.version_copies`): ``201`` once
it is recorded, the copy running on.

PUT on an existing version updates its publishing and safety profiles (``200``); PATCH does
the same with ``202``; DELETE answers ``202``. Each names its operation in
``Azure-AsyncOperation`` and, for PATCH and DELETE, in ``Location`` (the result to poll).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind
from blobrep.core.regions import normalize_region
from blobrep.core.version import ImageVersion
from blobrep.daemon import arm, bodies, version_copies
from blobrep.daemon.http import Ask, Reading, create_only, expanded, json, page, resource
from blobrep.daemon.operations import operation_headers, wake_reconciler
from blobrep.daemon.version_bodies import (
    CONTENT_SUFFIX,
    check_same_data_disks,
    data_disk_luns,
    version_options,
    version_source,
)
from blobrep.errors import ImmutableFieldError, InvalidParameterError, ResourceNotFoundError
from blobrep.service import queries
from blobrep.service.version_options import may_describe_again
from blobrep.service.views import version_view

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.service import GalleryService

VERSION = "/galleries/{gallery}/images/{image}/versions/{version}"


def routes() -> list[Route]:
    return [
        resource("/galleries/{gallery}/images/{image}/versions", get=Reading(_list_versions)),
        resource(
            VERSION,
            get=Reading(_show_version),
            put=_put_version,
            patch=_patch_version,
            delete=_delete_version,
        ),
    ]


async def _list_versions(request: Request, ask: Ask) -> Response:
    gallery, image = request.path_params["gallery"], request.path_params["image"]
    versions = await ask(
        lambda reads, home, caller: queries.list_versions(reads, home, caller, gallery, image)
    )
    expand = expanded(request)
    return page(request, [arm.resource(version_view(v, expand_replication=expand)) for v in versions])


async def _show_version(request: Request, ask: Ask) -> Response:
    gallery, image, name = (request.path_params[key] for key in ("gallery", "image", "version"))
    location = request.query_params.get("location")
    version = await ask(
        lambda reads, home, caller: queries.show_version(reads, home, caller, gallery, image, name, location)
    )
    return json(arm.resource(version_view(version, expand_replication=expanded(request))))


def _view(version: GalleryImageVersion) -> dict[str, Any]:
    return arm.resource(version_view(version, expand_replication=True))


def _content_path(gallery: str, image: str, version: str) -> str:
    return f"/galleries/{gallery}/images/{image}/versions/{version}{CONTENT_SUFFIX}"


def _number(request: Request, method: str) -> str:
    """The version number the path names, for a PATCH or DELETE: never ``latest``, which moves
    as versions are published, so a change or a deletion through it would land on whichever
    version it names at that moment (and a repeated DELETE on the next one).

    Raises:
        InvalidParameterError: the path names ``latest``.
        InvalidVersionError: the path names no version number.
    """
    version = request.path_params["version"]
    if version.lower() == "latest":
        raise InvalidParameterError(
            f"{method} takes the version's own number, not 'latest' (only GET resolves it): GET"
            " .../versions/latest to see which version that is, then name it, for example"
            " .../versions/1.0.0"
        )
    return str(ImageVersion.parse(version))


async def _put_version(request: Request, service: GalleryService, caller: str) -> Response:
    """Create the version, waiting for its disk (201), or update the existing one (200)."""
    gallery, image, name = (request.path_params[key] for key in ("gallery", "image", "version"))
    number = ImageVersion.parse(name)
    body = await bodies.json_object(request)
    options = version_options(body, content_path=_content_path(gallery, image, str(number)), create=True)
    location = bodies.text(body, "location", "the body")
    source = version_source(body)
    existing = None
    if not create_only(request):
        with contextlib.suppress(ResourceNotFoundError):
            existing = await service.show_version(caller, gallery, image, str(number))
    if existing is not None and not may_describe_again(existing):
        if location is not None and normalize_region(location) != existing.location:
            raise ImmutableFieldError(
                f"version {number} was published in {existing.location}; its location cannot"
                f" change to {location!r}"
            )
        version_copies.check_same_source(existing, source)
        check_same_data_disks(existing, data_disk_luns(body))
        updated = await service.update_version(caller, gallery, image, str(number), options)
        operation = await service.begin_async_operation(
            caller, OperationKind.UPDATE, ResourceId.of_version(gallery, image, number)
        )
        wake_reconciler(request)
        return json(_view(updated), 200, operation_headers(request, operation.id, location=False))
    if source is not None:
        copy = version_copies.Copy(caller, gallery, image, str(number), source, location, options)
        return await version_copies.start(request, service, copy)
    created = await service.begin_version(
        caller,
        gallery,
        image,
        str(number),
        location=location,
        options=options,
        data_disks=data_disk_luns(body) or (),
    )
    operation = await service.begin_async_operation(
        caller, OperationKind.CREATE, ResourceId.of_version(gallery, image, number)
    )
    return json(_view(created), 201, operation_headers(request, operation.id, location=False))


async def _patch_version(request: Request, service: GalleryService, caller: str) -> Response:
    gallery, image = request.path_params["gallery"], request.path_params["image"]
    number = _number(request, "PATCH")
    body = await bodies.json_object(request)
    if "location" in body:
        raise InvalidParameterError("a version's location cannot change: leave 'location' out of a PATCH")
    options = version_options(body, content_path=_content_path(gallery, image, number), create=False)
    source, luns = version_source(body), data_disk_luns(body)
    if source is not None or luns is not None:
        existing = await service.show_version(caller, gallery, image, number)
        if source is not None:
            version_copies.check_same_source(existing, source)
        check_same_data_disks(existing, luns)
    updated = await service.update_version(caller, gallery, image, number, options)
    operation = await service.begin_async_operation(
        caller, OperationKind.UPDATE, ResourceId.of_version(gallery, image, ImageVersion.parse(number))
    )
    wake_reconciler(request)
    return json(_view(updated), 202, operation_headers(request, operation.id, location=True))


async def _delete_version(request: Request, service: GalleryService, caller: str) -> Response:
    """Delete the version: its manifests from every replica, then its record (202)."""
    gallery, image = request.path_params["gallery"], request.path_params["image"]
    number = _number(request, "DELETE")
    await service.delete_version(caller, gallery, image, number)
    wake_reconciler(request)  # the retention policy may have grown an older version back
    operation = await service.begin_async_operation(
        caller, OperationKind.DELETE, ResourceId.of_version(gallery, image, ImageVersion.parse(number))
    )
    return json(None, 202, operation_headers(request, operation.id, location=True))
