"""The ASGI application: the routes of each module, the service opened in the lifespan.

* :mod:`~blobrep.daemon.http`: the caller of a request, JSON answers, ARM errors, paging;
* :mod:`~blobrep.daemon.health`: ``/livez`` and ``/readyz``;
* :mod:`~blobrep.daemon.observe`: ``/metrics``, the request log and its middleware;
* :mod:`~blobrep.daemon.galleries`: galleries and image definitions;
* :mod:`~blobrep.daemon.versions`: image versions, their uploads and long-running operations;
* :mod:`~blobrep.daemon.content`: reading a version's disk;
* :mod:`~blobrep.daemon.sharing`: principals, group members and role assignments;
* :mod:`~blobrep.daemon.reconcile`: the background loop that drives replication.

The lifespan opens the service, then what runs beside the requests (the shared readers, the
reconcile loop); on shutdown they stop in the reverse order and the service closes last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from blobrep.daemon import content, galleries, health, observe, operations, reconcile, sharing, versions
from blobrep.daemon.http import http_error
from blobrep.service import GalleryService

if TYPE_CHECKING:
    from pathlib import Path

    from blobrep.service import StoreWrapper


def create_app(
    home: Path,
    *,
    wrap_store: StoreWrapper | None = None,
    reconcile_interval: float | None = reconcile.DEFAULT_INTERVAL,
) -> Starlette:
    """The daemon's application over the home ``home``; the service opens in its lifespan.

    ``reconcile_interval`` is the most seconds between two reconcile passes; None runs no
    reconcile loop (an application for tests that drive replication themselves).
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = await GalleryService.open(home, wrap_store=wrap_store)
        async with service, AsyncExitStack() as stack:
            app.state.service = service
            await stack.enter_async_context(content.running(app))
            await stack.enter_async_context(reconcile.running(app, reconcile_interval))
            yield

    routes = [
        *health.routes(),
        *observe.routes(),
        *galleries.routes(),
        *versions.routes(),
        *operations.routes(),
        *content.routes(),
        *sharing.routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
        middleware=observe.middleware(),
    )
    app.state.metrics = observe.Metrics()
    return app
