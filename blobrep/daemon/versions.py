"""Image versions: list and show (``latest`` wherever a version name goes, ``?location``,
``$expand=ReplicationStatus``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from blobrep.daemon import arm
from blobrep.daemon.http import authenticated, expanded, json, page
from blobrep.service.views import version_view

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from blobrep.service import GalleryService


def routes() -> list[Route]:
    return [
        Route("/galleries/{gallery}/images/{image}/versions", authenticated(_list_versions)),
        Route("/galleries/{gallery}/images/{image}/versions/{version}", authenticated(_show_version)),
    ]


async def _list_versions(request: Request, service: GalleryService, caller: str) -> Response:
    params = request.path_params
    expand = expanded(request)
    versions = await service.list_versions(caller, params["gallery"], params["image"])
    return page(request, [arm.resource(version_view(v, expand_replication=expand)) for v in versions])


async def _show_version(request: Request, service: GalleryService, caller: str) -> Response:
    params = request.path_params
    expand = expanded(request)
    version = await service.show_version(
        caller,
        params["gallery"],
        params["image"],
        params["version"],
        location=request.query_params.get("location"),
    )
    return json(arm.resource(version_view(version, expand_replication=expand)))
