"""The ASGI application: the routes of each module, the service opened in the lifespan.

* :mod:`~blobrep.daemon.http`: the caller of a request, JSON answers, ARM errors, paging;
* :mod:`~blobrep.daemon.health`: ``/livez`` and ``/readyz``;
* :mod:`~blobrep.daemon.galleries`: galleries and image definitions;
* :mod:`~blobrep.daemon.versions`: image versions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from blobrep.daemon import galleries, health, versions
from blobrep.daemon.http import http_error
from blobrep.service import GalleryService

if TYPE_CHECKING:
    from pathlib import Path

    from blobrep.service import StoreWrapper


def create_app(home: Path, *, wrap_store: StoreWrapper | None = None) -> Starlette:
    """The daemon's application over the home ``home``; the service opens in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with await GalleryService.open(home, wrap_store=wrap_store) as service:
            app.state.service = service
            yield

    routes = [*health.routes(), *galleries.routes(), *versions.routes()]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
