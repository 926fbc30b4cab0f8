"""``/livez`` and ``/readyz``: what a load balancer or service manager asks, without a token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from blobrep.daemon.http import json, one_line, service_of
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


def routes() -> list[Route]:
    return [Route("/livez", _livez), Route("/readyz", _readyz)]


async def _livez(request: Request) -> Response:
    """Alive: the process answers (it says nothing about the catalog or the stores)."""
    return json({"status": "ok"})


async def _readyz(request: Request) -> Response:
    """Ready: the catalog is open and every region's storage can be reached."""
    try:
        problems = await service_of(request).unready_regions()
    except BlobrepError as exc:
        return json({"status": "unavailable", "error": one_line(exc)}, 503)
    if problems:
        return json({"status": "unavailable", "regions": problems}, 503)
    return json({"status": "ok"})
