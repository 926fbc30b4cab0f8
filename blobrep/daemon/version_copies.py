"""Versions created from another version over HTTP: ``PUT`` with ``storageProfile.source.id``.

``PUT .../versions/{v}`` whose body names another version
(``{"properties": {"storageProfile": {"source": {"id": "/galleries/G/images/I/versions/X.Y.Z"}}}}``)
creates the version from that version's disk
(:meth:`~blobrep.service.GalleryService.create_version_from`). A copy from another gallery
moves the whole disk, so it runs as a long write does here: every check (roles on both
versions, the source Completed in the new version's source region, the definitions alike) is
made before the answer, which is ``201`` with the version as recorded (``Creating``, its source
region ``Replicating``, ``storageProfile.source.id`` set) and ``Azure-AsyncOperation`` naming
the operation to poll. The copy then runs on in a task group the daemon keeps open while it
serves (:func:`running`); once it is done the reconcile loop replicates the version to its
other target regions, and the operation ends when they are ``Completed``.

A copy that fails leaves the version ``Failed`` with the reason (the operation ends
``Failed`` with it); one cut short by the daemon stopping leaves it ``Failed`` too
("interrupted"). The same PUT redoes it, moving only what is still missing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.daemon import arm
from blobrep.daemon.http import json
from blobrep.daemon.operations import operation_headers
from blobrep.errors import BlobrepError, ImmutableFieldError
from blobrep.service.views import version_view

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.service import GalleryService, VersionOptions

logger = logging.getLogger("blobrep.daemon")


@dataclass(frozen=True, slots=True)
class Copy:
    """What a PUT asked for: the new version, as whom, and the version whose disk it takes."""

    caller: str
    gallery: str
    image: str
    version: str
    source: str
    location: str | None
    options: VersionOptions

    @property
    def resource(self) -> ResourceId:
        return ResourceId.of_version(self.gallery, self.image, ImageVersion.parse(self.version))


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[None]:
    """The task group copies run in (``app.state.copies``), open while the daemon serves.
    Leaving it cancels the copies still running: each leaves its version Failed, to redo."""
    async with anyio.create_task_group() as group:
        app.state.copies = group
        yield
        group.cancel_scope.cancel()


def check_same_source(existing: GalleryImageVersion, source: str | None) -> None:
    """Refuse a PUT on an existing version that names another source for its disk (the same
    one, as a GET's body sent back names, is accepted).

    Raises:
        ImmutableFieldError: ``source`` is not the version's source.
        InvalidNameError: ``source`` is no resource id.
    """
    if source is None or (
        existing.source_id is not None and str(ResourceId.parse(source.strip())) == existing.source_id
    ):
        return
    own = (
        f"the disk of {existing.source_id}"
        if existing.source_id is not None
        else "its own (published or uploaded)"
    )
    raise ImmutableFieldError(
        f"version {existing.version}'s disk is {own}; properties.storageProfile.source.id cannot"
        f" change to {source!r}: leave it out, or create a new version from {source!r}"
    )


async def start(request: Request, service: GalleryService, copy: Copy) -> Response:
    """Record the version and start its copy; ``201`` with the version as recorded.

    Raises:
        BlobrepError: what the service raises before the copy starts (nothing is running then).
    """
    group: TaskGroup = request.app.state.copies
    created: GalleryImageVersion = await group.start(_copy, request.app, service, copy)
    operation = await service.begin_async_operation(copy.caller, OperationKind.CREATE, copy.resource)
    view = arm.resource(version_view(created, expand_replication=True))
    return json(view, 201, operation_headers(request, operation.id, location=False))


class _Started(TaskStatus["GalleryImageVersion"]):
    """The task status of a copy, remembering whether the copy got as far as starting."""

    def __init__(self, status: TaskStatus[GalleryImageVersion]) -> None:
        self._status = status
        self.done = False

    def started(self, value: GalleryImageVersion | None = None) -> None:
        assert value is not None  # the service always reports the version it recorded
        self.done = True
        self._status.started(value)


async def _copy(
    app: Starlette,
    service: GalleryService,
    copy: Copy,
    *,
    task_status: TaskStatus[GalleryImageVersion] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the copy; before it starts, an error goes to the request that asked for it, after
    that it is the version's (Failed, with the reason) and the log's."""
    started = _Started(task_status)
    try:
        await service.create_version_from(
            copy.caller,
            copy.gallery,
            copy.image,
            copy.version,
            source_version=copy.source,
            location=copy.location,
            options=copy.options,
            task_status=started,
        )
    except BlobrepError as exc:
        if not started.done:
            raise
        logger.warning(
            "version copy failed",
            extra={"event": "copy_failed", "version": str(copy.resource), "details": str(exc)},
        )
        # The version says Failed now; its operation ends so, rather than at the next poll
        # (which records the end itself if the catalog cannot be written now).
        with contextlib.suppress(BlobrepError):
            await service.settle_async_operations(copy.resource, lambda version, region: True)
        return
    reconciler = getattr(app.state, "reconciler", None)
    if reconciler is not None:
        reconciler.wake()  # the other target regions wait for it
