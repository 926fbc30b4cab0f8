"""Asynchronous operations over HTTP, ARM's way.

* ``GET /operations/{id}`` is the status resource ``Azure-AsyncOperation`` names:
  ``{"id", "name", "status": InProgress|Succeeded|Failed|Canceled, "percentComplete",
  "startTime", "endTime", "error": {"code", "message"} | null}``, always ``200``.
* ``GET /operations/{id}/result`` is what ``Location`` names: ``202`` with ``Retry-After``
  while the operation runs; then the version (``200``), nothing for a deletion (``204``), or
  the operation's error (``409``).

Operations live in the catalog (:mod:`blobrep.service.async_operations`), so they survive a
restart of the daemon; whoever may read the version may poll them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from starlette.responses import Response

from blobrep.core.async_operations import AsyncOperation, AsyncStatus
from blobrep.core.definitions import format_datetime
from blobrep.core.operations import OperationKind
from blobrep.daemon import arm
from blobrep.daemon.http import json, resource
from blobrep.service.views import version_view

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import Route

    from blobrep.core.async_operations import RetriesOver
    from blobrep.core.ids import ResourceId
    from blobrep.service import GalleryService

#: Seconds a client should wait between two polls of an operation.
POLL_AFTER_SECONDS: Final = 2


def routes() -> list[Route]:
    return [
        resource("/operations/{operation}", get=_show_operation),
        resource("/operations/{operation}/result", get=_operation_result),
    ]


def operation_headers(request: Request, operation_id: str, *, location: bool) -> dict[str, str]:
    """``Azure-AsyncOperation`` (and ``Location`` if asked) naming the operation, with
    ``Retry-After``."""
    base = str(request.base_url).rstrip("/")
    headers = {
        "Azure-AsyncOperation": f"{base}/operations/{operation_id}",
        "Retry-After": str(POLL_AFTER_SECONDS),
    }
    if location:
        headers["Location"] = f"{base}/operations/{operation_id}/result"
    return headers


def wake_reconciler(request: Request) -> None:
    """Ask the reconcile loop for a pass now (a version was published or its targets changed)."""
    reconciler = getattr(request.app.state, "reconciler", None)
    if reconciler is not None:
        reconciler.wake()


def retries_over(request: Request) -> RetriesOver:
    """Whether nothing will retry a Failed region of a version: the reconcile loop's word, or
    always when there is no loop."""
    reconciler = getattr(request.app.state, "reconciler", None)

    def over(version: ResourceId, region: str) -> bool:
        if reconciler is None:
            return True
        return bool(reconciler.gave_up(version.gallery, version.image, str(version.version), region))

    return over


def operation_view(operation: AsyncOperation) -> dict[str, Any]:
    error = None if operation.error is None else arm.error_body(operation.error.code, operation.error.message)
    return {
        "id": f"/operations/{operation.id}",
        "name": operation.id,
        "status": str(operation.status),
        "percentComplete": operation.percent if operation.percent is not None else 0,
        "startTime": format_datetime(operation.started),
        "endTime": None if operation.ended is None else format_datetime(operation.ended),
        "error": None if error is None else error["error"],
    }


async def _current(request: Request, service: GalleryService, caller: str) -> AsyncOperation:
    return await service.async_operation(caller, request.path_params["operation"], retries_over(request))


async def _show_operation(request: Request, service: GalleryService, caller: str) -> Response:
    return json(operation_view(await _current(request, service, caller)))


async def _operation_result(request: Request, service: GalleryService, caller: str) -> Response:
    operation = await _current(request, service, caller)
    if operation.status is AsyncStatus.IN_PROGRESS:
        headers = operation_headers(request, operation.id, location=True)
        return json(operation_view(operation), 202, headers)
    if operation.status is AsyncStatus.SUCCEEDED:
        if operation.kind is OperationKind.DELETE:
            return Response(status_code=204)
        version_id = operation.resource
        assert version_id.gallery is not None and version_id.image is not None
        version = await service.show_version(
            caller, version_id.gallery, version_id.image, str(version_id.version)
        )
        return json(arm.resource(version_view(version, expand_replication=True)))
    error = operation.error
    code, message = (error.code, error.message) if error is not None else ("OperationFailed", "it failed")
    return json(arm.error_body(code, message), 409)
